"""What a stop task keeps across its retries on Airflow 3.3+ (the task state store, AIP-103): the first
try's deadline, the stops the service accepted and the escalation phase, so a retry after a worker
crash neither resends an accepted stop nor restarts the clock. Below 3.3 there is no store: a retry
starts afresh (stops are idempotent; the deadline and the escalation clock restart).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Context

#: The task state store key (one per task instance and map index; retries share it).
STORE_KEY = "airflow_provider_stop.stop"


@dataclass
class StopRecord:
    """The first try's deadline, what the service accepted, and the escalation phase."""

    deadline: float
    escalate_at: float | None
    #: Target id -> the accepted stop's status dict (``StopAck.as_status().to_dict()``).
    accepted: dict[str, Any] = field(default_factory=dict)
    prior_errors: dict[str, str] = field(default_factory=dict)
    #: When the escalated (stronger) stop was sent, and with which options; None: not yet.
    escalated_at: float | None = None
    escalation: dict[str, Any] | None = None
    #: Target id -> its audit record (``audit``).
    audit: dict[str, Any] = field(default_factory=dict)
    sent_at: float = field(default_factory=time.time)


class StopJournal:
    """The task's ``task_state_store`` (Airflow 3.3+), or nothing: every method is then a no-op."""

    def __init__(self, context: Context | None, log: Any) -> None:
        self.store: Any = (context or {}).get("task_state_store")
        self.log = log

    def load(self) -> StopRecord | None:
        """The record an earlier try left, when its deadline has not passed (a passed one is a task
        cleared after it ended, or a retry too late to matter: start afresh)."""
        if self.store is None:
            return None
        try:
            raw = self.store.get(STORE_KEY)
            record = StopRecord(**raw) if isinstance(raw, dict) else None
            if record is not None:
                record.deadline = float(record.deadline)
        except Exception as exc:  # an unreadable record must not fail the stop: start afresh
            self.log.warning("Could not read the earlier try's stop record (%s): starting afresh", exc)
            return None
        if record is None:
            return None
        if record.deadline <= time.time():
            self.log.info("The earlier try's deadline has passed: starting afresh")
            return None
        return record

    def save(self, record: StopRecord) -> None:
        if self.store is None:
            return
        try:
            self.store.set(STORE_KEY, asdict(record))
        except Exception as exc:  # the stop goes on; only a later retry loses what this one did
            self.log.warning("Could not save the stop record for a retry (%s)", exc)

    def forget(self) -> None:
        """The task succeeded: a later run of it (a clear) starts afresh."""
        if self.store is None:
            return
        try:
            self.store.delete(STORE_KEY)
        except Exception as exc:
            self.log.warning("Could not delete the stop record (%s)", exc)
