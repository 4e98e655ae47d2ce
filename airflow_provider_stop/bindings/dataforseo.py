"""DataForSEO: what its operators, sensor and notifier share (the binding to its hook and connection)."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.base import ServiceBinding
from airflow_provider_stop.hooks.validation import validate_positive_number

#: Default ``queued_grace`` of the operator and the notifier (seconds).
DEFAULT_QUEUED_GRACE = 300.0


class DataForSeoBinding(ServiceBinding, service="dataforseo"):
    """What every DataForSEO task class shares: the hook, the ids parameter, the connection."""

    hook_params: dict[str, Any]

    def set_queued_grace(self, queued_grace: float | None) -> None:
        """Hand ``queued_grace`` to the hook (and so to the trigger, which rebuilds the hook)."""
        grace = validate_positive_number(queued_grace, "queued_grace", allow_none=True)
        self.hook_params = {**self.hook_params, "queued_grace": grace}


#: ``dataforseo_default``, from the registry entry.
DEFAULT_CONN_ID = DataForSeoBinding.service_info.default_conn_id
