"""Restarts, per service: a trigger rebuilt mid-wait keeps its deadline and sends no stop; a worker retry
after an accepted stop succeeds; a deferred deadline that passes names what is still running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_stop.hooks.errors import StopTimeoutError
from airflow_provider_stop.testing.base import Emulator
from tests.conftest import use_connection
from tests.matrix import DRIVERS, HOOK, Driver, first_event, rebuilt


@pytest.fixture(params=list(DRIVERS))
def served(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Driver, Emulator]]:
    drv = DRIVERS[request.param]
    with drv.make() as emu:
        use_connection(monkeypatch, f"{drv.service}_default", drv.connection(emu))
        yield drv, emu


def operator(drv: Driver, tid: str, **kwargs: Any) -> Any:
    return drv.cls("operators", drv.operator)(
        task_id="stop",
        **{drv.target_field: tid},
        **drv.options,
        hook_params=HOOK,
        poll_interval=0.05,
        **kwargs,
    )


def deferred(task: Any) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})
    return caught.value


def test_restart_trigger_rebuilt_mid_wait_keeps_its_deadline_and_sends_no_stop(
    served: tuple[Driver, Emulator],
) -> None:
    drv, emu = served
    drv.add(emu, "r1")
    op = operator(drv, "r1", deferrable=True, timeout=30)
    defer = deferred(op)
    assert drv.stops_handled(emu) == 1
    drv.report_unknown_state(emu, "r1")  # keeps the first trigger waiting

    async def run_until_it_polled(trigger: Any) -> None:
        task = asyncio.ensure_future(first_event(trigger))
        while emu.count("GET") == 0 and not task.done():
            await asyncio.sleep(0.01)
        task.cancel()  # the triggerer dies mid-wait

    first = rebuilt(defer.trigger)
    asyncio.run(run_until_it_polled(first))
    second = rebuilt(first)  # what a new triggerer builds from the row in the DB
    assert second.deadline == first.deadline == defer.trigger.deadline
    assert second.deadline == pytest.approx(time.time() + 30, abs=5)
    drv.override_state(emu, "r1", None)  # the target reports its real state again
    event = asyncio.run(first_event(second))
    result = getattr(op, defer.method_name)({}, event, **(defer.kwargs or {}))
    assert result["r1"]["stopped"] is True
    assert drv.stops_handled(emu) == 1  # the triggers only read


def test_restart_worker_retry_after_an_accepted_stop_succeeds(served: tuple[Driver, Emulator]) -> None:
    drv, emu = served
    drv.add(emu, "r1")
    first = operator(drv, "r1", timeout=10).execute({})
    again = operator(drv, "r1", timeout=10).execute({})  # the task retried after its stop went through
    assert first["r1"]["stopped"] and again["r1"]["stopped"]
    assert again["r1"]["raw_state"] == first["r1"]["raw_state"]


def test_restart_deferred_deadline_passes_with_a_clear_error(served: tuple[Driver, Emulator]) -> None:
    drv, emu = served
    drv.add(emu, "r1")
    drv.add(emu, "r2")
    op = operator(drv, "r1", deferrable=True, timeout=0.5)
    setattr(op, drv.target_field, ["r1", "r2"])
    defer = deferred(op)
    drv.report_unknown_state(emu, "r2")  # r2 never reaches a stopped state the hook knows
    event = asyncio.run(first_event(rebuilt(defer.trigger)))
    assert event["status"] == "timeout"
    with pytest.raises(StopTimeoutError, match=r"timed out waiting for 1 .*still running: 'r2'") as caught:
        getattr(op, defer.method_name)({}, event, **(defer.kwargs or {}))
    assert caught.value.pending == ["r2"]
