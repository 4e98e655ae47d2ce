"""The hand-over from worker to triggerer stays off Airflow's deferral race (apache/airflow 66374, 67287,
71580): a stop that is done within ``[stop_provider] wait_before_defer`` finishes on the worker, and a
trigger holds every event until ``trigger_min_delay`` after the deferral, also when rebuilt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_stop.bindings.base import (
    TRIGGER_MIN_DELAY_SECONDS,
    WAIT_BEFORE_DEFER_SECONDS,
    defer_settings,
)
from airflow_provider_stop.get_provider_info import get_provider_info
from airflow_provider_stop.testing.base import Emulator
from airflow_provider_stop.triggers.wait import StopWaitTrigger
from tests.conftest import use_connection
from tests.matrix import DRIVERS, HOOK, Driver, first_event, rebuilt

#: Services whose emulator still stops a target that reports a state the hook does not know.
KEEPS_RUNNING = [name for name, drv in DRIVERS.items() if not drv.refuses_stop_in_unknown_state]


def settings(monkeypatch: pytest.MonkeyPatch, wait_before_defer: float, trigger_min_delay: float) -> None:
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__WAIT_BEFORE_DEFER", str(wait_before_defer))
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__TRIGGER_MIN_DELAY", str(trigger_min_delay))


def served(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Driver, Emulator]]:
    drv = DRIVERS[name]
    with drv.make() as emu:
        use_connection(monkeypatch, f"{drv.service}_default", drv.connection(emu))
        yield drv, emu


@pytest.fixture(params=list(DRIVERS))
def any_service(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Driver, Emulator]]:
    yield from served(request.param, monkeypatch)


@pytest.fixture(params=KEEPS_RUNNING)
def held_service(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Driver, Emulator]]:
    yield from served(request.param, monkeypatch)


def operator(drv: Driver, targets: str | list[str], **kwargs: Any) -> Any:
    return drv.cls("operators", drv.operator)(
        task_id="stop",
        **{drv.target_field: targets},
        **drv.options,
        hook_params=HOOK,
        poll_interval=0.05,
        deferrable=True,
        **kwargs,
    )


def test_the_defaults_are_declared_where_airflow_shows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__STOP_PROVIDER__WAIT_BEFORE_DEFER")
    monkeypatch.delenv("AIRFLOW__STOP_PROVIDER__TRIGGER_MIN_DELAY")
    assert defer_settings() == (WAIT_BEFORE_DEFER_SECONDS, TRIGGER_MIN_DELAY_SECONDS) == (5.0, 10.0)
    options = get_provider_info()["config"]["stop_provider"]["options"]
    assert float(options["wait_before_defer"]["default"]) == WAIT_BEFORE_DEFER_SECONDS
    assert float(options["trigger_min_delay"]["default"]) == TRIGGER_MIN_DELAY_SECONDS


def test_a_fast_stop_finishes_on_the_worker_without_deferring(
    any_service: tuple[Driver, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    drv, emu = any_service
    settings(monkeypatch, wait_before_defer=10, trigger_min_delay=10)
    drv.add(emu, "r1")
    result = operator(drv, "r1", timeout=30).execute({})  # no TaskDeferred: nothing left to wait for
    assert result["r1"]["stopped"] is True
    assert drv.is_stopped(emu, "r1")
    assert drv.stops_handled(emu) == 1


def test_a_slow_stop_defers_only_what_still_runs_and_the_trigger_holds_its_event(
    held_service: tuple[Driver, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    drv, emu = held_service
    settings(monkeypatch, wait_before_defer=0.3, trigger_min_delay=1.5)
    drv.add(emu, "fast")
    drv.add(emu, "slow")
    drv.report_unknown_state(emu, "slow")  # still "running" when the worker hands over
    op = operator(drv, ["fast", "slow"], timeout=30)
    deferred_at = time.time()
    with pytest.raises(TaskDeferred) as caught:
        op.execute({})
    stops_sent = drv.stops_handled(emu)
    assert stops_sent >= 1
    trigger = caught.value.trigger
    assert isinstance(trigger, StopWaitTrigger)
    assert trigger.target_ids == ["slow"]  # "fast" was seen stopped on the worker
    assert trigger.not_before == pytest.approx(deferred_at + 1.5, abs=1.0)
    again = rebuilt(trigger)  # a triggerer restart keeps the same absolute hold
    assert again.not_before == trigger.not_before
    drv.override_state(emu, "slow", None)
    event = asyncio.run(first_event(again))
    assert trigger.not_before is not None and time.time() >= trigger.not_before
    assert event["status"] == "success"
    result = getattr(op, caught.value.method_name)({}, event, **(caught.value.kwargs or {}))
    assert {t: r["stopped"] for t, r in result.items()} == {"fast": True, "slow": True}
    assert drv.is_stopped(emu, "fast") and drv.is_stopped(emu, "slow")
    assert drv.stops_handled(emu) == stops_sent  # the trigger and the resumed task send no stop


def test_every_kind_of_event_is_held_until_not_before(monkeypatch: pytest.MonkeyPatch) -> None:
    drv = DRIVERS["feldera"]
    with drv.make() as emu:
        use_connection(monkeypatch, "feldera_default", drv.connection(emu))
        drv.add(emu, "r1")
        drv.report_unknown_state(emu, "r1")
        not_before = time.time() + 1.0
        trigger = StopWaitTrigger(
            hook_class_path="airflow_provider_stop.hooks.feldera.FelderaHook",
            conn_id="feldera_default",
            target_ids=["r1"],
            poll_interval=0.05,
            deadline=time.time() + 0.1,  # times out long before not_before
            hook_params=HOOK,
            not_before=not_before,
        )
        event = asyncio.run(first_event(trigger))
    assert event["status"] == "timeout"
    assert time.time() >= not_before


def test_a_deferring_sensor_hands_its_trigger_the_hold(
    held_service: tuple[Driver, Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    drv, emu = held_service
    settings(monkeypatch, wait_before_defer=0, trigger_min_delay=7)
    drv.add(emu, "r1")
    drv.report_unknown_state(emu, "r1")
    sensor = drv.cls("sensors", drv.sensor)(
        task_id="sensor", **{drv.target_field: "r1"}, hook_params=HOOK, timeout=30, deferrable=True
    )
    with pytest.raises(TaskDeferred) as caught:
        sensor.execute({})
    assert caught.value.trigger.not_before == pytest.approx(time.time() + 7, abs=2)


def test_after_an_escalation_a_fast_forced_stop_finishes_without_a_second_deferral(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator
    from airflow_provider_stop.testing.feldera import FelderaEmulator

    settings(monkeypatch, wait_before_defer=10, trigger_min_delay=0.2)
    with FelderaEmulator(edition="Enterprise", suspend_seconds=0.05, stopping_seconds=0.2) as emu:
        use_connection(monkeypatch, "feldera_default", emu.connection())
        emu.add_pipeline("stuck", paused=True, stuck_in_stopping=True)
        op = FelderaStopPipelineOperator(
            task_id="stop",
            pipeline_name="stuck",
            force=False,
            force_after=0.3,
            deferrable=True,
            poll_interval=0.05,
            timeout=30,
            hook_params=HOOK,
        )
        with pytest.raises(TaskDeferred) as caught:  # the graceful stop hangs past force_after
            op.execute({})
        event = asyncio.run(first_event(rebuilt(caught.value.trigger)))
        assert event["status"] == "timeout"
        # escalated on the worker: the forced stop is done within wait_before_defer, so no new deferral
        result = getattr(op, caught.value.method_name)({}, event, **(caught.value.kwargs or {}))
        assert result["stuck"]["raw_state"] == "Stopped"
        forces = [r.query["force"][0] for r in emu.requests if r.method == "POST"]
        assert forces == ["false", "true"]


def test_a_status_read_refused_for_now_on_the_worker_defers_instead_of_failing(
    amperity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rate limited past its retries while it waits on the worker (many tasks of one account at
    once): the stop is sent, so the task defers and the trigger reads again; it does not fail."""
    from airflow_provider_stop.operators.amperity import AmperityStopWorkflowRunOperator

    settings(monkeypatch, wait_before_defer=10, trigger_min_delay=0)
    amperity.add_run("wf-1")
    amperity.inject("status", status=429, times=100, method="GET")
    op = AmperityStopWorkflowRunOperator(
        task_id="stop", workflow_run_id="wf-1", deferrable=True, poll_interval=0.05, hook_params=HOOK
    )
    with pytest.raises(TaskDeferred) as caught:
        op.execute({})
    assert caught.value.trigger.target_ids == ["wf-1"]
    assert amperity.count("POST", "/api/workflow/runs/wf-1/stop") == 1
