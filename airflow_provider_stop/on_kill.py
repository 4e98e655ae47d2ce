"""Stop the remote job a task started when a user kills the task (marks it failed, clears it).

Airflow runs no failure callback then (apache/airflow#38935, #34471): it calls the running task's
``on_kill`` (the task process gets SIGTERM, then SIGKILL 5 s later) and, from 3.3, the deferred task's
trigger's ``on_kill`` (#65590). ``StopOnKill`` fills both in for a user's own operator: it records each
target the task starts (``stop_on_kill``) and stops them through this provider's hooks, bounded in time,
idempotent, never raising and never logging a secret. A trigger is wrapped with ``stop_on_kill_trigger``;
its ``on_kill`` stops nothing while the task is still deferred (Airflow 3.3.2 also calls ``on_kill`` when
a trigger only moves to another triggerer, #73454), and its ``cleanup`` (every exit, restarts included)
never stops anything.

Cheap to import (a DAG file subclasses ``StopOnKill``): a hook is loaded when a target is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_stop import services
from airflow_provider_stop.hooks import bounds
from airflow_provider_stop.hooks.errors import InvalidInputError
from airflow_provider_stop.hooks.validation import validate_positive_number

if TYPE_CHECKING:
    from airflow_provider_stop.hooks.base import StopServiceHook

log = logging.getLogger(__name__)

#: Seconds a task's ``on_kill`` may spend stopping: Airflow SIGKILLs the task 5 s after its SIGTERM.
TASK_KILL_TIMEOUT = 4.0
#: Seconds a trigger's ``on_kill`` may spend: Airflow gives it ``[triggerer] on_kill_timeout`` (30 s).
TRIGGER_KILL_TIMEOUT = 25.0
#: Of which reading the task's state may take this long (a triggerer's first call to Airflow's API
#: builds the API in process: seconds on a busy host).
STATE_READ_TIMEOUT = 10.0
#: How long past its own deadline a trigger's ``on_kill`` is cut short (its requests end at the deadline).
KILL_GRACE = 1.0
#: The task-instance state that means the trigger was moved, not killed.
DEFERRED = "deferred"


@dataclass(frozen=True)
class KillTarget:
    """One target to stop on kill. Plain data (a connection id, never a credential): it travels in a
    trigger's kwargs."""

    service: str
    target_id: str
    conn_id: str
    #: The service's stop options, e.g. Feldera's ``force``.
    options: dict[str, Any] = field(default_factory=dict)
    #: Hook settings, e.g. ``request_timeout`` (capped by the kill's own time limit).
    hook_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        service: str,
        target_id: str,
        conn_id: str | None = None,
        hook_params: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> KillTarget:
        """A target of a registered service, on its default connection unless ``conn_id`` is given."""
        if service not in services.names():
            raise InvalidInputError(f"unknown service {service!r}; one of {services.names()}")
        return cls(
            service,
            target_id,
            conn_id or services.service(service).default_conn_id,
            dict(options or {}),
            dict(hook_params or {}),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KillTarget:
        return cls(
            str(data["service"]),
            str(data["target_id"]),
            str(data["conn_id"]),
            dict(data.get("options") or {}),
            dict(data.get("hook_params") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        entry = services.service(self.service)
        return f"{entry.display_name} {entry.target_param}={self.target_id!r} (connection {self.conn_id!r})"

    def make_hook(self, timeout: float) -> StopServiceHook:
        """The service's own hook; no request outlasts ``timeout`` seconds."""
        hook_class = services.load(self.service, "hook")
        params = dict(self.hook_params)
        params["request_timeout"] = min(float(params.get("request_timeout", timeout)), timeout)
        return hook_class(self.conn_id, **params)


def stop_targets(targets: Sequence[tuple[KillTarget, StopServiceHook]], timeout: float, logger: Any) -> None:
    """Send each target's stop (an already stopped target is fine), all within ``timeout`` seconds;
    log what happened, raise nothing."""
    with bounds.wait_deadline(time.time() + timeout):
        for target, hook in targets:
            try:
                ack = hook.stop(target.target_id, **target.options)
            except Exception as exc:
                logger.error("On kill, could not stop %s: %s", target.describe(), hook.redact(str(exc)))
            else:
                logger.info("On kill, stopped %s: %s", target.describe(), _outcome(ack))


async def astop_targets(
    targets: Sequence[tuple[KillTarget, StopServiceHook | None]], timeout: float, logger: Any
) -> None:
    """``stop_targets`` on the event loop, each through the hook's async path (a hook made here when
    none is given)."""
    with bounds.wait_deadline(time.time() + timeout):
        for target, hook in targets:
            try:
                hook = hook or target.make_hook(timeout)
                async with hook.async_client() as client:
                    ack = await hook.astop(client, target.target_id, **target.options)
            except Exception as exc:
                text = hook.redact(str(exc)) if hook is not None else f"{type(exc).__name__}: {exc}"
                logger.error("On kill, could not stop %s: %s", target.describe(), text)
            else:
                logger.info("On kill, stopped %s: %s", target.describe(), _outcome(ack))


def _outcome(ack: Any) -> str:
    return "it was already stopped" if ack.already_stopped else "stop accepted"


class StopOnKill:
    """
    Mixin for an operator that starts a remote job: ``class MyOperator(StopOnKill, BaseOperator)``.

    In ``execute``, call ``self.stop_on_kill(service, target_id, ...)`` for each target the task starts
    (before starting it, when its id is known: stopping a target that never started is harmless). When
    Airflow kills the running task (a user marks it failed, success or clears it; ``execution_timeout``)
    ``on_kill`` stops them, within ``stop_on_kill_timeout`` seconds. To defer, pass your trigger through
    ``self.stop_on_kill_trigger(trigger)``. An ``on_kill`` of your own must call ``super().on_kill()``.
    """

    #: Seconds ``on_kill`` may spend stopping: Airflow SIGKILLs the task 5 s after its SIGTERM.
    stop_on_kill_timeout: float = TASK_KILL_TIMEOUT

    _kill_records: list[tuple[KillTarget, StopServiceHook]]

    def stop_on_kill(
        self,
        service: str,
        target_id: str,
        *,
        conn_id: str | None = None,
        hook_params: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> KillTarget:
        """Stop ``target_id`` (of ``service``, e.g. ``"feldera"``) if the task is killed; ``options`` are
        the service's stop options (e.g. ``force=True``). The connection is read now, so that ``on_kill``
        (run inside a signal handler) only sends the stop."""
        target = KillTarget.of(service, target_id, conn_id, hook_params, options)
        hook = target.make_hook(self.stop_on_kill_timeout)
        hook.validate_target(target_id)
        try:
            hook.config  # noqa: B018 - read the connection ahead
        except Exception as exc:
            self._kill_log().warning(
                "Reading connection %r failed (%s); on kill it is read again",
                target.conn_id,
                hook.redact(str(exc)),
            )
        if not hasattr(self, "_kill_records"):
            self._kill_records = []
        self._kill_records.append((target, hook))
        self._kill_log().info("If this task is killed, it stops %s", target.describe())
        return target

    @property
    def stop_on_kill_targets(self) -> list[KillTarget]:
        """What ``on_kill`` would stop now."""
        return [target for target, _ in getattr(self, "_kill_records", [])]

    def stop_on_kill_trigger(
        self, trigger: BaseTrigger, *, timeout: float = TRIGGER_KILL_TIMEOUT
    ) -> StopOnKillTrigger:
        """``trigger``, whose ``on_kill`` (Airflow 3.3+) also stops this task's recorded targets."""
        if not self.stop_on_kill_targets:
            raise InvalidInputError("stop_on_kill_trigger: call stop_on_kill for the task's targets first")
        return StopOnKillTrigger.wrap(trigger, self.stop_on_kill_targets, timeout=timeout)

    def on_kill(self) -> None:
        """Stop the recorded targets (once), then run the base class's ``on_kill``."""
        targets, self._kill_records = getattr(self, "_kill_records", []), []
        try:
            stop_targets(targets, self.stop_on_kill_timeout, self._kill_log())
        finally:
            parent = getattr(super(), "on_kill", None)
            if parent is not None:
                parent()

    def _kill_log(self) -> Any:
        return getattr(self, "log", None) or log


class StopOnKillTrigger(BaseTrigger):
    """
    Runs another trigger unchanged; when a user kills the deferred task (``on_kill``, Airflow 3.3+),
    stops the targets, unless the task is still deferred: then the trigger only moved to another
    triggerer. ``cleanup`` (every exit, triggerer restarts included) never stops anything.

    Made by ``StopOnKill.stop_on_kill_trigger`` (or ``wrap``). Its kwargs hold the wrapped trigger's
    class path and kwargs and the targets (connection ids, never a credential).
    """

    def __init__(
        self,
        *,
        trigger_classpath: str,
        trigger_kwargs: dict[str, Any],
        targets: Sequence[Mapping[str, Any]],
        timeout: float = TRIGGER_KILL_TIMEOUT,
    ) -> None:
        super().__init__()
        self.trigger_classpath = trigger_classpath
        self.trigger_kwargs = dict(trigger_kwargs)
        self.targets = [KillTarget.from_dict(t) for t in targets]
        self.timeout = validate_positive_number(timeout, "timeout") or TRIGGER_KILL_TIMEOUT
        self._inner: BaseTrigger | None = None
        #: The targets' hooks, their connection read while the trigger runs (by target index).
        self._hooks: dict[int, StopServiceHook] = {}
        self._reading: asyncio.Future[None] | None = None

    @classmethod
    def wrap(
        cls, trigger: BaseTrigger, targets: Sequence[KillTarget], *, timeout: float = TRIGGER_KILL_TIMEOUT
    ) -> StopOnKillTrigger:
        classpath, kwargs = trigger.serialize()
        return cls(
            trigger_classpath=classpath,
            trigger_kwargs=kwargs,
            targets=[t.to_dict() for t in targets],
            timeout=timeout,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "trigger_classpath": self.trigger_classpath,
                "trigger_kwargs": self.trigger_kwargs,
                "targets": [t.to_dict() for t in self.targets],
                "timeout": self.timeout,
            },
        )

    @property
    def inner(self) -> BaseTrigger:
        """The wrapped trigger, seeing what the triggerer set on this one (task instance, ids)."""
        if self._inner is None:
            from airflow_provider_stop._compat import import_string

            trigger_class = import_string(self.trigger_classpath)
            if not (isinstance(trigger_class, type) and issubclass(trigger_class, BaseTrigger)):
                raise ValueError(f"{self.trigger_classpath!r} is not a trigger class")
            self._inner = trigger_class(**self.trigger_kwargs)
        for name in ("task_instance", "trigger_id", "triggerer_job_id", "timeout_after"):
            if hasattr(self, name):
                setattr(self._inner, name, getattr(self, name))
        return self._inner

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The connections are read beside the wrapped trigger: on_kill then reads the task's state and
        # sends the stops only (and the triggerer's API is built by then).
        self._reading = asyncio.ensure_future(self._read_connections())
        async for event in self.inner.run():
            yield event

    async def _read_connections(self) -> None:
        for index, target in enumerate(self.targets):
            hook = target.make_hook(self.timeout)
            try:
                await hook.aconfig()
            except Exception as exc:
                self.log.warning(
                    "Reading connection %r failed (%s); on kill it is read again",
                    target.conn_id,
                    hook.redact(str(exc)),
                )
            else:
                self._hooks[index] = hook

    async def cleanup(self) -> None:
        """Releases what the trigger holds; never stops a target (it runs on every exit)."""
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
        await self.inner.cleanup()

    async def on_kill(self) -> None:
        deadline = time.time() + self.timeout
        try:
            # the requests end at the deadline with their own errors; this only backs them up
            await asyncio.wait_for(self._stop_unless_moved(deadline), self.timeout + KILL_GRACE)
        except asyncio.TimeoutError:
            self.log.error("On kill, stopping %s took over %.0fs", self._names(), self.timeout)
        except Exception as exc:
            self.log.error("On kill, could not stop %s: %s: %s", self._names(), type(exc).__name__, exc)
        inner_on_kill = getattr(self.inner, "on_kill", None)
        if inner_on_kill is not None:
            await inner_on_kill()

    async def _stop_unless_moved(self, deadline: float) -> None:
        state = await self.task_state(min(STATE_READ_TIMEOUT, deadline - time.time()))
        if state == DEFERRED:
            self.log.info(
                "On kill: the task is still deferred (its trigger moved); %s left running", self._names()
            )
        elif state is None:
            self.log.error("On kill: cannot read the task's state, so %s is left running", self._names())
        else:
            self.log.info("On kill: the task is %s; stopping %s", state, self._names())
            targets = [(t, self._hooks.get(i)) for i, t in enumerate(self.targets)]
            await astop_targets(targets, deadline - time.time(), self.log)

    async def task_state(self, timeout: float = STATE_READ_TIMEOUT) -> str | None:
        """The state of this trigger's task instance now, read through the triggerer's supervisor
        (``"none"`` once cleared); None when it cannot be read."""
        ti = self.task_instance
        if ti is None:
            return None
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

            map_index = getattr(ti, "map_index", -1)
            map_index = -1 if map_index is None else map_index
            states = await asyncio.wait_for(
                asyncio.to_thread(
                    RuntimeTaskInstance.get_task_states,
                    dag_id=ti.dag_id,
                    task_ids=[ti.task_id],
                    run_ids=[ti.run_id],
                    map_index=map_index,
                ),
                max(0.1, timeout),
            )
        except Exception as exc:
            self.log.warning("Reading the task's state failed: %s: %s", type(exc).__name__, exc)
            return None
        found = states.get(ti.run_id) or {}
        key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
        if key not in found:
            return None
        state = found[key]
        return str(getattr(state, "value", state)) if state is not None else "none"

    def _names(self) -> str:
        return ", ".join(t.describe() for t in self.targets)
