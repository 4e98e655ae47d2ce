"""Feldera: wait until pipelines are Stopped (or Suspended)."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.feldera import DEFAULT_CONN_ID, FelderaBinding
from airflow_provider_stop.sensors.base import StoppedSensorBase


class FelderaPipelineStoppedSensor(FelderaBinding, StoppedSensorBase):
    """Wait until every named pipeline's ``deployment_status`` is Stopped; a ``deployment_error`` fails it."""

    template_fields = ("pipeline_name", "feldera_conn_id")

    def __init__(
        self, *, pipeline_name: str | list[str], feldera_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_name = pipeline_name
        self.feldera_conn_id = feldera_conn_id
        self.check_parameters()
