"""Rainforest API (Traject Data): stop collections from ``on_failure_callback`` or a DeadlineAlert."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.rainforest import DEFAULT_CONN_ID, RainforestBinding
from airflow_provider_stop.notifications.base import StopNotifierBase


class RainforestStopCollectionNotifier(RainforestBinding, StopNotifierBase):
    """Stop collections when a task fails or a deadline is missed; logs what it did, never raises."""

    template_fields = ("collection_id", "rainforest_conn_id")

    def __init__(
        self, *, collection_id: str | list[str], rainforest_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.collection_id = collection_id
        self.rainforest_conn_id = rainforest_conn_id
        self.check_parameters()
