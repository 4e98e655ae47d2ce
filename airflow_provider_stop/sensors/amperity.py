"""Amperity workflow runs: wait until runs are terminal."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.amperity import DEFAULT_CONN_ID, AmperityBinding
from airflow_provider_stop.sensors.base import StoppedSensorBase


class AmperityWorkflowRunStoppedSensor(AmperityBinding, StoppedSensorBase):
    """Wait until every run's ``state`` is terminal (``canceled``, ``succeeded`` or ``failed``)."""

    template_fields = ("workflow_run_id", "amperity_conn_id")

    def __init__(
        self, *, workflow_run_id: str | list[str], amperity_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_run_id = workflow_run_id
        self.amperity_conn_id = amperity_conn_id
        self.check_parameters()
