"""What the fault, restart, bad-input and secret suites share: one driver per service, and the five
paths a user runs (stop; wait in place; wait deferred; sensor; notifier), driven the way Airflow drives
them (``execute``; ``TaskDeferred`` → the trigger rebuilt from its serialized form → ``execute_complete``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import TaskDeferred

import tests.extra_services  # noqa: F401 - registers the test-only services
from airflow_provider_stop import services
from airflow_provider_stop._compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_stop.testing.base import Emulator

#: The hook's retry budget in these suites: 4 attempts, short waits, a 0.5 s request timeout.
HOOK: dict[str, Any] = {
    "max_attempts": 4,
    "retry_min_wait": 0.01,
    "retry_max_wait": 0.05,
    "request_timeout": 0.5,
}
#: The paths every suite runs; Airflow 3.3 adds a stop task started in the triggerer.
PATHS = ("stop", "wait_in_place", "wait_deferred", "sensor", "notifier") + (
    ("start_from_trigger",) if AIRFLOW_V_3_3_PLUS else ()
)


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
        return import_string(f"{services.service(self.service).module(layer)}.{name}")

    def hook(self) -> Any:
        return services.load(self.service, "hook")(**HOOK)

    def report_unknown_state(self, emu: Emulator, tid: str) -> None:
        self.override_state(emu, tid, "hibernating")

    def stops_handled(self, emu: Emulator) -> int:
        return emu.handled_count(*self.stop_request)


#: How the shared suites set up each service's emulator: a canary secret and short transitions. A
#: service without an entry here is started with its emulator's defaults.
SETUP: dict[str, dict[str, Any]] = {
    "feldera": {
        "emulator": {"api_key": "feldera-key-LEAKCANARY-0001", "stopping_seconds": 0.1},
        "options": {"force": True},
    },
    "dataforseo": {
        "emulator": {"password": "dfs-password-LEAKCANARY-0002", "stop_delay_seconds": 0.1},
        "conn_extra": {"requests_per_second": 10_000},
        "secret_attr": "password",
    },
    "rainforest": {
        "emulator": {"api_key": "rainforest-key-LEAKCANARY-0003", "queue_seconds": 0.0},
        "refuses_stop_in_unknown_state": True,
    },
    "amperity": {
        "emulator": {
            "client_secret": "amperity-secret-LEAKCANARY-0004",
            "cancel_seconds": 0.1,
            "rate_limit_per_second": 100_000,
        },
        "conn_extra": {"requests_per_second": 10_000},
        "secret_attr": "client_secret",
    },
    "datasift": {
        "emulator": {"api_key": "datasift-key-LEAKCANARY-0005", "credits_per_hour": 10**9},
        "refuses_stop_in_unknown_state": True,
    },
}


def driver(svc: services.Service) -> Driver:
    """The shared suites' driver of one registered service: its classes from the registry, its
    targets through the emulator's generic interface (``add_target``, ``override_state``, ...)."""
    setup = SETUP.get(svc.name, {})
    emulator_cls = services.load(svc.name, "emulator")
    kwargs = dict(setup.get("emulator", {}))
    return Driver(
        service=svc.name,
        make=lambda: emulator_cls(**kwargs),
        add=lambda emu, tid: emu.add_target(tid),
        is_stopped=lambda emu, tid: emu.is_stopped(tid),
        override_state=lambda emu, tid, state: emu.override_state(tid, state),
        stop_request=emulator_cls.stop_route,
        module=svc.name,
        operator=services.load(svc.name, "operator").__name__,
        sensor=services.load(svc.name, "sensor").__name__,
        notifier=services.load(svc.name, "notifier").__name__,
        target_field=svc.target_param,
        options=dict(setup.get("options", {})),
        conn_extra=dict(setup.get("conn_extra", {})),
        secret_attr=setup.get("secret_attr", "api_key"),
        refuses_stop_in_unknown_state=setup.get("refuses_stop_in_unknown_state", False),
    )


DRIVERS = {svc.name: driver(svc) for svc in services.services()}


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


def run_started_in_triggerer(task: Any, seen: dict[str, Any] | None = None) -> Any:
    """What Airflow 3.3 does with a task that has ``start_from_trigger``: the scheduler stores its
    ``start_trigger_args`` kwargs (JSON) in the trigger row, the triggerer builds the trigger from them
    and runs it; an end-of-task event ends the task with its XCom, any other event resumes the task in
    ``next_method`` on a worker."""
    from airflow.triggers.base import BaseTaskEndEvent

    args = task.start_trigger_args
    kwargs = json.loads(json.dumps(args.trigger_kwargs))
    if seen is not None:
        seen["task"] = task
        seen.setdefault("start_kwargs", []).append(kwargs)

    async def first() -> Any:
        async for event in import_string(args.trigger_cls)(**kwargs).run():
            return event
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(first())
    if isinstance(event, BaseTaskEndEvent):
        assert event.task_instance_state == "success", event
        if seen is not None:
            seen.setdefault("events", []).append(event.xcoms)
        return (event.xcoms or {})["return_value"]
    payload = dict(event.payload)
    if seen is not None:
        seen.setdefault("events", []).append(payload)
    return getattr(task, args.next_method)({}, payload)


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
        **({"start_from_trigger": True} if path == "start_from_trigger" else {}),
    )
    if path == "start_from_trigger":
        return run_started_in_triggerer(operator, seen)
    return run_deferrable(operator, seen)
