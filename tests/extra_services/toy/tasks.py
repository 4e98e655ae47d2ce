"""The Toy service's task classes: thin subclasses naming its parameters."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.base import ServiceBinding
from airflow_provider_stop.notifications.base import StopNotifierBase
from airflow_provider_stop.operators.base import StopOperatorBase
from airflow_provider_stop.sensors.base import StoppedSensorBase


class ToyBinding(ServiceBinding, service="toy"):
    """What every Toy task class shares: the hook, the id parameter, the connection."""


class ToyStopJobOperator(ToyBinding, StopOperatorBase):
    template_fields = ("job_id", "toy_conn_id")

    def __init__(self, *, job_id: str | list[str], toy_conn_id: str = "toy_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.toy_conn_id = toy_conn_id
        self.check_parameters()


class ToyJobStoppedSensor(ToyBinding, StoppedSensorBase):
    template_fields = ("job_id", "toy_conn_id")

    def __init__(self, *, job_id: str | list[str], toy_conn_id: str = "toy_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.toy_conn_id = toy_conn_id
        self.check_parameters()


class ToyStopJobNotifier(ToyBinding, StopNotifierBase):
    template_fields = ("job_id", "toy_conn_id")

    def __init__(self, *, job_id: str | list[str], toy_conn_id: str = "toy_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.toy_conn_id = toy_conn_id
        self.check_parameters()
