"""Amperity workflow runs: tenant-aware auth, terminal runs, canceling → canceled, stop-all, the rate."""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from datetime import datetime
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop import process_state
from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.hooks.errors import (
    AuthenticationError,
    InvalidInputError,
    StopTimeoutError,
    TargetNotFoundError,
    TargetNotRunningError,
)
from airflow_provider_stop.notifications.amperity import AmperityStopWorkflowRunNotifier
from airflow_provider_stop.operators.amperity import (
    AmperityStopAllWorkflowRunsOperator,
    AmperityStopWorkflowRunOperator,
)
from airflow_provider_stop.sensors.amperity import AmperityWorkflowRunStoppedSensor
from airflow_provider_stop.testing.amperity import AmperityEmulator
from tests.conftest import FAST_RETRIES, LogCapture, run_dag, task_states, use_connection, xcom_value

FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}
RUN = "wf-20240619-14418-6UhqSe"


@pytest.fixture(autouse=True)
def _fresh_tokens() -> None:
    """Each test here starts its own emulator and counts requests: a token cached in this process for an
    earlier emulator (possibly on the same port, which the OS reuses) would cost a 401 and a refetch."""
    process_state.reset()


def hook(**kwargs: Any) -> AmperityHook:
    return AmperityHook(**{**FAST_RETRIES, **kwargs})


def wait(h: AmperityHook, ids: list[str], seconds: float = 5) -> dict[str, Any]:
    return h.wait_until_stopped(ids, poll_interval=0.05, deadline=time.time() + seconds)


def serve(monkeypatch: pytest.MonkeyPatch, emu: AmperityEmulator, **extra: Any) -> AmperityEmulator:
    emu.start()
    conn = emu.connection(extra.pop("auth", "client_credentials"))
    use_connection(monkeypatch, "amperity_default", {**conn, "extra": {**conn["extra"], **extra}})
    return emu


def test_stop_goes_canceling_then_canceled_with_the_documented_call(amperity: AmperityEmulator) -> None:
    amperity.add_run(RUN)
    h = hook()
    ack = h.stop(RUN)
    assert ack.accepted and ack.message == "state canceling"
    final = wait(h, [RUN])[RUN]
    assert final.raw_state == "canceled" and final.stopped and final.error is None
    assert final.details["error"] == "Workflow manually stopped" and final.details["canceled"] is True
    stop = next(r for r in amperity.requests if r.path.endswith("/stop"))
    assert (stop.method, stop.path) == ("POST", f"/api/workflow/runs/{RUN}/stop")
    assert stop.headers["amperity-tenant"] == "acme" and stop.headers["api-version"] == "2024-04-01"
    assert stop.headers["authorization"].startswith("Bearer ")
    assert amperity.stop_forms == ["slash"]
    assert amperity.count("GET", f"/api/workflow/runs/{RUN}") >= 2  # canceling, then canceled


@pytest.mark.parametrize("terminal_stop_status", [200, 400, 409])
@pytest.mark.parametrize("state", ["succeeded", "failed", "canceled"])
def test_a_terminal_run_is_already_stopped(
    monkeypatch: pytest.MonkeyPatch, terminal_stop_status: int, state: str
) -> None:
    with serve(monkeypatch, AmperityEmulator(terminal_stop_status=terminal_stop_status)) as emu:
        emu.add_run("wf-1", state=state)
        ack = hook().stop("wf-1")
        assert ack.already_stopped == (state != "canceled" or terminal_stop_status != 200)
        if terminal_stop_status != 200:  # refused: a GET confirmed the run is terminal
            assert emu.count("GET", "/api/workflow/runs/wf-1") == 1
        with pytest.raises(TargetNotRunningError, match=rf"'wf-1' is not running \(state '{state}'\)"):
            hook().stop("wf-1", fail_if_not_running=True)
        assert wait(hook(), ["wf-1"])["wf-1"].raw_state == state


def test_a_refused_stop_of_a_running_run_is_not_taken_for_stopped(amperity: AmperityEmulator) -> None:
    amperity.add_run("wf-1")
    amperity.inject("status", status=409, path="*/stop")
    with pytest.raises(Exception, match="HTTP 409"):
        hook().stop("wf-1")
    assert amperity.state_of("wf-1") == "running"


def test_oauth_token_is_fetched_once_cached_and_refreshed_once_on_401(amperity: AmperityEmulator) -> None:
    for i in range(3):
        amperity.add_run(f"wf-{i}")
    hook().stop("wf-0")
    hook().get_statuses(["wf-0", "wf-1", "wf-2"])  # another hook, four threads: the same token
    token_calls = amperity.count("POST", "/api/v0/oauth2/token")
    assert token_calls == 1
    token = amperity.requests[0]
    assert token.headers["x-amperity-tenant"] == "acme"
    amperity.expire_tokens()
    assert hook().stop("wf-1").accepted
    assert amperity.count("POST", "/api/v0/oauth2/token") == 2
    assert amperity.count("POST", "/api/workflow/runs/wf-1/stop") == 2  # the 401, then the retry
    assert amperity.state_of("wf-1") == "canceling"


def test_oauth_token_refresh_on_the_async_path(amperity: AmperityEmulator) -> None:
    amperity.add_run("wf-1")
    h = hook()

    async def scenario() -> Any:
        async with h.async_client() as client:
            await h.astop(client, "wf-1")
            amperity.expire_tokens()
            return await h.await_until_stopped(client, ["wf-1"], poll_interval=0.05, deadline=time.time() + 5)

    assert asyncio.run(scenario())["wf-1"].raw_state == "canceled"
    assert amperity.count("POST", "/api/v0/oauth2/token") == 2


def test_wrong_client_secret_and_wrong_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(monkeypatch, AmperityEmulator()) as emu:
        emu.add_run("wf-1")
        conn = emu.connection()
        use_connection(monkeypatch, "amperity_default", {**conn, "password": "not-the-secret-xyz"})
        with pytest.raises(AuthenticationError, match="invalid_client: Client authentication failed"):
            hook().stop("wf-1")
        assert emu.count("POST", "/api/workflow/runs/wf-1/stop") == 0
        use_connection(
            monkeypatch, "amperity_default", {**emu.connection("token"), "password": "expired-ui-token"}
        )
        with pytest.raises(AuthenticationError, match=r"HTTP 401.*expired token"):
            hook().stop("wf-1")
        assert emu.count("POST", "/api/workflow/runs/wf-1/stop") == 1  # a pasted token is not refreshed


def test_a_pasted_ui_token_needs_no_token_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(monkeypatch, AmperityEmulator(cancel_seconds=0), auth="token") as emu:
        emu.add_run("wf-1")
        hook().stop("wf-1")
        assert wait(hook(), ["wf-1"])["wf-1"].raw_state == "canceled"
        assert emu.count("POST", "/api/v0/oauth2/token") == 0


@pytest.mark.parametrize(
    "tenant",
    ["evil.com/x", "acme.evil.com", "", " acme", "-acme", "acme-", "a" * 64, "ac me", "acme\n", 5, None],
)
def test_a_tenant_that_is_not_a_host_label_is_refused_before_any_request(
    amperity: AmperityEmulator, monkeypatch: pytest.MonkeyPatch, tenant: Any
) -> None:
    conn = amperity.connection()
    for host in (conn["host"], None):  # with an explicit host, and with the Azure host built from it
        extra = {**conn["extra"], "tenant": tenant, "region": "azure"}
        use_connection(monkeypatch, "amperity_default", {**conn, "host": host, "extra": extra})
        with pytest.raises(InvalidInputError, match="tenant must be one host name label"):
            hook().stop("wf-1")
    assert amperity.count() == 0


@pytest.mark.parametrize(
    ("extra", "host", "expected"),
    [
        ({}, None, "https://app.amperity.com/api"),
        ({"region": "azure"}, None, "https://acme.amperity.com/api"),  # a sandbox: its production host
        ({"region": "australia"}, None, "https://app-aws-apse2.amperity.com/api"),
        ({}, "https://acme.amperity.com", "https://acme.amperity.com/api"),
        ({}, "https://proxy.example/amperity/api", "https://proxy.example/amperity/api"),
    ],
)
def test_base_url_from_region_or_host(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], host: str | None, expected: str
) -> None:
    conn = {"conn_type": "amperity", "host": host, "password": "tok-123456"}
    use_connection(monkeypatch, "amperity_default", {**conn, "extra": {"tenant": "acme-sb-12345", **extra}})
    config = hook().config
    assert config.base_url == expected
    assert config.headers["amperity-tenant"] == "acme-sb-12345"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": {"tenant": "acme", "region": "mars"}}, "region must be one of"),
        ({"extra": {"tenant": "acme", "api_version": "latest"}}, "api_version must look like"),
        ({"extra": {"tenant": "acme", "auth_type": "basic"}}, "auth_type must be one of"),
        ({"extra": {"tenant": "acme", "requests_per_second": 0}}, "requests_per_second must be"),
        ({"password": None}, "needs the OAuth client secret"),
        ({"extra": {"tenant": "acme", "token_url": "ftp://x"}}, "token_url must be an http"),
        ({"extra": {}}, "tenant must be one host name label"),
    ],
)
def test_bad_connection_settings_fail_before_any_request(
    amperity: AmperityEmulator, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], message: str
) -> None:
    use_connection(monkeypatch, "amperity_default", {**amperity.connection(), **change})
    with pytest.raises(InvalidInputError, match=message):
        hook().stop("wf-1")
    assert amperity.count() == 0


@pytest.mark.parametrize("run_id", ["wf/../../admin", "wf?x=1", "wf#a", "wf%2F", "..", "wf:stop", "ünï"])
def test_ids_reach_the_service_unchanged_in_one_path_segment(amperity: AmperityEmulator, run_id: str) -> None:
    amperity.add_run(run_id)
    hook().stop(run_id)
    assert amperity.runs[run_id].stop_at is not None  # that exact run, nothing else
    assert amperity.stop_forms == ["slash"]
    stop = [r for r in amperity.requests if r.method == "POST" and r.path.endswith("/stop")]
    assert len(stop) == 1 and stop[0].path.count("/") == 5


def test_emulator_requires_api_version_and_tenant_and_serves_the_legacy_colon_form(
    amperity: AmperityEmulator,
) -> None:
    amperity.add_run("wf-1")
    base = amperity.url + "/api/workflow/runs/wf-1"
    auth = {"Authorization": f"Bearer {amperity.settings.access_token}", "amperity-tenant": "acme"}
    missing = requests.get(base, headers=auth, timeout=5)
    assert missing.status_code == 400 and missing.json()["message"] == "Missing api-version"
    assert set(missing.json()) == {"status", "message", "request_id", "trace_id"}
    amperity.settings.bad_version_status = 401
    assert requests.get(base, headers=auth, timeout=5).status_code == 401
    versioned = {**auth, "api-version": "2024-04-01"}
    no_tenant = {k: v for k, v in versioned.items() if k != "amperity-tenant"}
    assert requests.get(base, headers=no_tenant, timeout=5).status_code == 400
    assert requests.get(base, headers={**versioned, "amperity-tenant": "other"}, timeout=5).status_code == 403
    assert requests.get(base, params={"api_version": "2024-04-01"}, headers=auth, timeout=5).ok
    assert requests.get(base + ":stop", headers=versioned, timeout=5).json()["state"] == "canceling"
    assert amperity.stop_forms == ["colon"]
    amperity.settings.legacy_colon_stop = False
    assert requests.post(base + ":stop", headers=versioned, timeout=5).status_code == 404


def test_unknown_run_names_the_id_and_the_request_id(amperity: AmperityEmulator) -> None:
    with pytest.raises(TargetNotFoundError, match=r"HTTP 404: Workflow 'wf-nope' not found \(request_id "):
        hook().stop("wf-nope")


@pytest.mark.parametrize(
    ("spellings", "states"),
    [
        ({}, ("canceling", "canceled")),
        ({"canceling": "Stopping", "canceled": "Stopped"}, ("Stopping", "Stopped")),
        ({"canceling": "in_progress", "canceled": "CANCELLED"}, ("in_progress", "CANCELLED")),
    ],
)
def test_state_spellings_are_normalised(
    amperity: AmperityEmulator, spellings: dict[str, str], states: tuple[str, str]
) -> None:
    amperity.settings.state_spellings = spellings
    amperity.add_run("wf-1")
    h = hook()
    h.stop("wf-1")
    assert h.get_status("wf-1").raw_state == states[0] and not h.get_status("wf-1").stopped
    assert wait(h, ["wf-1"])["wf-1"].raw_state == states[1]


@pytest.mark.parametrize("state", ["exploding", "Running-With-Failures", "paused"])
def test_unknown_and_running_states_are_never_stopped(
    amperity: AmperityEmulator, logs: LogCapture, state: str
) -> None:
    amperity.add_run("wf-1", state=state)
    with pytest.raises(StopTimeoutError, match=rf"still running: 'wf-1' \({state}\)") as caught:
        wait(hook(), ["wf-1"], seconds=0.3)
    assert caught.value.pending == ["wf-1"]
    assert ("unknown state 'exploding'" in logs.text()) == (state == "exploding")


def test_stop_all_pages_filters_by_type_and_name(amperity: AmperityEmulator) -> None:
    for i in range(230):
        amperity.add_run(f"wf-{i:03d}", name=f"nightly {i}" if i % 2 else f"daily {i}", type="campaign.send")
    amperity.add_run("wf-other", type="amperity.orchestration.orchestration/run")
    amperity.add_run("wf-done", state="succeeded", type="campaign.send")
    amperity.add_run("wf-sched", state="scheduled", type="campaign.send", name="nightly sched")
    amperity.settings.page_size = 50
    h = hook(workflow_type="campaign.send")
    running = h.running_targets("nightly*")
    assert len(running) == 116 and "wf-other" not in running and "wf-done" not in running
    lists = [r for r in amperity.requests if r.path == "/api/workflow/runs"]
    # Issue 12: no undocumented ``state`` filter; one window query, every state judged locally.
    assert all("state" not in r.query and r.query["created_from"] for r in lists)
    assert all(r.query["type"] == ["campaign.send"] for r in lists)
    assert len(lists) == 5  # 232 runs of that type at 50 a page


def test_requests_are_paced_below_the_documented_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real limit (10/s) and the default pace (8/s): 24 stops and their waits get no 429."""
    with serve(monkeypatch, AmperityEmulator(cancel_seconds=0)) as emu:
        ids = [f"wf-{i}" for i in range(24)]
        for run_id in ids:
            emu.add_run(run_id)
        h = hook()
        h.stop_many(ids)
        wait(h, ids, seconds=30)
        answers = [r for r in emu.requests if r.path != "/api/v0/oauth2/token"]
        # 24 stops and one list read, which shows every run canceled (none is read by id)
        assert len(answers) == 25 and emu.rate_limited == 0 and emu.peak_in_flight <= 4
        per_second = max(
            sum(1 for r in emu.requests if start <= r.at < start + 1.0)
            for start in (r.at for r in emu.requests)
        )
        assert per_second <= 10


def test_the_emulator_enforces_ten_requests_per_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve(monkeypatch, AmperityEmulator(), auth="token", requests_per_second=1000) as emu:
        headers = {"Authorization": f"Bearer {emu.settings.access_token}", "amperity-tenant": "acme"}
        codes = [
            requests.get(
                emu.url + "/api/workflow/runs", headers={**headers, "api-version": "2024-04-01"}, timeout=5
            )
            for _ in range(15)
        ]
        assert [c.status_code for c in codes].count(429) >= 5 and emu.rate_limited >= 5
        assert codes[-1].json()["message"] == "Rate limit exceeded"


def test_a_429_is_retried_with_backoff_and_the_stop_sent_once_accepted(amperity: AmperityEmulator) -> None:
    amperity.add_run("wf-1")
    amperity.inject("status", status=429, times=2, path="*/stop")
    assert hook(retry_min_wait=0.1).stop("wf-1").accepted
    assert amperity.count("POST", "/api/workflow/runs/wf-1/stop") == 3


# ---- under Airflow ----------------------------------------------------------------------------
@pytest.mark.usefixtures("airflow_db")
def test_operator_sensor_and_notifier(amperity: AmperityEmulator) -> None:
    for run_id in ("a", "b", "c", "d"):
        amperity.add_run(run_id)
    amperity.add_run("done", state="succeeded")
    with DAG(dag_id="amperity_all_paths", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        stop = AmperityStopWorkflowRunOperator(
            task_id="stop", workflow_run_id=["a", "b", "done"], deferrable=True, **FAST
        )
        in_place = AmperityStopWorkflowRunOperator(task_id="in_place", workflow_run_id="c", **FAST)
        sensor = AmperityWorkflowRunStoppedSensor(
            task_id="wait", workflow_run_id='["a", "b"]', poke_interval=0.05, timeout=10, deferrable=True
        )
        stop >> in_place >> sensor
    dr = run_dag(dag)
    assert task_states(dr) == {"stop": "success", "in_place": "success", "wait": "success"}
    result = xcom_value(dr, "stop")
    assert {k: v["raw_state"] for k, v in result.items()} == {
        "a": "canceled",
        "b": "canceled",
        "done": "succeeded",
    }
    # Several runs: taken from the run list, whose items carry no error object for a canceled run.
    assert result["a"]["details"]["canceled"] is True and "error" not in result["a"]["details"]
    assert xcom_value(dr, "in_place")["c"]["raw_state"] == "canceled"
    assert xcom_value(dr, "in_place")["c"]["details"]["error"] == "Workflow manually stopped"  # read by id
    assert amperity.count("POST", "/api/workflow/runs/done/stop") == 1
    notifier = AmperityStopWorkflowRunNotifier(workflow_run_id="d", hook_params=FAST_RETRIES)
    notifier.notify({})
    assert notifier.result["error"] is None and amperity.state_of("d") in ("canceling", "canceled")


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_stop_all_operator(amperity: AmperityEmulator, deferrable: bool) -> None:
    for i in range(12):
        amperity.add_run(f"send-{i}", type="campaign.send")
    amperity.add_run("other", type="campaign.fetch")
    with DAG(
        dag_id=f"amperity_stop_all_{deferrable}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        params={"kind": "campaign.send"},
    ) as dag:
        AmperityStopAllWorkflowRunsOperator(
            task_id="stop_all", workflow_type="{{ params.kind }}", deferrable=deferrable, **FAST
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"stop_all": "success"}
    result = xcom_value(dr, "stop_all")
    assert len(result) == 12 and all(r["raw_state"] == "canceled" for r in result.values())
    assert amperity.state_of("other") == "running"


def test_secrets_never_leak(monkeypatch: pytest.MonkeyPatch, logs: LogCapture) -> None:
    secret = "AMPLEAKCANARY" + "k" * 20
    with serve(
        monkeypatch, AmperityEmulator(client_secret=secret, cancel_seconds=0), requests_per_second=500
    ) as emu:
        emu.add_run("wf-1")
        texts = [json.dumps(hook().stop("wf-1").as_status().to_dict())]
        issued = list(emu.tokens)
        emu.expire_tokens()
        texts.append(json.dumps(hook().get_status("wf-1").to_dict()))
        issued += list(emu.tokens)
        for call in (lambda: hook().stop("nope"), lambda: hook().stop("wf-1", fail_if_not_running=True)):
            try:
                call()
            except Exception as exc:
                texts.append("".join(traceback.format_exception(exc)))
        use_connection(monkeypatch, "amperity_default", {**emu.connection(), "password": secret + "x"})
        texts.append(hook().test_connection()[1])
    haystack = "\n".join([logs.text(), *texts])
    assert "AMPLEAKCANARY" not in haystack
    assert issued and not any(token in haystack for token in issued)
