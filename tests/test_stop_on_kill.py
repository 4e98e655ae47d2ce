"""``airflow_provider_stop.on_kill``: a user's operator stops what it started when it is killed (its
``on_kill``), and its trigger's ``on_kill`` does the same from the triggerer, unless the trigger only
moved; ``cleanup`` never stops. On a real deployment: e2e/test_kill.py and e2e/test_routes.py."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import BaseOperator
from airflow.providers.common.compat.standard.triggers import TimeDeltaTrigger

from airflow_provider_stop.hooks.errors import InvalidInputError
from airflow_provider_stop.hooks.feldera import FelderaHook
from airflow_provider_stop.on_kill import KillTarget, StopOnKill, StopOnKillTrigger
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import AIRFLOW_V_3_0_PLUS, FAST_RETRIES, LogCapture, needs_airflow, use_connection

SECRET = "apikey:KILLCANARY" + "Zq9" * 20


class StartsPipelines(StopOnKill, BaseOperator):
    """A user's operator (its ``execute`` is never run here: the tests call what it would)."""


def operator() -> StartsPipelines:
    return StartsPipelines(task_id="starts_pipelines")


def wait_stopped(feldera: FelderaEmulator, name: str) -> None:
    deadline = time.monotonic() + 10
    while feldera.status_of(name) != "Stopped":
        assert time.monotonic() < deadline, f"{name} is {feldera.status_of(name)}"
        time.sleep(0.05)


def ti() -> SimpleNamespace:
    """The trigger's task instance, as the triggerer sets it."""
    return SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1)


def trigger_for(*names: str, **target: Any) -> StopOnKillTrigger:
    targets = [KillTarget.of("feldera", n, options={"force": True}, **target) for n in names]
    return StopOnKillTrigger.wrap(TimeDeltaTrigger(timedelta(seconds=30)), targets, timeout=5)


@pytest.fixture
def task_state(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the triggerer's supervisor answers about the trigger's task instance (``state``), or that
    it cannot answer (``fail``)."""
    if not AIRFLOW_V_3_0_PLUS:
        pytest.skip("a trigger reads its task's state through the Task SDK (Airflow 3)")
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    answer: dict[str, Any] = {"state": "failed", "fail": False, "asked": []}

    def get_task_states(**query: Any) -> dict[str, Any]:
        answer["asked"].append(query)
        if answer["fail"]:
            raise ConnectionError("supervisor gone")
        return {"r": {"t": answer["state"]}}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(get_task_states))
    return answer


# ---- the task's on_kill ------------------------------------------------------------------------


def test_on_kill_stops_each_recorded_target_once(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("a")
    feldera.add_pipeline("b")
    op = operator()
    op.stop_on_kill("feldera", "a", force=True)
    op.stop_on_kill("feldera", "b", force=True, conn_id="feldera_default")
    assert [t.target_id for t in op.stop_on_kill_targets] == ["a", "b"]
    op.on_kill()
    op.on_kill()  # a second kill (a timeout, then the SIGTERM) sends nothing more
    for name in ("a", "b"):
        wait_stopped(feldera, name)
        assert feldera.count("POST", f"*/{name}/stop") == 1
    assert feldera.count("GET") == 0  # no status read: one request a target


def test_recording_reads_the_connection_so_on_kill_only_sends_the_stop(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """on_kill runs inside Airflow's SIGTERM handler: no connection lookup (a supervisor call) there."""
    feldera.add_pipeline("a")
    op = operator()
    op.stop_on_kill("feldera", "a", force=True)

    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("on_kill looked the connection up")

    monkeypatch.setattr(FelderaHook, "get_connection", no_lookup)
    op.on_kill()
    assert feldera.count("POST", "*/a/stop") == 1


def test_an_already_stopped_target_is_fine(feldera: FelderaEmulator, logs: LogCapture) -> None:
    feldera.add_pipeline("done", running=False)
    op = operator()
    op.stop_on_kill("feldera", "done", force=True)
    op.on_kill()
    assert feldera.status_of("done") == "Stopped"
    assert "On kill, stopped Feldera pipeline_name='done'" in logs.text()


def test_on_kill_never_raises_and_says_what_it_could_not_stop(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    feldera.add_pipeline("a")
    op = operator()
    op.stop_on_kill("feldera", "ghost", force=True)  # unknown to the service
    op.stop_on_kill("feldera", "a", conn_id="feldera_nowhere", force=True)  # no such connection
    op.stop_on_kill("feldera", "a", force=False)  # open source refuses a graceful stop (501)
    op.on_kill()
    text = logs.text()
    assert "could not stop Feldera pipeline_name='ghost'" in text
    assert "could not stop Feldera pipeline_name='a' (connection 'feldera_nowhere')" in text
    assert "EnterpriseFeature" in text or "enterprise" in text.lower()
    assert feldera.count("POST", "*/a/stop") == 1  # the graceful one, refused


def test_on_kill_is_bounded_when_the_service_is_down_or_slow(
    feldera: FelderaEmulator, logs: LogCapture
) -> None:
    feldera.add_pipeline("a")
    slow, down = operator(), operator()
    slow.stop_on_kill_timeout = down.stop_on_kill_timeout = 1.5
    slow.stop_on_kill("feldera", "a", force=True)
    feldera.inject("slow", delay=4, times=10, path="*/stop")
    started = time.monotonic()
    slow.on_kill()
    assert time.monotonic() - started < 3.5
    feldera.clear_faults()
    down.stop_on_kill("feldera", "a", force=True, hook_params={"retry_min_wait": 0.05})
    feldera.inject("status", status=503, retry_after="0", times=10**6, path="*/stop")
    started = time.monotonic()
    down.on_kill()
    assert time.monotonic() - started < 3.5
    assert feldera.count("POST", "*/a/stop") >= 3  # retried within the bound
    feldera.stop()
    started = time.monotonic()
    operator().on_kill()  # nothing recorded: nothing to do
    down.stop_on_kill("feldera", "a", force=True)
    down.on_kill()  # the emulator is gone: connection refused
    assert time.monotonic() - started < 3.5
    assert logs.text().count("On kill, could not stop") == 3


def test_no_trace_of_the_key_when_the_service_echoes_it(
    monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    with FelderaEmulator(api_key=SECRET) as emu:
        use_connection(monkeypatch, "feldera_default", emu.connection())
        emu.add_pipeline("a")
        emu.inject("echo", status=400, times=10**6)
        op = operator()
        op.stop_on_kill("feldera", "a", force=True, hook_params=FAST_RETRIES)
        op.on_kill()
        trigger = trigger_for("a", hook_params=FAST_RETRIES)
        asyncio.run(_stop(trigger))
        assert emu.count("POST", "*/a/stop") == 2
        assert SECRET not in str(trigger.serialize())
    text = logs.text()
    assert text.count("could not stop Feldera pipeline_name='a'") == 2
    assert SECRET not in text and SECRET.removeprefix("apikey:") not in text


async def _stop(trigger: StopOnKillTrigger) -> None:
    """What ``on_kill`` does once it knows the task was killed."""
    from airflow_provider_stop.on_kill import astop_targets

    await astop_targets([(t, None) for t in trigger.targets], trigger.timeout, trigger.log)


def test_bad_records_fail_in_execute_not_at_kill_time() -> None:
    op = operator()
    with pytest.raises(InvalidInputError, match="unknown service 'feldra'"):
        op.stop_on_kill("feldra", "a")
    with pytest.raises(InvalidInputError, match="pipeline_name"):
        op.stop_on_kill("feldera", " ")
    with pytest.raises(InvalidInputError, match="call stop_on_kill"):
        op.stop_on_kill_trigger(TimeDeltaTrigger(timedelta(seconds=1)))
    assert op.stop_on_kill_targets == []


def test_a_users_own_on_kill_still_runs() -> None:
    killed: list[str] = []

    class Parent(BaseOperator):
        def on_kill(self) -> None:
            killed.append("parent")

    class Child(StopOnKill, Parent):
        pass

    Child(task_id="child").on_kill()
    assert killed == ["parent"]


# ---- the trigger -------------------------------------------------------------------------------


def test_the_trigger_serializes_plain_data_and_runs_the_wrapped_trigger() -> None:
    wrapped = TimeDeltaTrigger(timedelta(seconds=0.05))
    trigger = StopOnKillTrigger.wrap(wrapped, [KillTarget.of("feldera", "a", options={"force": True})])
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_stop.on_kill.StopOnKillTrigger"
    assert kwargs["trigger_classpath"] == wrapped.serialize()[0]
    assert kwargs["targets"] == [
        {
            "service": "feldera",
            "target_id": "a",
            "conn_id": "feldera_default",
            "options": {"force": True},
            "hook_params": {},
        }
    ]
    rebuilt = StopOnKillTrigger(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)

    async def first_event() -> Any:
        async for event in rebuilt.run():
            return event.payload

    assert asyncio.run(first_event()) == wrapped.moment


def test_the_trigger_refuses_a_wrapped_class_that_is_not_a_trigger() -> None:
    trigger = StopOnKillTrigger(trigger_classpath="collections.OrderedDict", trigger_kwargs={}, targets=[])
    with pytest.raises(ValueError, match="not a trigger class"):
        _ = trigger.inner


@needs_airflow("3.0", "the Task SDK a trigger reads its task's state with")
@pytest.mark.parametrize("state", ["failed", "success", None, "up_for_retry", "skipped"])
def test_trigger_on_kill_stops_through_the_async_path(
    feldera: FelderaEmulator,
    monkeypatch: pytest.MonkeyPatch,
    task_state: dict[str, Any],
    state: str | None,
) -> None:
    feldera.add_pipeline("a")
    task_state["state"] = state

    def no_sync_stop(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the trigger used the synchronous stop")

    monkeypatch.setattr(FelderaHook, "stop", no_sync_stop)
    trigger = trigger_for("a")
    trigger.task_instance = ti()  # type: ignore[assignment]
    asyncio.run(trigger.on_kill())
    wait_stopped(feldera, "a")
    assert feldera.count("POST", "*/a/stop") == 1
    assert task_state["asked"] == [{"dag_id": "d", "task_ids": ["t"], "run_ids": ["r"], "map_index": -1}]


@needs_airflow("3.0", "the Task SDK a trigger reads its task's state with")
def test_trigger_on_kill_leaves_the_target_alone_when_the_trigger_only_moved(
    feldera: FelderaEmulator, task_state: dict[str, Any], logs: LogCapture
) -> None:
    """Airflow 3.3.2 calls on_kill when another triggerer took the trigger over (apache/airflow#73454):
    the task is still deferred then."""
    feldera.add_pipeline("a")
    task_state["state"] = "deferred"
    trigger = trigger_for("a")
    trigger.task_instance = ti()  # type: ignore[assignment]
    asyncio.run(trigger.on_kill())
    assert feldera.count("POST") == 0
    assert feldera.status_of("a") == "Running"
    assert "the task is still deferred (its trigger moved)" in logs.text()


@needs_airflow("3.0", "the Task SDK a trigger reads its task's state with")
def test_trigger_on_kill_leaves_the_target_alone_when_it_cannot_tell(
    feldera: FelderaEmulator, task_state: dict[str, Any], logs: LogCapture
) -> None:
    feldera.add_pipeline("a")
    task_state["fail"] = True
    trigger = trigger_for("a")
    trigger.task_instance = ti()  # type: ignore[assignment]
    asyncio.run(trigger.on_kill())
    no_ti = trigger_for("a")
    asyncio.run(no_ti.on_kill())
    assert feldera.count("POST") == 0
    assert logs.text().count("cannot read the task's state, so Feldera pipeline_name='a'") == 2


@needs_airflow("3.0", "the Task SDK a trigger reads its task's state with")
def test_trigger_on_kill_is_bounded_and_never_raises(
    feldera: FelderaEmulator, task_state: dict[str, Any], logs: LogCapture
) -> None:
    feldera.add_pipeline("a")
    feldera.inject("slow", delay=4, times=10, path="*/stop")
    trigger = StopOnKillTrigger.wrap(
        TimeDeltaTrigger(timedelta(seconds=30)),
        [KillTarget.of("feldera", "a", options={"force": True}), KillTarget.of("feldera", "ghost")],
        timeout=1.5,
    )
    trigger.task_instance = ti()  # type: ignore[assignment]
    started = time.monotonic()
    asyncio.run(trigger.on_kill())
    assert time.monotonic() - started < 3.5
    assert "On kill, could not stop Feldera pipeline_name='a'" in logs.text()


@needs_airflow("3.0", "the Task SDK a trigger reads its task's state with")
def test_the_running_trigger_reads_the_connection_so_on_kill_only_reads_the_state_and_stops(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch, task_state: dict[str, Any]
) -> None:
    feldera.add_pipeline("a")
    trigger = trigger_for("a")
    trigger.task_instance = ti()  # type: ignore[assignment]

    async def killed_while_running() -> None:
        running = asyncio.ensure_future(_drain(trigger))
        while not trigger._hooks:
            await asyncio.sleep(0.01)

        def no_new_hook(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("on_kill made a hook (and read the connection) again")

        monkeypatch.setattr(KillTarget, "make_hook", no_new_hook)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await trigger.on_kill()
        await trigger.cleanup()

    asyncio.run(killed_while_running())
    assert feldera.count("POST", "*/a/stop") == 1


def test_cleanup_never_stops(feldera: FelderaEmulator) -> None:
    """A triggerer restart cancels the trigger and calls cleanup only: the pipeline runs on."""
    feldera.add_pipeline("a")
    trigger = trigger_for("a")

    async def restart() -> None:
        running = asyncio.ensure_future(_drain(trigger))
        while trigger._inner is None:  # the wrapped trigger is running
            await asyncio.sleep(0)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await trigger.cleanup()

    asyncio.run(restart())
    assert feldera.count("POST") == 0
    assert feldera.status_of("a") == "Running"


async def _drain(trigger: StopOnKillTrigger) -> None:
    async for _ in trigger.run():
        pass
