"""DataForSEO On-Page: batching, envelope, partial failures, rate limits; hook, Airflow, official client."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from datetime import datetime
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.hooks.dataforseo import DataForSeoHook
from airflow_provider_stop.hooks.errors import (
    AuthenticationError,
    PaymentRequiredError,
    PermanentBatchStopError,
    RateLimitedError,
    TargetNotFoundError,
)
from airflow_provider_stop.notifications.dataforseo import DataForSeoStopOnPageTasksNotifier
from airflow_provider_stop.operators.dataforseo import DataForSeoStopOnPageTasksOperator
from airflow_provider_stop.sensors.dataforseo import DataForSeoOnPageTasksStoppedSensor
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
from tests.conftest import FAST_RETRIES, LogCapture, run_dag, task_states, use_connection, xcom_value

STOP = "/v3/on_page/force_stop"


def hook(**kwargs: Any) -> DataForSeoHook:
    return DataForSeoHook(**{**FAST_RETRIES, **kwargs})


# ---- the hook -------------------------------------------------------------------------------
def test_ids_are_sent_once_in_calls_of_at_most_1000(dfs: DataForSeoEmulator) -> None:
    ids = [f"task-{i:05d}" for i in range(2500)]
    for tid in ids:
        dfs.add_task(tid)
    acks = hook().stop_many(ids + ids[:300])  # duplicates are sent once
    assert set(acks) == set(ids)
    assert dfs.count("POST", STOP) == math.ceil(2500 / 1000) == 3
    assert all(dfs.progress_of(t) in ("in_progress", "finished") for t in ids[:3])
    statuses = hook().wait_until_stopped(ids[:50], poll_interval=0.05, deadline=time.time() + 10)
    assert {s.details["crawl_stop_reason"] for s in statuses.values()} == {"force_stopped"}


def test_request_body_is_the_documented_array_with_basic_auth(dfs: DataForSeoEmulator) -> None:
    dfs.add_task("t1")
    hook().stop("t1")
    post = next(r for r in dfs.requests if r.method == "POST")
    token = base64.b64encode(f"{dfs.settings.login}:{dfs.settings.password}".encode()).decode()
    assert post.headers["authorization"] == f"Basic {token}"


def test_summary_reports_state_reason_pages_and_cost(dfs: DataForSeoEmulator) -> None:
    dfs.add_task("t1", max_crawl_pages=50)
    h = hook()
    h.stop("t1")
    status = h.wait_until_stopped(["t1"], poll_interval=0.05, deadline=time.time() + 5)["t1"]
    assert status.raw_state == "finished" and status.stopped and status.error is None
    assert status.details["crawl_stop_reason"] == "force_stopped"
    assert isinstance(status.details["pages_crawled"], int) and status.details["cost"] == 0


def test_partial_failure_names_each_failed_id_and_stops_the_rest(dfs: DataForSeoEmulator) -> None:
    dfs.add_task("good-1")
    dfs.add_task("good-2")
    with pytest.raises(PermanentBatchStopError) as err:
        hook().stop_many(["good-1", "missing-id", "good-2"])
    assert (
        "1 of 3" in str(err.value)
        and "'missing-id'" in str(err.value)
        and "40401 Task Not Found." in str(err.value)
    )
    assert isinstance(err.value.failures["missing-id"], TargetNotFoundError)
    assert set(err.value.succeeded) == {"good-1", "good-2"}
    assert dfs.count("POST", STOP) == 1  # one call carried all three


def test_unknown_id_code_setting_and_summary_of_unknown_id(monkeypatch: pytest.MonkeyPatch) -> None:
    with DataForSeoEmulator(unknown_id_code=40400) as emu:
        use_connection(monkeypatch, "dataforseo_default", emu.connection())
        with pytest.raises(TargetNotFoundError, match="40400 Not Found"):
            hook().stop("nope")
        with pytest.raises(TargetNotFoundError):
            hook().get_status("nope")


def test_already_finished_task_is_success(dfs: DataForSeoEmulator) -> None:
    dfs.add_task("done", posted_at=time.time() - 7200)  # crawled to its limit long ago
    h = hook()
    h.stop("done")
    status = h.get_status("done")
    assert status.stopped and status.details["crawl_stop_reason"] == "limit_exceeded"


def test_queued_task_is_not_stopped_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    with DataForSeoEmulator(queue_seconds=0.3, stop_delay_seconds=0.05) as emu:
        use_connection(monkeypatch, "dataforseo_default", emu.connection())
        emu.add_task("q")
        h = hook()
        assert h.get_status("q").raw_state == "in_queue"
        h.stop("q")
        assert h.wait_until_stopped(["q"], poll_interval=0.05, deadline=time.time() + 5)["q"].stopped


def test_bad_credentials_are_an_auth_error_without_the_password(
    dfs: DataForSeoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, "dataforseo_default", {**dfs.connection(), "password": "WrongPassword123"})
    with pytest.raises(AuthenticationError, match="You are not Authorized") as err:
        hook().stop("t")
    assert "WrongPassword123" not in str(err.value)
    assert dfs.count() == 1
    ok, message = hook().test_connection()
    assert not ok and "WrongPassword123" not in message


def test_missing_credentials_fail_before_any_request(
    dfs: DataForSeoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, "dataforseo_default", {"conn_type": "dataforseo", "host": dfs.url})
    with pytest.raises(Exception, match="needs the DataForSEO API login and password"):
        hook().stop("t")
    assert dfs.count() == 0


@pytest.mark.parametrize("http", [402, 200])
def test_payment_required_is_not_retried(dfs: DataForSeoEmulator, http: int) -> None:
    if http == 402:
        dfs.inject("status", status=402, times=5)
    else:
        dfs.error_response = lambda *a, **k: dfs._envelope([], code=40200)  # type: ignore[method-assign]
        dfs.inject("status", status=200, times=5)
    with pytest.raises(PaymentRequiredError):
        hook().stop("t")
    assert dfs.count() == 1


@pytest.mark.parametrize("http", [200, 429])
def test_rate_limit_40202_is_retried_then_named(monkeypatch: pytest.MonkeyPatch, http: int) -> None:
    with DataForSeoEmulator(rate_limit_per_minute=2, rate_limit_http_status=http) as emu:
        use_connection(monkeypatch, "dataforseo_default", emu.connection())
        emu.add_task("t")
        h = hook()
        h.stop("t")
        h.get_status("t")
        with pytest.raises(RateLimitedError, match="40202"):
            h.get_status("t")
        assert emu.count() == 2 + FAST_RETRIES["max_attempts"]
        headers = requests.get(
            emu.url + "/v3/on_page/tasks_ready", auth=(emu.settings.login, emu.settings.password), timeout=5
        ).headers
        assert headers["X-RateLimit-Limit"] == "2" and headers["X-RateLimit-Remaining"] == "0"


def test_a_500_on_force_stop_is_retried(dfs: DataForSeoEmulator) -> None:
    dfs.add_task("t")
    dfs.inject("status", status=500, times=1, path=STOP)
    hook().stop("t")
    assert dfs.count("POST", STOP) == 2


def test_waiting_on_many_ids_polls_concurrently_within_the_bound(dfs: DataForSeoEmulator) -> None:
    ids = [f"w{i}" for i in range(200)]
    for tid in ids:
        dfs.add_task(tid)
    h = hook()
    h.stop_many(ids)
    dfs.latency = 0.02
    dfs.reset_log()
    h.wait_until_stopped(ids, poll_interval=0.05, deadline=time.time() + 20)
    assert 1 < dfs.peak_in_flight <= DataForSeoHook.max_concurrency

    async def deferred_style() -> None:
        async with h.async_client() as client:
            await h.await_until_stopped(client, ids, poll_interval=0.05, deadline=time.time() + 20)

    dfs.reset_log()
    asyncio.run(deferred_style())
    assert 1 < dfs.peak_in_flight <= DataForSeoHook.max_concurrency


def test_sandbox_setting_selects_the_sandbox_host() -> None:
    from airflow.providers.common.compat.sdk import Connection

    conn = Connection(
        conn_id="d", conn_type="dataforseo", login="l", password="p", extra=json.dumps({"sandbox": True})
    )
    assert DataForSeoHook().build_config(conn).base_url == "https://sandbox.dataforseo.com"
    plain = Connection(conn_id="d", conn_type="dataforseo", login="l", password="p")
    assert DataForSeoHook().build_config(plain).base_url == "https://api.dataforseo.com"


def test_emulator_accepts_the_legacy_object_keyed_body(dfs: DataForSeoEmulator) -> None:
    dfs.settings.accept_object_body = True  # inferred, so a setting (off by default since issue 12)
    dfs.add_task("legacy")
    body = requests.post(
        dfs.url + STOP,
        json={"0": {"id": "legacy"}},
        auth=(dfs.settings.login, dfs.settings.password),
        timeout=5,
    ).json()
    assert body["status_code"] == 20000 and body["tasks"][0]["status_code"] == 20000
    assert isinstance(body["time"], str) and body["time"].endswith(" sec.")


# ---- under Airflow ----------------------------------------------------------------------------
pytest_airflow = pytest.mark.usefixtures("airflow_db")
FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}


@pytest_airflow
@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_operator_stops_1200_ids_in_two_calls_and_reports_each(
    dfs: DataForSeoEmulator, deferrable: bool
) -> None:
    ids = [f"crawl-{i}" for i in range(1200)]
    for tid in ids:
        dfs.add_task(tid)
    with DAG(dag_id=f"dfs_bulk_{deferrable}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        DataForSeoStopOnPageTasksOperator(task_id="stop", crawl_task_ids=ids, deferrable=deferrable, **FAST)
    dr = run_dag(dag)
    assert task_states(dr) == {"stop": "success"}
    result = xcom_value(dr, "stop")
    assert len(result) == 1200
    assert {r["details"]["crawl_stop_reason"] for r in result.values()} == {"force_stopped"}
    assert all(r["raw_state"] == "finished" and "cost" in r["details"] for r in result.values())
    assert dfs.count("POST", STOP) == 2


@pytest_airflow
def test_partial_failure_can_be_reported_instead_of_failing(
    dfs: DataForSeoEmulator, logs: LogCapture
) -> None:
    dfs.add_task("good")
    with DAG(dag_id="dfs_partial", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        DataForSeoStopOnPageTasksOperator(
            task_id="lenient", crawl_task_ids=["good", "ghost"], fail_on_partial_failure=False, **FAST
        )
        DataForSeoStopOnPageTasksOperator(task_id="strict", crawl_task_ids=["good", "ghost"], **FAST)
    dr = run_dag(dag)
    assert task_states(dr) == {"lenient": "success", "strict": "failed"}
    result = xcom_value(dr, "lenient")
    assert result["good"]["raw_state"] == "finished"
    assert result["ghost"]["stopped"] is False and "40401 Task Not Found." in result["ghost"]["error"]
    assert "'ghost'" in logs.text()


@pytest_airflow
def test_sensor_and_notifier(dfs: DataForSeoEmulator) -> None:
    dfs.add_task("a")
    dfs.add_task("b")
    notifier = DataForSeoStopOnPageTasksNotifier(crawl_task_ids=["a", "b"], hook_params=FAST_RETRIES)
    notifier.notify({})
    assert notifier.result["error"] is None and dfs.count("POST", STOP) == 1
    with DAG(dag_id="dfs_sensor", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        DataForSeoOnPageTasksStoppedSensor(
            task_id="wait", crawl_task_ids=["a", "b"], poke_interval=0.05, timeout=10, deferrable=True
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"wait": "success"}
    assert xcom_value(dr, "wait")["a"]["details"]["crawl_stop_reason"] == "force_stopped"
    assert dfs.count("POST", STOP) == 1  # the sensor sent no stop


def test_secrets_never_leak(monkeypatch: pytest.MonkeyPatch, logs: LogCapture) -> None:
    secret = "DFSLEAKCANARY-" + "p" * 20
    with DataForSeoEmulator(password=secret) as emu:
        token = base64.b64encode(f"{emu.settings.login}:{secret}".encode()).decode()
        use_connection(monkeypatch, "dataforseo_default", emu.connection())
        emu.add_task("t")
        emu.inject("status", status=500, times=1)
        texts = [json.dumps(hook().stop_many(["t"])["t"].as_status().to_dict())]
        try:
            hook().stop_many(["t", "ghost"])
        except PermanentBatchStopError as exc:
            texts.append(str(exc))
        use_connection(monkeypatch, "dataforseo_default", {**emu.connection(), "password": secret + "x"})
        texts.append(hook().test_connection()[1])
    haystack = "\n".join([logs.text(), *texts])
    assert "DFSLEAKCANARY" not in haystack and token not in haystack and token[:20] not in haystack


# ---- the official client ----------------------------------------------------------------------
def test_official_client_posts_stops_and_reads_a_summary(dfs: DataForSeoEmulator) -> None:
    pytest.importorskip("dataforseo_client")
    from dataforseo_client import api_client as dfs_api_provider
    from dataforseo_client import configuration as dfs_config
    from dataforseo_client.api.on_page_api import OnPageApi
    from dataforseo_client.models.on_page_force_stop_request_info import OnPageForceStopRequestInfo
    from dataforseo_client.models.on_page_task_post_request_info import OnPageTaskPostRequestInfo

    config = dfs_config.Configuration(
        host=dfs.url, username=dfs.settings.login, password=dfs.settings.password
    )
    with dfs_api_provider.ApiClient(config) as client:
        api = OnPageApi(client)
        posted = api.task_post([OnPageTaskPostRequestInfo(target="example.com", max_crawl_pages=10)])
        assert posted.status_code == 20000 and posted.tasks[0].status_code == 20100
        task_id = posted.tasks[0].id
        stopped = api.force_stop([OnPageForceStopRequestInfo(id=task_id)])
        assert stopped.tasks[0].status_code == 20000
        # our hook agrees with the official client about the same task
        status = hook().wait_until_stopped([task_id], poll_interval=0.05, deadline=time.time() + 5)[task_id]
        summary = api.summary(task_id).tasks[0].result[0]
        assert summary.crawl_progress == status.raw_state == "finished"
        assert summary.crawl_stop_reason == status.details["crawl_stop_reason"] == "force_stopped"


def test_async_notifier_stops_in_chunks_and_names_what_failed(dfs: DataForSeoEmulator) -> None:
    """The triggerer path (DeadlineAlert): batched async force_stop, a partial failure reported, no raise."""
    import asyncio

    ids = [f"a{i}" for i in range(1500)]
    for tid in ids:
        dfs.add_task(tid)
    notifier = DataForSeoStopOnPageTasksNotifier(
        crawl_task_ids=[*ids, "ghost"], wait_for_completion=False, hook_params=FAST_RETRIES
    )
    result = asyncio.run(notifier.async_notify({}))
    assert dfs.count("POST", STOP) == 2  # 1501 ids: ceil(1501 / 1000) calls
    assert "'ghost'" in result["error"] and "40401" in result["error"]
    assert len(result["stopped"]) == 1500
