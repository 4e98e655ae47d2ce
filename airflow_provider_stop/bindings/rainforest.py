"""Rainforest: what its operators, sensor and notifier share (the binding to its hook and connection)."""

from __future__ import annotations

from airflow_provider_stop.bindings.base import ServiceBinding


class RainforestBinding(ServiceBinding, service="rainforest"):
    """What every Rainforest task class shares: the hook, the id parameter, the connection."""


#: ``rainforest_default``, from the registry entry.
DEFAULT_CONN_ID = RainforestBinding.service_info.default_conn_id
