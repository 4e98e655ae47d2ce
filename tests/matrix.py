"""What the fault, restart, bad-input and secret suites share: one driver per service, and the five
paths a user runs (stop; wait in place; wait deferred; sensor; notifier), driven the way Airflow drives
them (``execute``; ``TaskDeferred`` → the trigger rebuilt from its serialized form → ``execute_complete``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.module_loading import import_string

from airflow_provider_stop.testing.amperity import AmperityEmulator
from airflow_provider_stop.testing.base import Emulator
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
from airflow_provider_stop.testing.datasift import DataSiftEmulator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from airflow_provider_stop.testing.rainforest import RainforestEmulator

#: The hook's retry budget in these suites: 4 attempts, short waits, a 0.5 s read timeout.
HOOK: dict[str, Any] = {"max_attempts": 4, "retry_min_wait": 0.01, "retry_max_wait": 0.05, "timeout": 0.5}
PATHS = ("stop", "wait_in_place", "wait_deferred", "sensor", "notifier")


@dataclass(frozen=True)
class Driver:
    """How to set up, inspect and stop one service's targets in its emulator."""

    service: str
    make: Callable[[], Emulator]
    add: Callable[[Any, str], Any]
    is_stopped: Callable[[Any, str], bool]
    #: Make a target report this state string whatever happens (None: its real state again).
    override_state: Callable[[Any, str, str | None], None]
    #: (method, raw-path glob) of the stop request.
    stop_request: tuple[str, str]
    module: str
    operator: str
    sensor: str
    notifier: str
    target_field: str
    options: dict[str, Any] = field(default_factory=dict)
    conn_extra: dict[str, Any] = field(default_factory=dict)
    secret_attr: str = "api_key"
    #: The emulator refuses to stop a target whose state it does not recognise as running.
    refuses_stop_in_unknown_state: bool = False

    def connection(self, emu: Emulator) -> dict[str, Any]:
        conn = emu.connection()
        if self.conn_extra:
            conn = {**conn, "extra": {**(conn.get("extra") or {}), **self.conn_extra}}
        return conn

    def cls(self, layer: str, name: str) -> Any:
        return import_string(f"airflow_provider_stop.{layer}.{self.module}.{name}")

    def hook(self) -> Any:
        hook_path = self.cls("operators", self.operator).hook_class_path
        return import_string(hook_path)(**HOOK)

    def report_unknown_state(self, emu: Emulator, tid: str) -> None:
        self.override_state(emu, tid, "hibernating")

    def stops_handled(self, emu: Emulator) -> int:
        return emu.handled_count(*self.stop_request)


DRIVERS = {
    "feldera": Driver(
        service="feldera",
        make=lambda: FelderaEmulator(api_key="feldera-key-LEAKCANARY-0001", stopping_seconds=0.1),
        add=lambda emu, tid: emu.add_pipeline(tid),
        is_stopped=lambda emu, tid: emu.status_of(tid) == "Stopped",
        override_state=lambda emu, tid, state: setattr(emu.pipelines[tid], "status_override", state),
        stop_request=("POST", "*/stop"),
        module="feldera",
        operator="FelderaStopPipelineOperator",
        sensor="FelderaPipelineStoppedSensor",
        notifier="FelderaStopPipelineNotifier",
        target_field="pipeline_name",
        options={"force": True},
    ),
    "dataforseo": Driver(
        service="dataforseo",
        make=lambda: DataForSeoEmulator(password="dfs-password-LEAKCANARY-0002", stop_delay_seconds=0.1),
        add=lambda emu, tid: emu.add_task(tid),
        is_stopped=lambda emu, tid: emu.progress_of(tid) == "finished",
        override_state=lambda emu, tid, state: setattr(emu.tasks[tid], "progress_override", state),
        stop_request=("POST", "/v3/on_page/force_stop"),
        module="dataforseo",
        operator="DataForSeoStopOnPageTasksOperator",
        sensor="DataForSeoOnPageTasksStoppedSensor",
        notifier="DataForSeoStopOnPageTasksNotifier",
        target_field="crawl_task_ids",
        conn_extra={"requests_per_second": 10_000},
        secret_attr="password",
    ),
    "rainforest": Driver(
        service="rainforest",
        make=lambda: RainforestEmulator(api_key="rainforest-key-LEAKCANARY-0003", queue_seconds=0.0),
        add=lambda emu, tid: emu.add_collection(tid),
        is_stopped=lambda emu, tid: emu.status_of(tid) == "idle",
        override_state=lambda emu, tid, state: setattr(emu.collections[tid], "status_override", state),
        stop_request=("GET", "*/stop"),
        module="rainforest",
        operator="RainforestStopCollectionOperator",
        sensor="RainforestCollectionStoppedSensor",
        notifier="RainforestStopCollectionNotifier",
        target_field="collection_id",
        refuses_stop_in_unknown_state=True,
    ),
    "amperity": Driver(
        service="amperity",
        make=lambda: AmperityEmulator(
            client_secret="amperity-secret-LEAKCANARY-0004", cancel_seconds=0.1, rate_limit_per_second=100_000
        ),
        add=lambda emu, tid: emu.add_run(tid),
        is_stopped=lambda emu, tid: emu.state_of(tid) == "canceled",
        override_state=lambda emu, tid, state: setattr(emu.runs[tid], "forced_state", state),
        stop_request=("POST", "*/stop"),
        module="amperity",
        operator="AmperityStopWorkflowRunOperator",
        sensor="AmperityWorkflowRunStoppedSensor",
        notifier="AmperityStopWorkflowRunNotifier",
        target_field="workflow_run_id",
        conn_extra={"requests_per_second": 10_000},
        secret_attr="client_secret",
    ),
    "datasift": Driver(
        service="datasift",
        make=lambda: DataSiftEmulator(api_key="datasift-key-LEAKCANARY-0005", credits_per_hour=10**9),
        add=lambda emu, tid: emu.add_source(tid),
        is_stopped=lambda emu, tid: emu.status_of(tid) == "stopped",
        override_state=lambda emu, tid, state: setattr(emu.sources[tid], "status_override", state),
        stop_request=("PUT", "/v1.6/source/stop"),
        module="datasift",
        operator="DataSiftStopSourceOperator",
        sensor="DataSiftSourceStoppedSensor",
        notifier="DataSiftStopSourceNotifier",
        target_field="source_id",
        refuses_stop_in_unknown_state=True,
    ),
}


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def rebuilt(trigger: Any, seen: dict[str, Any] | None = None) -> Any:
    """The trigger as the triggerer builds it: from the class path and kwargs stored in the DB."""
    classpath, kwargs = trigger.serialize()
    if seen is not None:
        seen.setdefault("trigger_kwargs", []).append(kwargs)
    return import_string(classpath)(**kwargs)


def run_deferrable(task: Any, seen: dict[str, Any] | None = None) -> Any:
    """``execute``; on ``TaskDeferred`` run the rebuilt trigger to its event and resume the task."""
    if seen is not None:
        seen["task"] = task
    try:
        return task.execute({})
    except TaskDeferred as deferred:
        event = asyncio.run(first_event(rebuilt(deferred.trigger, seen)))
        if seen is not None:
            seen.setdefault("events", []).append(event)
        return getattr(task, deferred.method_name)({}, event, **(deferred.kwargs or {}))


class NotifierReported(Exception):
    """A notifier never raises; the error it reported is turned into this, to compare outcomes."""


def run_path(drv: Driver, path: str, tid: str, timeout: float, seen: dict[str, Any] | None = None) -> Any:
    """Run one path against one target; returns the task's result or raises what the task raises."""
    common: dict[str, Any] = {drv.target_field: tid, "hook_params": HOOK}
    if path == "notifier":
        notifier = drv.cls("notifications", drv.notifier)(
            **common, **drv.options, wait_for_completion=True, poll_interval=0.05, timeout=timeout
        )
        if seen is not None:
            seen["task"] = notifier
        notifier.notify({})
        if notifier.result["error"]:
            raise NotifierReported(notifier.result["error"])
        return notifier.result["stopped"]
    if path == "sensor":
        sensor = drv.cls("sensors", drv.sensor)(
            task_id="sensor", **common, poke_interval=0.05, timeout=timeout, deferrable=True
        )
        return run_deferrable(sensor, seen)
    operator = drv.cls("operators", drv.operator)(
        task_id=path,
        **common,
        **drv.options,
        poll_interval=0.05,
        timeout=timeout,
        wait_for_completion=path != "stop",
        deferrable=path == "wait_deferred",
    )
    return run_deferrable(operator, seen)
