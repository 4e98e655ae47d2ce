"""One generic waiter: polls any service's targets until all are stopped or an absolute deadline passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_stop.hooks.base import StopProviderError, StopServiceHook, StopTimeoutError


def load_hook_class(path: str) -> type[StopServiceHook]:
    """Import a hook class named in serialized trigger kwargs; only this package's hooks are accepted."""
    from airflow.sdk.module_loading import import_string

    if not path.startswith("airflow_provider_stop.hooks."):
        raise ValueError(f"refusing to load hook class {path!r} from outside airflow_provider_stop.hooks")
    cls = import_string(path)
    if not (isinstance(cls, type) and issubclass(cls, StopServiceHook)):
        raise ValueError(f"{path!r} is not a StopServiceHook")
    return cls


def error_payload(exc: BaseException, redact: Any = str) -> dict[str, Any]:
    """An error as event data the worker turns back into the same exception class."""
    retryable = bool(getattr(exc, "retryable", False))
    return {
        "status": "error",
        "error_class": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": redact(str(exc))
        if isinstance(exc, StopProviderError)
        else redact(f"{type(exc).__name__}: {exc}"),
        "retryable": retryable,
    }


class StopWaitTrigger(BaseTrigger):
    """
    Wait in the triggerer until every target is stopped.

    It never sends a stop (a trigger may run twice after a triggerer restart); it only reads status.
    Its kwargs hold the hook class path, the connection id and plain settings, never a credential.
    ``deadline`` is absolute (epoch seconds), so a trigger rebuilt after a restart keeps it.
    ``not_before`` (epoch seconds, also absolute) holds every event back until then: Airflow fails a
    deferred task whose trigger fires before the scheduler has seen the deferring worker exit
    (``operators.base.defer_settings``).
    """

    def __init__(
        self,
        *,
        hook_class_path: str,
        conn_id: str,
        target_ids: Sequence[str],
        poll_interval: float,
        deadline: float,
        hook_params: dict[str, Any] | None = None,
        resume: dict[str, Any] | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__()
        self.hook_class_path = hook_class_path
        self.conn_id = conn_id
        self.target_ids = list(target_ids)
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline)
        self.hook_params = dict(hook_params or {})
        #: Echoed back in every event so the task resumes with its own state (deadline, progress).
        self.resume = dict(resume or {})
        self.not_before = None if not_before is None else float(not_before)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "hook_class_path": self.hook_class_path,
                "conn_id": self.conn_id,
                "target_ids": self.target_ids,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "hook_params": self.hook_params,
                "resume": self.resume,
                "not_before": self.not_before,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for payload in self._run():
            if self.not_before is not None and (hold := self.not_before - time.time()) > 0:
                self.log.info("Holding the event %.1fs (trigger_min_delay): %s", hold, payload["status"])
                await asyncio.sleep(hold)
            yield TriggerEvent({**payload, "resume": self.resume})

    async def _run(self) -> AsyncIterator[dict[str, Any]]:
        hook: StopServiceHook | None = None
        try:
            hook = load_hook_class(self.hook_class_path)(self.conn_id, **self.hook_params)
            async with hook.async_client() as client:
                statuses = await hook.await_stopped(
                    client, self.target_ids, poll_interval=self.poll_interval, deadline=self.deadline
                )
            yield {"status": "success", "statuses": {t: s.to_dict() for t, s in statuses.items()}}
        except StopTimeoutError as exc:
            yield {
                "status": "timeout",
                "message": str(exc),
                "pending": exc.pending,
                "statuses": {t: s.to_dict() for t, s in exc.statuses.items()},
                "at": time.time(),
            }
        except Exception as exc:
            self.log.error(
                "waiting for %s failed: %s", self.target_ids, hook.redact(str(exc)) if hook else exc
            )
            yield error_payload(exc, hook.redact if hook else str)
