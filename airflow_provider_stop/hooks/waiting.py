"""The bookkeeping of one wait (which targets are still pending, when the deadline passes), shared by
the hook's sync and async loops."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn

from airflow_provider_stop.hooks.errors import (
    BatchStopError,
    RequestDeadlineError,
    StopProviderError,
    StopTimeoutError,
)

if TYPE_CHECKING:
    from airflow_provider_stop.hooks.base import StopServiceHook
    from airflow_provider_stop.hooks.data import TargetStatus


class WaitProgress:
    """The bookkeeping of one wait, shared by the sync loop and the async loop."""

    def __init__(self, hook: StopServiceHook, target_ids: Sequence[str], deadline: float) -> None:
        self.hook = hook
        self.deadline = deadline
        self.pending: list[str] = list(target_ids)
        self.statuses: dict[str, TargetStatus] = {}
        self.polls = 0

    def record(self, statuses: Mapping[str, TargetStatus]) -> None:
        self.polls += 1
        for tid, status in statuses.items():
            previous = self.statuses.get(tid)
            self.statuses[tid] = status
            if previous is None or previous.raw_state != status.raw_state:
                self.hook.log.info(
                    "%s: %s %r is %s%s",
                    self.hook.hook_name,
                    self.hook.target_noun,
                    tid,
                    status.raw_state,
                    " (stopped)" if status.stopped else "",
                )
        self.pending = [t for t in self.pending if not self.statuses[t].stopped]

    def next_sleep(self, poll_interval: float) -> float:
        remaining = self.deadline - time.time()
        if remaining <= 0:
            self.timeout()
        return min(poll_interval, remaining)

    @contextlib.contextmanager
    def cut_at_deadline(self) -> Iterator[None]:
        """A read the wait's deadline cut short ends the wait as a timeout, as any late read does."""
        try:
            yield
        except StopProviderError as exc:
            if time.time() >= self.deadline and _cut_by_deadline(exc):
                self.timeout()
            raise

    def timeout(self) -> NoReturn:
        raise StopTimeoutError(
            timeout_message(self.hook.hook_name, self.hook.target_noun, self.pending, self.statuses),
            pending=self.pending,
            statuses=self.statuses,
        )


def timeout_message(
    service: str, noun: str, pending: Sequence[str], statuses: Mapping[str, TargetStatus]
) -> str:
    states = ", ".join(f"{t!r} ({statuses[t].raw_state if t in statuses else 'unknown'})" for t in pending)
    return f"{service}: timed out waiting for {len(pending)} {noun}(s) to stop; still running: {states}"


def _cut_by_deadline(exc: StopProviderError) -> bool:
    if isinstance(exc, BatchStopError):
        return bool(exc.failures) and all(_cut_by_deadline(e) for e in exc.failures.values())
    return isinstance(exc, RequestDeadlineError)
