"""DataSift managed sources: wait until sources are stopped."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.datasift import DEFAULT_CONN_ID, DataSiftBinding
from airflow_provider_stop.sensors.base import StoppedSensorBase


class DataSiftSourceStoppedSensor(DataSiftBinding, StoppedSensorBase):
    """Wait until every source's ``status`` is ``stopped`` (``failed``/``problematic`` fail the sensor)."""

    template_fields = ("source_id", "datasift_conn_id")

    def __init__(
        self, *, source_id: str | list[str], datasift_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.source_id = source_id
        self.datasift_conn_id = datasift_conn_id
        self.check_parameters()
