"""Feldera: stop pipelines (graceful or forced, with automatic escalation) and stop all of them."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.feldera import DEFAULT_CONN_ID, FelderaStopOptions
from airflow_provider_stop.operators.base import StopOperatorBase
from airflow_provider_stop.operators.stop_all import StopAllOperatorBase


class FelderaStopPipelineOperator(FelderaStopOptions, StopOperatorBase):
    """
    Stop one Feldera pipeline or a list, and wait until each is Stopped (or Suspended).

    :param pipeline_name: a name or a list of names (templated).
    :param force: ``False`` checkpoints first (Enterprise only); ``True`` deprovisions at once.
    :param force_after: seconds after which a graceful stop still not Stopped is forced; a graceful stop
        Feldera refuses outright (Unavailable, no storage, already stopping) is forced at once.
    :param fallback_to_force: force instead of failing when Feldera refuses a graceful stop: on an
        open-source server (501), or because of the pipeline's state (Unavailable, no storage, already
        stopping).
    :param feldera_conn_id: the Feldera connection.
    """

    template_fields = ("pipeline_name", "feldera_conn_id")

    escalation_param = "force_after"

    def __init__(
        self,
        *,
        pipeline_name: str | list[str],
        force: bool = False,
        force_after: float | None = None,
        fallback_to_force: bool = False,
        feldera_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(escalate_after=force_after, **kwargs)
        self.pipeline_name = pipeline_name
        self.force = force
        self.force_after = force_after
        self.fallback_to_force = fallback_to_force
        self.feldera_conn_id = feldera_conn_id
        self.check_parameters()


class FelderaStopAllPipelinesOperator(FelderaStopOptions, StopAllOperatorBase):
    """Stop every pipeline that is not Stopped (optionally only names matching ``name_pattern``)."""

    target_field = "name_pattern"
    escalation_param = "force_after"
    template_fields = ("name_pattern", "feldera_conn_id")

    def __init__(
        self,
        *,
        force: bool = False,
        force_after: float | None = None,
        fallback_to_force: bool = False,
        feldera_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(escalate_after=force_after, **kwargs)
        self.force = force
        self.force_after = force_after
        self.fallback_to_force = fallback_to_force
        self.feldera_conn_id = feldera_conn_id
        self.check_parameters()
