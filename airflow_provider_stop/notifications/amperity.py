"""Amperity workflow runs: stop runs from ``on_failure_callback`` or a DeadlineAlert."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.bindings.amperity import DEFAULT_CONN_ID, AmperityBinding
from airflow_provider_stop.notifications.base import StopNotifierBase


class AmperityStopWorkflowRunNotifier(AmperityBinding, StopNotifierBase):
    """Stop workflow runs when a task fails or a deadline is missed; logs what it did, never raises."""

    template_fields = ("workflow_run_id", "amperity_conn_id")

    def __init__(
        self, *, workflow_run_id: str | list[str], amperity_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_run_id = workflow_run_id
        self.amperity_conn_id = amperity_conn_id
        self.check_parameters()
