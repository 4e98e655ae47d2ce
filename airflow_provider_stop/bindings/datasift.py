"""Datasift: what its operators, sensor and notifier share (the binding to its hook and connection)."""

from __future__ import annotations

from airflow_provider_stop.bindings.base import ServiceBinding


class DataSiftBinding(ServiceBinding, service="datasift"):
    """What every DataSift task class shares: the hook, the id parameter, the connection."""


#: ``datasift_default``, from the registry entry.
DEFAULT_CONN_ID = DataSiftBinding.service_info.default_conn_id
