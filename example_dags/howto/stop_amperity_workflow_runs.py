"""Amperity: stop the nightly campaign sends, wait until a run ended, stop a run when its task fails."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_stop.notifications.amperity import AmperityStopWorkflowRunNotifier
from airflow_provider_stop.operators.amperity import AmperityStopAllWorkflowRunsOperator
from airflow_provider_stop.sensors.amperity import AmperityWorkflowRunStoppedSensor

# Seconds between status checks; the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="stop_amperity_workflow_runs",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    # The run ids come from the Workflows page or the API (`wf-20261123-14418-6UhqSe`).
    params={
        "watched_run_id": "wf-20261124-00001-Watch1",
        "send_run_id": "wf-20261124-00002-Send01",
        "fail_check": False,
    },
    tags=["example", "amperity"],
):
    # --8<-- [start:stop_all]
    stop_all = AmperityStopAllWorkflowRunsOperator(
        task_id="stop_nightly_sends",
        workflow_type="campaign.send",  # the API's `type` filter
        name_pattern="nightly*",  # a glob on the run's name or id
        lookback=timedelta(days=2),  # runs created in the last 2 days (default 7)
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
    )
    # --8<-- [end:stop_all]

    # --8<-- [start:sensor]
    confirm = AmperityWorkflowRunStoppedSensor(
        task_id="wait_until_ended",
        workflow_run_id="{{ params.watched_run_id }}",  # canceled, succeeded or failed
        poke_interval=POLL_INTERVAL,
        timeout=3600,
        mode="reschedule",
    )
    # --8<-- [end:sensor]
    stop_all >> confirm

    # --8<-- [start:notifier]
    @task(
        on_failure_callback=AmperityStopWorkflowRunNotifier(
            workflow_run_id="{{ params.send_run_id }}", wait_for_completion=True
        )
    )
    def check_audience(**context: object) -> None:
        params = context["params"]
        assert isinstance(params, dict)
        if params["fail_check"]:
            raise RuntimeError("the audience is wrong; cancel the campaign send")

    # --8<-- [end:notifier]
    check_audience()
