"""The Toy service's task classes: thin subclasses naming its parameters, and its link."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.base import ServiceBinding
from airflow_provider_stop.hooks.data import ClientConfig, quote_segment
from airflow_provider_stop.links.base import StopTargetLink, without_path_suffix
from airflow_provider_stop.notifications.base import StopNotifierBase
from airflow_provider_stop.operators.base import StopOperatorBase
from airflow_provider_stop.sensors.base import StoppedSensorBase


class ToyBinding(ServiceBinding, service="toy"):
    """What every Toy task class shares: the hook, the id parameter, the connection."""


class ToyJobLink(StopTargetLink, service="toy"):
    """A job's page, ``/jobs/{id}`` beside the API's ``/v1`` (defined before the operator shows it)."""

    name = "Toy job"

    def console_url(self, config: ClientConfig) -> str:
        return without_path_suffix(config.base_url, "/v1") + "/jobs"

    def target_url(self, config: ClientConfig, target_id: str) -> str:
        return f"{without_path_suffix(config.base_url, '/v1')}/jobs/{quote_segment(target_id)}"


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
