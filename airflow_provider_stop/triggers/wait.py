"""The one generic waiter: polls any service's targets until all are stopped or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_stop import services
from airflow_provider_stop.events import error_payload
from airflow_provider_stop.hooks.base import StopServiceHook
from airflow_provider_stop.hooks.data import TargetStatus
from airflow_provider_stop.hooks.errors import StopTimeoutError
from airflow_provider_stop.hooks.waiting import await_stopped
from airflow_provider_stop.triggers.board import board_key, joined_board


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
            statuses = await self._wait(hook)
            yield {"status": "success", "statuses": {t: s.to_dict() for t, s in statuses.items()}}
        except StopTimeoutError as exc:
            yield {
                "status": "timeout",
                "message": hook.redact(str(exc)) if hook else str(exc),
                "pending": exc.pending,
                "statuses": {t: s.to_dict() for t, s in exc.statuses.items()},
                "at": time.time(),
            }
        except Exception as exc:
            self.log.error(
                "waiting for %s failed: %s", self.target_ids, hook.redact(str(exc)) if hook else exc
            )
            yield error_payload(exc, hook.redact if hook else str)

    async def _wait(self, hook: StopServiceHook) -> dict[str, TargetStatus]:
        """The wait loop, reading through the event loop's status board for this connection: the
        waits due together share one read."""
        key = board_key(self.hook_class_path, self.conn_id, self.hook_params)
        async with (
            hook.async_client() as client,
            joined_board(key, self.poll_interval, self.deadline) as seat,
        ):
            try:
                return await await_stopped(
                    lambda ids: seat.read(hook, client, ids),
                    seat.pause,
                    progress=hook.wait_progress(self.target_ids, self.deadline),
                    poll_interval=self.poll_interval,
                )
            finally:
                hook.after_wait(self.target_ids)


def load_hook_class(path: str) -> type[StopServiceHook]:
    """The hook class named in serialized trigger kwargs: only a registered service's own hook (the
    class its hooks module registers) is accepted, so stored kwargs cannot make the triggerer import
    anything else."""
    module, _, _ = path.rpartition(".")
    entry = services.of_module("hooks", module)
    cls = services.load(entry.name, "hook") if entry else None
    if cls is None or services.class_path(cls) != path or not issubclass(cls, StopServiceHook):
        raise ValueError(f"refusing to load hook class {path!r}: not the hook of a registered service")
    return cls
