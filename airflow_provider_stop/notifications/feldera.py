"""Feldera: stop pipelines from ``on_failure_callback`` or a DeadlineAlert."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.feldera import DEFAULT_CONN_ID, FelderaStopOptions
from airflow_provider_stop.notifications.base import StopNotifierBase


class FelderaStopPipelineNotifier(FelderaStopOptions, StopNotifierBase):
    """Stop pipelines when a task fails or a deadline is missed; logs what it did, never raises."""

    template_fields = ("pipeline_name", "feldera_conn_id")

    def __init__(
        self,
        *,
        pipeline_name: str | list[str],
        force: bool = False,
        fallback_to_force: bool = False,
        feldera_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_name = pipeline_name
        self.force = force
        self.fallback_to_force = fallback_to_force
        self.feldera_conn_id = feldera_conn_id
        self.check_parameters()
