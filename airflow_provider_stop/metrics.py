"""What stop tasks count, through Airflow's own stats client (StatsD or OpenTelemetry, whichever the
deployment configured under ``[metrics]``; nothing when neither is). Each name carries the service
(``stop_provider.<service>.<metric>``) and the same ``service`` tag, for backends that use tags.

Counters: ``stops_sent``, ``already_stopped``, ``refused``, ``escalations``, ``timeouts``. Timers:
``wait_duration`` (from the stop to the last target stopped) and ``requests_per_stop`` (the requests a
task sent on the worker, per target; the triggerer's reads are shared between waits and not counted).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from airflow_provider_stop.hooks.data import StopAck
from airflow_provider_stop.hooks.errors import StopTimeoutError

PREFIX = "stop_provider"


def _stats() -> Any:
    try:
        from airflow.providers.common.compat.sdk import Stats
    except ImportError:  # an older common-compat provider
        from airflow.stats import Stats  # type: ignore[no-redef,unused-ignore]
    return Stats


def count(service: str, metric: str, n: int = 1) -> None:
    if n > 0:
        _stats().incr(f"{PREFIX}.{service}.{metric}", n, tags={"service": service})


def timing(service: str, metric: str, seconds: float) -> None:
    """A duration (StatsD receives milliseconds)."""
    _stats().timing(f"{PREFIX}.{service}.{metric}", seconds * 1000.0, tags={"service": service})


def distribution(service: str, metric: str, value: float) -> None:
    """A number whose spread matters (a StatsD timer of plain values, as Airflow sends its own)."""
    _stats().timing(f"{PREFIX}.{service}.{metric}", value, tags={"service": service})


def count_stops(service: str, acks: Mapping[str, StopAck], refused: int) -> None:
    """The stops a task sent: accepted, found already stopped, refused."""
    already = sum(1 for ack in acks.values() if ack.already_stopped)
    count(service, "stops_sent", len(acks) - already)
    count(service, "already_stopped", already)
    count(service, "refused", refused)


@contextmanager
def counting_timeouts(service: str) -> Iterator[None]:
    """Count the targets still running when a wait ends at its deadline."""
    try:
        yield
    except StopTimeoutError as exc:
        count(service, "timeouts", len(exc.pending) or 1)
        raise
