"""A retry that resumes (issue 29): an in-place Feldera stop whose worker the driver SIGKILLs mid-wait;
``e2e/test_semantics.py``."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

START = datetime(2026, 1, 1)

with DAG(
    dag_id="e2e_retry_resume",
    start_date=START,
    schedule=None,
    catchup=False,
    params={"pipeline": "resume_pipeline"},
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
    tags=["e2e"],
):
    FelderaStopPipelineOperator(
        task_id="stop_pipeline",
        pipeline_name="{{ params.pipeline }}",
        force=True,
        deferrable=False,
        poll_interval=1,
        timeout=600,
    )
