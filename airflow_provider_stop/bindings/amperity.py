"""Amperity: what its operators, sensor and notifier share (the binding to its hook and connection)."""

from __future__ import annotations

from airflow_provider_stop.bindings.base import ServiceBinding


class AmperityBinding(ServiceBinding, service="amperity"):
    """What every Amperity task class shares: the hook, the id parameter, the connection."""


#: ``amperity_default``, from the registry entry.
DEFAULT_CONN_ID = AmperityBinding.service_info.default_conn_id
