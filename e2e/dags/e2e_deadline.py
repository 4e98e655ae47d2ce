"""One deadline with ``execution_timeout`` (issue 29): a Feldera stop in place and one deferred, each
waiting on a pipeline the driver holds in ``Stopping``; ``e2e/test_semantics.py``."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

START = datetime(2026, 1, 1)

with DAG(
    dag_id="e2e_deadline",
    start_date=START,
    schedule=None,
    catchup=False,
    params={"in_place": "deadline_in_place", "deferred": "deadline_deferred"},
    tags=["e2e"],
):
    for mode in ("in_place", "deferred"):
        FelderaStopPipelineOperator(
            task_id=f"stop_{mode}",
            pipeline_name=f"{{{{ params.{mode} }}}}",
            force=True,
            deferrable=mode == "deferred",
            poll_interval=1,
            timeout=600,  # the execution_timeout is the earlier: it sets the deadline
            execution_timeout=timedelta(seconds=30),
        )
