"""Stop an Amperity workflow run (e.g. a campaign send started by mistake) and wait until it is canceled."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.operators.amperity import AmperityStopWorkflowRunOperator
from airflow_provider_stop.retry import AIRFLOW_V_3_3_PLUS, stop_retry_policy

# Seconds between status checks; the demo and the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="amperity_stop_workflow_run",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    # Trigger with {"workflow_run_ids": ["wf-...", ...]}: the id from the Workflows page or the API.
    params={"workflow_run_ids": ["wf-20261123-09001-Demo01"]},
    # retry policies need Airflow 3.3; before, the two retries apply to every error
    default_args={"retries": 2, "retry_policy": stop_retry_policy() if AIRFLOW_V_3_3_PLUS else None},
    tags=["example", "amperity"],
):
    # --8<-- [start:operator]
    AmperityStopWorkflowRunOperator(
        task_id="stop_workflow_runs",
        workflow_run_id="{{ params.workflow_run_ids | tojson }}",
        deferrable=True,  # the worker is freed while the run goes canceling -> canceled
        poll_interval=POLL_INTERVAL,
        timeout=1800,
    )
    # --8<-- [end:operator]
