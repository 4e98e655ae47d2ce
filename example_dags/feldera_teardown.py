"""Teardown: whatever the work did, the pipeline it started is stopped afterwards."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

# Seconds between status checks; the demo and the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="feldera_teardown",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pipeline": "clickstream", "fail_work": True},
    tags=["example", "feldera"],
):
    # --8<-- [start:teardown]
    @task
    def use_pipeline(**context: object) -> None:
        params = context["params"]
        assert isinstance(params, dict)
        if params["fail_work"]:
            raise RuntimeError("the work failed; the teardown still stops the pipeline")

    work = use_pipeline()
    stop = FelderaStopPipelineOperator(
        task_id="stop_pipeline",
        pipeline_name="{{ params.pipeline }}",
        force=True,
        poll_interval=POLL_INTERVAL,
    ).as_teardown()
    work >> stop
    # --8<-- [end:teardown]
