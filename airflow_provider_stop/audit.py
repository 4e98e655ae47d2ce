"""The audit record a stop task's result carries for each target: which DAG, run, task, map index and
try stopped it, when, and how (``graceful``, ``forced``, ``stop`` for a service with one kind of stop,
``already_stopped``, or ``escalated`` once the stronger stop was sent)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

#: The task instance's fields the record names.
TASK_FIELDS = ("dag_id", "run_id", "task_id", "map_index", "try_number")


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).isoformat(timespec="seconds")


def how(status: dict[str, Any]) -> str:
    """How the accepted stop (``StopAck.as_status().to_dict()``) stopped its target."""
    if status.get("stopped"):
        return "already_stopped"
    force = (status.get("details") or {}).get("stop_options", {}).get("force")
    return {True: "forced", False: "graceful"}.get(force, "stop") if isinstance(force, bool) else "stop"


def entry(context: Any, status: dict[str, Any], at: float) -> dict[str, Any]:
    """The record of one accepted stop."""
    ti = (context or {}).get("ti")
    return {
        **{name: getattr(ti, name, None) for name in TASK_FIELDS},
        "stopped_at": _when(at),
        "how": how(status),
    }


def escalated(record: dict[str, Any], options: dict[str, Any], at: float) -> dict[str, Any]:
    """The record once the stronger stop was sent."""
    return {**record, "how": "escalated", "escalated_at": _when(at), "escalation": dict(options)}


def attach(status: dict[str, Any], records: dict[str, Any]) -> dict[str, Any]:
    """A target's result with its audit record in ``details["audit"]`` (unchanged without one)."""
    record = records.get(status["target_id"])
    return {**status, "details": {**status["details"], "audit": record}} if record else status
