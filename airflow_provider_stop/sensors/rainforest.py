"""Rainforest API (Traject Data): wait until collections are idle."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.rainforest import DEFAULT_CONN_ID, RainforestBinding
from airflow_provider_stop.sensors.base import StoppedSensorBase


class RainforestCollectionStoppedSensor(RainforestBinding, StoppedSensorBase):
    """Wait until every collection's ``status`` is ``idle`` (polls each collection, never the list)."""

    template_fields = ("collection_id", "rainforest_conn_id")

    def __init__(
        self, *, collection_id: str | list[str], rainforest_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.collection_id = collection_id
        self.rainforest_conn_id = rainforest_conn_id
        self.check_parameters()
