"""Airflow's own semantics around a stop task: one deadline with ``execution_timeout`` in place and
deferred, and retries that resume (the task state store of Airflow 3.3+) instead of starting afresh."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_stop.bindings.base import task_deadline
from airflow_provider_stop.hooks.errors import StopTimeoutError
from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator
from airflow_provider_stop.operators.resume import STORE_KEY
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import FAST_RETRIES

FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}


class Store:
    """Airflow 3.3's ``task_state_store`` accessor, kept in memory: retries of a task share it."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        assert value is not None
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def context(started: datetime | None = None, store: Store | None = None) -> Any:
    ctx: dict[str, Any] = {"ti": SimpleNamespace(start_date=started or datetime.now(timezone.utc))}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


# ---- one deadline -------------------------------------------------------------------------------


def test_the_deadline_is_the_earlier_of_timeout_and_what_execution_timeout_leaves() -> None:
    started = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)
    t0 = started.timestamp()
    ten_minutes = timedelta(minutes=10)
    # execution_timeout earlier: it wins, less 10% of it (at most 60 s)
    assert task_deadline(context(started), ten_minutes, t0 + 3600) == t0 + 600 - 60
    assert task_deadline(context(started), timedelta(seconds=100), t0 + 3600) == t0 + 100 - 10
    assert task_deadline(context(started), timedelta(hours=2), t0 + 3600) == t0 + 3600  # timeout earlier
    assert task_deadline(context(started), None, t0 + 3600) == t0 + 3600


def still_stopping(feldera: FelderaEmulator, name: str) -> None:
    feldera.add_pipeline(name)
    feldera.settings.stopping_seconds = 3600.0


def now_stopped(feldera: FelderaEmulator, name: str) -> None:
    """The stop an earlier try sent has taken effect."""
    feldera.pipelines[name].schedule(time.time(), [(0.0, "Stopped", "Stopped", None)])


def test_in_place_the_execution_timeout_ends_the_wait_with_the_provider_error(
    feldera: FelderaEmulator,
) -> None:
    still_stopping(feldera, "p")
    op = FelderaStopPipelineOperator(
        task_id="stop",
        pipeline_name="p",
        force=True,
        deferrable=False,
        timeout=3600,
        execution_timeout=timedelta(seconds=2),
        **FAST,
    )
    started = time.time()
    with pytest.raises(StopTimeoutError) as caught:
        op.execute(context())
    assert time.time() - started < 10  # not the hour of `timeout`
    assert caught.value.pending == ["p"]
    assert "still running: 'p' (Stopping)" in str(caught.value)


def test_deferred_the_trigger_gets_the_same_deadline(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    still_stopping(feldera, "p")
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__WAIT_BEFORE_DEFER", "0")
    started = datetime.now(timezone.utc)
    op = FelderaStopPipelineOperator(
        task_id="stop",
        pipeline_name="p",
        force=True,
        deferrable=True,
        timeout=3600,
        execution_timeout=timedelta(seconds=200),
        **FAST,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(started))
    assert deferred.value.trigger.deadline == pytest.approx(started.timestamp() + 200 - 20)


# ---- retries that resume ------------------------------------------------------------------------


class WorkerCrash(BaseException):
    """What a SIGKILLed worker looks like to the code after it: nothing runs any more."""


def crash_while_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_stop.hooks.base import StopServiceHook

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise WorkerCrash

    monkeypatch.setattr(StopServiceHook, "wait_until_stopped", crash)


def test_a_retry_does_not_resend_an_accepted_stop_and_keeps_the_first_deadline(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    still_stopping(feldera, "p")
    store = Store()
    make = lambda: FelderaStopPipelineOperator(  # noqa: E731
        task_id="stop", pipeline_name="p", force=True, deferrable=False, timeout=3600, **FAST
    )
    with monkeypatch.context() as patched:
        crash_while_waiting(patched)
        with pytest.raises(WorkerCrash):
            make().execute(context(store=store))
    first = dict(store.values[STORE_KEY])
    assert feldera.count("POST", "/v0/pipelines/p/stop") == 1
    assert list(first["accepted"]) == ["p"]

    now_stopped(feldera, "p")  # the retry finds it stopped
    result = make().execute(context(store=store))
    assert result["p"]["raw_state"] == "Stopped"
    assert feldera.count("POST", "/v0/pipelines/p/stop") == 1  # not sent again
    assert STORE_KEY not in store.values  # forgotten once the task succeeded


def test_a_retry_keeps_the_first_tries_deadline(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    still_stopping(feldera, "p")
    store = Store()
    store.set(
        STORE_KEY,
        {"deadline": time.time() + 1.0, "escalate_at": None, "accepted": {"p": {"target_id": "p"}}},
    )
    op = FelderaStopPipelineOperator(
        task_id="stop", pipeline_name="p", force=True, deferrable=False, timeout=3600, **FAST
    )
    started = time.time()
    with pytest.raises(StopTimeoutError):
        op.execute(context(store=store))
    assert time.time() - started < 10  # the first try's deadline, not a fresh hour
    assert feldera.count("POST", "/v0/pipelines/p/stop") == 0


def stops(feldera: FelderaEmulator) -> dict[str, int]:
    """Stop requests by their ``force`` parameter."""
    sent = [
        r.query.get("force", ["?"])[0]
        for r in feldera.requests
        if r.method == "POST" and r.path.endswith("/stop")
    ]
    return {force: sent.count(force) for force in sorted(set(sent))}


def test_a_retry_after_the_escalation_does_not_escalate_again(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    still_stopping(feldera, "p")
    feldera.settings.edition = "Enterprise"  # a graceful stop first
    store = Store()
    make = lambda: FelderaStopPipelineOperator(  # noqa: E731
        task_id="stop", pipeline_name="p", deferrable=False, timeout=3600, force_after=0.2, **FAST
    )
    from airflow_provider_stop.hooks.base import StopServiceHook

    real_wait = StopServiceHook.wait_until_stopped
    calls = []

    def wait_then_crash(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            return real_wait(self, *args, **kwargs)  # times out at force_after: the escalation follows
        raise WorkerCrash

    with monkeypatch.context() as patched:
        patched.setattr(StopServiceHook, "wait_until_stopped", wait_then_crash)
        with pytest.raises(WorkerCrash):
            make().execute(context(store=store))
    record = store.values[STORE_KEY]
    assert record["escalate_at"] is None and record["escalation"] == {"force": True}
    assert stops(feldera) == {"false": 1, "true": 1}

    now_stopped(feldera, "p")
    make().execute(context(store=store))
    assert stops(feldera) == {"false": 1, "true": 1}  # neither the stop nor the escalation again


def test_a_stale_record_from_a_cleared_task_is_ignored(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    store = Store()
    store.set(STORE_KEY, {"deadline": time.time() - 1, "escalate_at": None, "accepted": {"p": {}}})
    op = FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", force=True, deferrable=False, **FAST)
    assert op.execute(context(store=store))["p"]["raw_state"] == "Stopped"
    assert feldera.count("POST", "/v0/pipelines/p/stop") == 1
