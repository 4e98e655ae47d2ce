"""Amperity workflow runs: stop runs (one, a list, or all running ones) and wait until canceled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow_provider_stop.bindings.amperity import DEFAULT_CONN_ID, AmperityBinding
from airflow_provider_stop.operators.base import StopOperatorBase
from airflow_provider_stop.operators.stop_all import StopAllOperatorBase


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
        self, *, workflow_run_id: str | list[str], amperity_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_run_id = workflow_run_id
        self.amperity_conn_id = amperity_conn_id
        self.check_parameters()


class AmperityStopAllWorkflowRunsOperator(AmperityBinding, StopAllOperatorBase):
    """
    List the runs created in the last ``lookback`` (every ``next_token`` page), keep those whose
    ``state`` is not terminal, and stop each one by id; optionally only runs of one ``workflow_type``
    (the API's ``type`` filter) or whose name or id matches ``name_pattern`` (a glob). For the nightly
    teardown.

    The list is filtered on the server only by documented parameters (``created_from``, ``type``);
    the state is judged here, so an unknown filter value can neither fail the task nor match nothing.

    :param lookback: how far back to look for runs, by creation time (seconds or a ``timedelta``;
        default 7 days, at most 366). A run created before the window is not seen, so not stopped.
    """

    list_filter = "workflow_type"
    template_fields = ("name_pattern", "workflow_type", "amperity_conn_id")

    def __init__(
        self,
        *,
        workflow_type: str | None = None,
        lookback: float | timedelta = timedelta(days=7),
        amperity_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_stop.hooks.amperity import validate_lookback

        super().__init__(**kwargs)
        self.workflow_type = self.optional_filter(workflow_type, "workflow_type")
        self.lookback = validate_lookback(lookback)
        self.hook_params = {**self.hook_params, "lookback": self.lookback}
        self.amperity_conn_id = amperity_conn_id
        self.check_parameters()
