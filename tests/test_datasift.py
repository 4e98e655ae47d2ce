"""DataSift managed sources: raw auth header, both stop forms, 409, paging, and the credit budget."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.hooks.datasift import DataSiftHook
from airflow_provider_stop.hooks.errors import (
    AuthenticationError,
    RateLimitedError,
    StopRejectedError,
    TargetNotFoundError,
    TargetNotRunningError,
)
from airflow_provider_stop.notifications.datasift import DataSiftStopSourceNotifier
from airflow_provider_stop.operators.datasift import (
    DataSiftStopAllSourcesOperator,
    DataSiftStopSourceOperator,
)
from airflow_provider_stop.sensors.datasift import DataSiftSourceStoppedSensor
from airflow_provider_stop.testing.datasift import DataSiftEmulator
from tests.conftest import FAST_RETRIES, LogCapture, run_dag, task_states, use_connection, xcom_value

FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}
STOP = "/v1.6/source/stop"


def hook(**kwargs: Any) -> DataSiftHook:
    return DataSiftHook(**{**FAST_RETRIES, **kwargs})


def test_documented_put_form_with_the_raw_authorization_header(datasift: DataSiftEmulator) -> None:
    datasift.add_source("a" * 32)
    h = hook()
    h.stop("a" * 32)
    stop = next(r for r in datasift.requests if r.path == STOP)
    assert stop.method == "PUT" and stop.headers["content-type"].startswith(
        "application/x-www-form-urlencoded"
    )
    assert stop.headers["authorization"] == f"{datasift.settings.username}:{datasift.settings.api_key}"
    assert h.get_status("a" * 32).raw_state == "stopped"


def test_post_json_form_is_a_connection_setting(
    datasift: DataSiftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasift.settings.accepted_stop_forms = ("POST json",)
    conn = datasift.connection()
    use_connection(
        monkeypatch, "datasift_default", {**conn, "extra": {**conn["extra"], "stop_form": "post_json"}}
    )
    datasift.add_source("b1")
    hook().stop("b1")
    stop = next(r for r in datasift.requests if r.path == STOP)
    assert stop.method == "POST" and stop.headers["content-type"] == "application/json"
    assert datasift.status_of("b1") == "stopped"


@pytest.mark.parametrize("stopped_status", [409, 400, 200])
def test_stopping_a_stopped_source_is_success_after_a_get(
    monkeypatch: pytest.MonkeyPatch, stopped_status: int
) -> None:
    with DataSiftEmulator(stopped_stop_status=stopped_status) as emu:
        use_connection(monkeypatch, "datasift_default", emu.connection())
        emu.add_source("s1", status="stopped")
        ack = hook().stop("s1")
        assert ack.already_stopped == (stopped_status != 200)
        with pytest.raises(TargetNotRunningError):
            hook().stop("s1", fail_if_not_running=True)


def test_unknown_source_and_bad_credentials(
    datasift: DataSiftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TargetNotFoundError, match='Could not find the specified source instance "nope"'):
        hook().stop("nope")
    use_connection(monkeypatch, "datasift_default", {**datasift.connection(), "password": "WRONGKEY98765"})
    with pytest.raises(AuthenticationError) as err:
        hook().stop("x")
    assert "WRONGKEY98765" not in str(err.value)


def test_status_values(datasift: DataSiftEmulator, logs: LogCapture) -> None:
    for state in ("paused", "disabled", "failed", "hibernating"):
        datasift.add_source(state, status_override=state)
    statuses = hook().get_statuses(["paused", "disabled", "failed", "hibernating"])
    assert statuses["paused"].stopped and statuses["disabled"].stopped
    assert statuses["failed"].stopped and statuses["failed"].error == "source is failed"
    assert not statuses["hibernating"].stopped
    assert "unknown status 'hibernating'; treating it as running" in logs.text()


def test_waits_for_the_budget_to_reset_instead_of_burning_a_refused_call(
    datasift: DataSiftEmulator, logs: LogCapture
) -> None:
    datasift.add_source("s1")
    datasift.add_source("s2")
    h = hook()
    datasift.reset_budget_in(1.5, remaining=8)  # one stop (5) fits, then 3 are left: not enough for another
    h.stop("s1")  # learns the budget from the answer's headers
    assert h.remaining == 3 and h.cost == 5
    started = time.monotonic()
    h.stop("s2")
    assert time.monotonic() - started >= 0.3
    assert datasift.count("PUT", STOP) == 2  # no refused call was sent
    assert "waiting" in logs.text() and "for the budget to reset" in logs.text()


def test_an_exhausted_budget_is_a_rate_limit_not_an_hour_of_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    with DataSiftEmulator(credits_per_hour=5, exhausted_status=403) as emu:
        use_connection(monkeypatch, "datasift_default", emu.connection())
        emu.add_source("s1")
        emu.add_source("s2")
        h = hook(max_budget_wait=1.0)  # the budget resets in an hour: more than this task may wait
        h.stop("s1")
        with pytest.raises(RateLimitedError, match="0 credits left, a call costs 5"):
            h.stop("s2")
        assert emu.count("PUT", STOP) == 1  # the refused call was never sent
    for status in (403, 429):  # a hook that does not know the budget yet hears it from the server
        with DataSiftEmulator(credits_per_hour=5, exhausted_status=status) as emu:
            use_connection(monkeypatch, "datasift_default", emu.connection())
            emu.add_source("s1")
            emu.add_source("s2")
            hook().stop("s1")
            with pytest.raises(RateLimitedError, match=r"API Rate Limit Exceeded|credits left"):
                hook(max_budget_wait=1.0).stop("s2")


def test_bad_connection_settings_fail_before_any_request(
    datasift: DataSiftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = datasift.connection()
    use_connection(monkeypatch, "datasift_default", {**conn, "extra": {"stop_form": "carrier_pigeon"}})
    with pytest.raises(Exception, match="stop_form must be one of"):
        hook().stop("s")
    use_connection(monkeypatch, "datasift_default", {**conn, "login": None})
    with pytest.raises(Exception, match="needs the DataSift username"):
        hook().stop("s")
    assert datasift.count() == 0


def test_a_rejected_stop_of_a_running_source_is_not_taken_for_stopped(
    datasift: DataSiftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasift.add_source("s1")
    # The server reads only JSON bodies, so a PUT with a form body gets 400; the connection pins the
    # form (an explicit stop_form is sent as is: the default would try POST JSON next and succeed).
    datasift.settings.accepted_stop_forms = ("PUT json", "POST json")
    conn = datasift.connection()
    use_connection(
        monkeypatch, "datasift_default", {**conn, "extra": {**conn["extra"], "stop_form": "put_form"}}
    )
    with pytest.raises(StopRejectedError, match="id is required"):
        hook().stop("s1")
    assert datasift.status_of("s1") == "running"


# ---- under Airflow ----------------------------------------------------------------------------
@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_stop_all_pages_through_sources_and_filters_by_type(
    datasift: DataSiftEmulator, deferrable: bool
) -> None:
    for i in range(130):  # two pages of 100
        datasift.add_source(f"ig{i:03d}", source_type="instagram", status="running" if i % 2 else "stopped")
    datasift.add_source("fb1", source_type="facebook_page")
    with DAG(dag_id=f"ds_stop_all_{deferrable}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        DataSiftStopAllSourcesOperator(
            task_id="stop_all", source_type="instagram", deferrable=deferrable, **FAST
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"stop_all": "success"}
    result = xcom_value(dr, "stop_all")
    assert len(result) == 65 and all(r["raw_state"] == "stopped" for r in result.values())
    assert datasift.status_of("fb1") == "running"
    reads = [r for r in datasift.requests if r.method == "GET" and r.path == "/v1.6/source/get"]
    # Stop-all lists 20 a page (7 pages of instagram sources); the wait reads the list too (2 pages
    # of 100 a poll), not each of the 65 sources.
    assert [r for r in reads if "id" in r.query] == []
    assert sum(r.query.get("per_page") == ["20"] for r in reads) == 7


@pytest.mark.usefixtures("airflow_db")
def test_operator_sensor_and_notifier(datasift: DataSiftEmulator) -> None:
    for sid in ("a", "b", "c"):
        datasift.add_source(sid)
    with DAG(dag_id="ds_all_paths", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        stop = DataSiftStopSourceOperator(task_id="stop", source_id=["a", "b"], deferrable=True, **FAST)
        wait = DataSiftSourceStoppedSensor(
            task_id="wait", source_id=["a", "b"], poke_interval=0.05, timeout=10
        )
        stop >> wait
    dr = run_dag(dag)
    assert task_states(dr) == {"stop": "success", "wait": "success"}
    assert xcom_value(dr, "stop")["a"]["details"]["source_type"] == "instagram"
    notifier = DataSiftStopSourceNotifier(source_id="c", hook_params=FAST_RETRIES)
    notifier.notify({})
    assert notifier.result["error"] is None and datasift.status_of("c") == "stopped"


def test_secrets_never_leak(monkeypatch: pytest.MonkeyPatch, logs: LogCapture) -> None:
    key = "DSLEAKCANARY" + "9" * 20
    with DataSiftEmulator(api_key=key) as emu:
        use_connection(monkeypatch, "datasift_default", emu.connection())
        emu.add_source("s1")
        texts = [str(hook().stop("s1").as_status().to_dict())]
        for call in (lambda: hook().stop("nope"), lambda: hook().stop("s1", fail_if_not_running=True)):
            try:
                call()
            except Exception as exc:
                texts.append(repr(exc))
        use_connection(monkeypatch, "datasift_default", {**emu.connection(), "password": key + "x"})
        texts.append(hook().test_connection()[1])
    assert "DSLEAKCANARY" not in "\n".join([logs.text(), *texts])
