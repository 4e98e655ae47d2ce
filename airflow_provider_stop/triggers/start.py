"""A whole stop task in the triggerer: Airflow 3.3's ``start_from_trigger`` (apache/airflow#55068).

The scheduler defers the task straight to this trigger; the triggerer renders the task's target and
connection fields (the trigger's attributes of the same names), and the trigger sends the stop and waits
with ``StopWaitTrigger``'s loop. When every target stopped cleanly it ends the task itself
(``TaskSuccessEvent``, the result as the task's XCom): no worker slot at all. Anything else (an error, a
timeout, an escalation, a stop reported with an error, asset events to emit) resumes the task on a worker
in the operator's ``execute_complete``, so the result and the error are the same as in every other mode.

The service's extra link comes with the task's end (its XComs), not before the stop as from a worker.

A triggerer restart runs the trigger again: the stop is sent again, which every service answers as
already stopping or stopped (the hooks settle it), and the wait's clock restarts; Airflow's own trigger
timeout, set when the task was deferred, still bounds the task. Airflow 3.3 offers triggers no task
state store, so a retry starts afresh too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_provider_stop import audit, metrics, services
from airflow_provider_stop.events import accept_partial, error_payload
from airflow_provider_stop.hooks.base import StopServiceHook
from airflow_provider_stop.hooks.errors import BatchStopError, InvalidInputError
from airflow_provider_stop.hooks.validation import normalize_target_ids
from airflow_provider_stop.triggers.wait import StopWaitTrigger

#: The settings a start trigger carries (the operator's, as plain data) and their defaults.
SETTINGS: dict[str, Any] = {
    "wait": True,
    "wait_seconds": 3600.0,
    "poll_interval": 10.0,
    "fail_if_not_running": False,
    "fail_on_partial_failure": True,
    "stop_options": {},
    "escalate_after": None,
    "escalation_options": None,
    "hook_params": {},
    "finish_on_worker": False,
}


class StopStartTrigger(BaseTrigger):
    """
    Stop a service's targets and wait until they are stopped, all in the triggerer.

    ``target_field`` and ``conn_id_field`` name the operator's templated fields (e.g. ``pipeline_name``,
    ``feldera_conn_id``); their values arrive as keyword arguments of those names, so Airflow renders
    them here. ``settings`` are the operator's other parameters (``SETTINGS``): plain data, never a
    credential.
    """

    def __init__(
        self,
        *,
        service: str,
        target_field: str,
        conn_id_field: str,
        settings: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__()
        if service not in services.names():
            raise ValueError(f"unknown service {service!r}")
        unexpected = set(fields) - {target_field, conn_id_field}
        if unexpected or target_field not in fields or conn_id_field not in fields:
            raise TypeError(
                f"StopStartTrigger takes {target_field!r} and {conn_id_field!r}, got {sorted(fields)}"
            )
        unknown = set(settings or {}) - set(SETTINGS)
        if unknown:
            raise TypeError(f"unknown StopStartTrigger settings: {sorted(unknown)}")
        self.service = service
        self.target_field = target_field
        self.conn_id_field = conn_id_field
        self.settings = {**SETTINGS, **(settings or {})}
        for name in (target_field, conn_id_field):
            setattr(self, name, fields[name])

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "service": self.service,
                "target_field": self.target_field,
                "conn_id_field": self.conn_id_field,
                "settings": self.settings,
                self.target_field: getattr(self, self.target_field),
                self.conn_id_field: getattr(self, self.conn_id_field),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        payload, result = await self._stop_and_wait()
        if result is not None:
            self.log.info("All stopped in the triggerer: %s; the task ends here", sorted(result))
            yield TaskSuccessEvent(xcoms={**payload["resume"].get("links", {}), "return_value": result})
        else:
            self.log.info("Resuming the task on a worker to finish: %s", payload["status"])
            yield TriggerEvent(payload)

    async def _stop_and_wait(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The event for the worker to finish with, and the task's result when no worker is needed."""
        s = self.settings
        started = time.time()
        deadline = started + float(s["wait_seconds"])
        escalate_at = (
            started + float(s["escalate_after"])
            if s["escalate_after"] is not None and s["escalation_options"] is not None
            else None
        )
        resume: dict[str, Any] = {
            "deadline": deadline,
            "escalate_at": escalate_at,
            "done": {},
            "failed": {},
            "prior_errors": {},
            "audit_records": {},
            "sent_at": started,
            "requests": 0,
        }
        hook: StopServiceHook | None = None
        try:
            hook = self._hook()
            target_ids = [
                hook.validate_target(t)
                for t in normalize_target_ids(getattr(self, self.target_field), self.target_field)
            ]
            resume["links"] = await self._links(hook, target_ids)
            accepted = await self._stop(hook, target_ids, resume)
        except Exception as exc:
            self.log.error("The stop failed: %s", hook.redact(str(exc)) if hook else exc)
            return {**error_payload(exc, hook.redact if hook else str), "resume": resume}, None
        if not s["wait"]:  # as in place: the accepted stops and the refused ones, the task succeeds
            result = {t: audit.attach(st, resume["audit_records"]) for t, st in accepted.items()}
            return {"status": "success", "statuses": {}, "resume": resume}, result | resume["failed"]
        waiter = StopWaitTrigger(
            hook_class_path=services.class_path(type(hook)),
            conn_id=hook.conn_id,
            target_ids=list(accepted),
            poll_interval=float(s["poll_interval"]),
            deadline=min(deadline, escalate_at) if escalate_at is not None else deadline,
            hook_params=s["hook_params"],
            resume=resume,
        )
        async for event in waiter.run():
            payload: dict[str, Any] = event.payload
            break
        statuses = payload.get("statuses") or {}
        clean = payload["status"] == "success" and not any(st.get("error") for st in statuses.values())
        if not clean or resume["prior_errors"] or s["finish_on_worker"]:
            return payload, None
        metrics.timing(self.service, "wait_duration", time.time() - resume["sent_at"])
        return payload, self._result(statuses, resume)

    async def _links(self, hook: StopServiceHook, target_ids: list[str]) -> dict[str, Any]:
        """The task's extra-link XComs, which a worker would push before the stop: they come with the
        task's end (or the worker that finishes it pushes them). Never worth failing a stop for."""
        try:
            link_class = services.load(self.service, "link")
        except (LookupError, ImportError):
            return {}
        try:
            values: dict[str, Any] = link_class().xcom_values(await hook.aconfig(), target_ids)
        except Exception as exc:
            self.log.warning("No link for this task: %s: %s", type(exc).__name__, hook.redact(str(exc)))
            return {}
        return values

    def _hook(self) -> StopServiceHook:
        conn_id = getattr(self, self.conn_id_field)
        if not isinstance(conn_id, str) or not conn_id.strip():
            raise InvalidInputError(f"{self.conn_id_field} must be a non-empty string, got {conn_id!r}")
        hook_class: type[StopServiceHook] = services.load(self.service, "hook")
        return hook_class(conn_id, **self.settings["hook_params"])

    async def _stop(
        self, hook: StopServiceHook, target_ids: list[str], resume: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Send the stops; what the service accepted, as statuses (the resume state records the rest)."""
        s = self.settings
        async with hook.async_client() as client:
            if s["wait"]:
                resume["prior_errors"] = await hook.aprior_errors(client, target_ids)
            try:
                acks = await hook.astop_many(
                    client, target_ids, fail_if_not_running=s["fail_if_not_running"], **s["stop_options"]
                )
            except BatchStopError as exc:
                metrics.count_stops(self.service, exc.succeeded, refused=len(exc.failures))
                acks, resume["failed"] = accept_partial(exc, not s["fail_on_partial_failure"], self.log)
            else:
                metrics.count_stops(self.service, acks, refused=0)
        sent_at = time.time()
        accepted = {t: ack.as_status().to_dict() for t, ack in acks.items()}
        context = {"ti": self.task_instance}
        resume["audit_records"] = {t: audit.entry(context, st, sent_at) for t, st in accepted.items()}
        resume["sent_at"], resume["requests"] = sent_at, hook.requests_sent
        return accepted

    def _result(self, statuses: dict[str, Any], resume: dict[str, Any]) -> dict[str, Any] | None:
        """The task's return value, or None when a target's stop failed (the worker reports those)."""
        if resume["failed"]:
            return None
        if statuses:
            metrics.distribution(self.service, "requests_per_stop", resume["requests"] / len(statuses))
        return {t: audit.attach(st, resume["audit_records"]) for t, st in statuses.items()}
