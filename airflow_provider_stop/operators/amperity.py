"""Amperity workflow runs: stop runs (one, a list, or all running ones) and wait until canceled."""

from __future__ import annotations

from typing import Any

from airflow_provider_stop.operators.base import ServiceBinding, StopAllOperatorBase, StopOperatorBase


class AmperityBinding(ServiceBinding):
    """What every Amperity task class shares: the hook, the id parameter, the connection."""

    hook_class_path = "airflow_provider_stop.hooks.amperity.AmperityHook"
    target_field = "workflow_run_id"
    conn_id_field = "amperity_conn_id"


class AmperityStopWorkflowRunOperator(AmperityBinding, StopOperatorBase):
    """
    ``POST /api/workflow/runs/{id}/stop`` each run and wait until ``GET /api/workflow/runs/{id}`` is
    terminal (``canceled``; a run that ``succeeded`` or ``failed`` meanwhile is stopped too).

    A run that is already terminal is success unless ``fail_if_not_running=True``. Unknown state
    spellings are logged and count as running. Returns per id the final status: ``raw_state``, and in
    ``details`` the run's ``name``, ``type``, ``ended_at``, ``canceled`` and the ``error`` message
    Amperity attached (``"Workflow manually stopped"``).

    :param workflow_run_id: one run id (``wf-20240619-14418-6UhqSe``) or a list (templated).
    :param amperity_conn_id: the Amperity connection (tenant, region, token or client credentials).
    """

    template_fields = ("workflow_run_id", "amperity_conn_id")

    def __init__(
        self, *, workflow_run_id: str | list[str], amperity_conn_id: str = "amperity_default", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_run_id = workflow_run_id
        self.amperity_conn_id = amperity_conn_id
        self.check_parameters()


class AmperityStopAllWorkflowRunsOperator(AmperityBinding, StopAllOperatorBase):
    """
    List the runs that are scheduled, running or paused (``next_token`` pages) and stop each one;
    optionally only runs of one ``workflow_type`` (the API's ``type`` filter) or whose name or id
    matches ``name_pattern`` (a glob). For the nightly teardown.
    """

    list_filter = "workflow_type"
    template_fields = ("name_pattern", "workflow_type", "amperity_conn_id")

    def __init__(
        self, *, workflow_type: str | None = None, amperity_conn_id: str = "amperity_default", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_type = self.optional_filter(workflow_type, "workflow_type")
        self.amperity_conn_id = amperity_conn_id
        self.check_parameters()
