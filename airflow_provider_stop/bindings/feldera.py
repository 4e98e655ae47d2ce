"""Feldera: what its operators, sensor and notifier share: the binding to its hook and connection,
and its stop options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_stop.bindings.base import ServiceBinding
from airflow_provider_stop.hooks.data import TargetStatus


class FelderaBinding(ServiceBinding, service="feldera"):
    """What every Feldera task class shares: the hook, the name parameter, the connection."""


#: ``feldera_default``, from the registry entry.
DEFAULT_CONN_ID = FelderaBinding.service_info.default_conn_id


class FelderaStopOptions(FelderaBinding):
    """Feldera's stop parameters, shared by the operators and the notifier."""

    force: bool
    fallback_to_force: bool

    def may_force(self) -> bool:
        """The user allowed a forced stop when a graceful one cannot be done."""
        return bool(self.fallback_to_force) or getattr(self, "force_after", None) is not None

    def stop_options(self) -> dict[str, Any]:
        # force_after reaches the hook too: a graceful stop Feldera refuses because of the pipeline's
        # state (Unavailable, no storage, already stopping) is then forced at once.
        return {
            "force": self.force,
            "fallback_to_force": self.fallback_to_force,
            "force_after": getattr(self, "force_after", None),
        }

    def review_statuses(self, statuses: Mapping[str, TargetStatus]) -> dict[str, TargetStatus]:
        """A graceful stop whose checkpoint fails ends Stopped with the error set: Feldera stopped the
        pipeline forcefully (the stop operation in openapi.json). Say so; with ``fallback_to_force`` or
        ``force_after`` the user accepted that, so it is reported, not failed."""
        if self.force:
            return dict(statuses)
        reviewed: dict[str, TargetStatus] = {}
        for tid, status in statuses.items():
            if status.stopped and status.error:
                details = {**status.details, "fell_back_to_force": True, "graceful_stop_error": status.error}
                error: str | None = (
                    None
                    if self.may_force()
                    else f"{status.error} (the graceful stop failed, so Feldera stopped the pipeline "
                    "forcefully: progress since the last checkpoint is lost; set fallback_to_force=True "
                    "or force_after to accept that)"
                )
                status = TargetStatus(status.target_id, status.raw_state, True, error, details)
            reviewed[tid] = status
        return reviewed

    def escalation_options(self) -> dict[str, Any] | None:
        # A forced stop cannot be escalated further.
        return None if self.force else {"force": True}
