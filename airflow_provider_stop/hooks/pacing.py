"""Pacing to a documented request rate: one pacer per service account and rate, shared by every
thread and event loop of the process."""

from __future__ import annotations

import threading
import time

from airflow_provider_stop import process_state


class RatePacer:
    """Spaces requests to at most ``per_second``, shared by every thread and event loop of a process.

    Each caller reserves the next free slot and sleeps until it; a burst is spread out instead of
    being answered with 429s.
    """

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Seconds to wait before sending."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now


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
