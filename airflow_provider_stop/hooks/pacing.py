"""Pacing to a documented request rate in one process: one pacer per service account and rate, shared
by every thread and event loop of the process, that slows down after the service says "too many"
(``hooks.shared_limit`` shares the rate across processes on top of it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from airflow_provider_stop import process_state

#: After a rate-limit answer the pace halves, down to this fraction of the documented one at most.
MIN_FRACTION = 1 / 16
#: Each answer that was not rate limited wins back this fraction of the documented pace (additive
#: increase): from half the pace back to all of it in ten answers.
RECOVERY_STEP = 1 / 20
#: Rate-limit answers closer together than this halve the pace once (a burst of 429s to requests that
#: were in flight together is one signal, not ten).
SLOWDOWN_GAP_SECONDS = 1.0


class RatePacer:
    """Spaces requests to at most ``per_second``, shared by every thread and event loop of a process.

    Each caller reserves the next free slot and sleeps until it; a burst is spread out instead of
    being answered with 429s. After a 429 (``slow_down``) the pace halves, then recovers a step with
    each answer that was not rate limited (``recover``): additive increase, multiplicative decrease,
    as TCP does, so processes that share one account without a shared storage settle below its limit.
    """

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        #: The pace asked for (the documented rate or the connection's ``requests_per_second``).
        self.per_second = per_second
        #: The pace now: ``per_second``, or less after rate-limit answers.
        self.rate = per_second
        self._clock = clock
        self._next = 0.0
        self._slowed_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    def reserve(self) -> float:
        """Seconds to wait before sending."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self.rate
            return slot - now

    def slow_down(self) -> bool:
        """The service answered "too many requests": halve the pace (once per burst). True if it did."""
        with self._lock:
            now = self._clock()
            if now - self._slowed_at < SLOWDOWN_GAP_SECONDS:
                return False
            self._slowed_at = now
            self.rate = max(self.rate / 2, self.per_second * MIN_FRACTION)
            return True

    def recover(self) -> None:
        """An answer that was not rate limited: win back a step of the pace."""
        if self.rate < self.per_second:
            with self._lock:
                self.rate = min(self.per_second, self.rate + self.per_second * RECOVERY_STEP)


_pacers: dict[tuple[str, ...], RatePacer] = process_state.shared("pacers", dict)
_pacers_lock = threading.Lock()


def shared_pacer(key: tuple[str, ...], per_second: float) -> RatePacer:
    """One pacer per service account (``key``) and rate in this process."""
    full_key = (*key, str(per_second))
    with _pacers_lock:
        pacer = _pacers.get(full_key)
        if pacer is None:
            pacer = _pacers[full_key] = RatePacer(per_second)
        return pacer
