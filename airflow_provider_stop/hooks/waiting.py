"""The wait loop, shared by every waiter: read, record, sleep, until every target is stopped or the
deadline passes. It takes ``read`` and ``pause`` functions, so the hook's own wait (sleeping in its
thread or task) and the trigger's (reading through its status board) run the same loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from airflow_provider_stop.hooks import bounds
from airflow_provider_stop.hooks.data import TargetStatus
from airflow_provider_stop.hooks.errors import (
    BatchStopError,
    RequestDeadlineError,
    StopProviderError,
    StopTimeoutError,
)

Statuses = Mapping[str, TargetStatus]


class WaitProgress:
    """The bookkeeping of one wait: which targets are still pending, what each last reported, and
    when the deadline passes."""

    def __init__(
        self, log: logging.Logger | Any, service: str, noun: str, target_ids: Sequence[str], deadline: float
    ) -> None:
        self.log = log
        self.service = service
        self.noun = noun
        self.deadline = deadline
        self.pending: list[str] = list(target_ids)
        self.statuses: dict[str, TargetStatus] = {}
        self.polls = 0

    def record(self, statuses: Statuses) -> None:
        self.polls += 1
        for tid, status in statuses.items():
            previous = self.statuses.get(tid)
            self.statuses[tid] = status
            if previous is None or previous.raw_state != status.raw_state:
                stopped = " (stopped)" if status.stopped else ""
                self.log.info("%s: %s %r is %s%s", self.service, self.noun, tid, status.raw_state, stopped)
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
            timeout_message(self.service, self.noun, self.pending, self.statuses),
            pending=self.pending,
            statuses=self.statuses,
        )


def wait(
    read: Callable[[list[str]], Statuses],
    pause: Callable[[float], None],
    progress: WaitProgress,
    poll_interval: float,
) -> dict[str, TargetStatus]:
    """Poll until every target is stopped or the deadline passes; no request outlives the deadline."""
    with bounds.wait_deadline(progress.deadline):
        while True:
            with progress.cut_at_deadline():
                progress.record(read(progress.pending))
            if not progress.pending:
                return progress.statuses
            pause(progress.next_sleep(poll_interval))


async def await_stopped(
    read: Callable[[list[str]], Awaitable[Statuses]],
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    *,
    progress: WaitProgress,
    poll_interval: float,
) -> dict[str, TargetStatus]:
    """``wait`` on the event loop."""
    with bounds.wait_deadline(progress.deadline):
        while True:
            with progress.cut_at_deadline():
                progress.record(await read(progress.pending))
            if not progress.pending:
                return progress.statuses
            await pause(progress.next_sleep(poll_interval))


def timeout_message(service: str, noun: str, pending: Sequence[str], statuses: Statuses) -> str:
    states = ", ".join(f"{t!r} ({statuses[t].raw_state if t in statuses else 'unknown'})" for t in pending)
    return f"{service}: timed out waiting for {len(pending)} {noun}(s) to stop; still running: {states}"


def _cut_by_deadline(exc: StopProviderError) -> bool:
    if isinstance(exc, BatchStopError):
        return bool(exc.failures) and all(_cut_by_deadline(e) for e in exc.failures.values())
    return isinstance(exc, RequestDeadlineError)
