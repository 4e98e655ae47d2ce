"""A stop task: stop a Feldera pipeline, waiting in the triggerer; a sensor confirms another is stopped."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator
from airflow_provider_stop.retry import AIRFLOW_V_3_3_PLUS, stop_retry_policy
from airflow_provider_stop.sensors.feldera import FelderaPipelineStoppedSensor

# Seconds between status checks; the demo and the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="feldera_stop_task",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pipeline": "orders_etl"},
    # retry policies need Airflow 3.3; before, the two retries apply to every error
    default_args={"retries": 2, "retry_policy": stop_retry_policy() if AIRFLOW_V_3_3_PLUS else None},
    tags=["example", "feldera"],
):
    # --8<-- [start:operator]
    stop = FelderaStopPipelineOperator(
        task_id="stop_pipeline",
        pipeline_name="{{ params.pipeline }}",
        force=True,  # the open-source edition only offers a forced stop
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=600,
    )
    # --8<-- [end:operator]
    # --8<-- [start:sensor]
    confirm = FelderaPipelineStoppedSensor(
        task_id="confirm_stopped",
        pipeline_name="{{ params.pipeline }}",
        poke_interval=POLL_INTERVAL,
        timeout=300,
        mode="reschedule",
    )
    # --8<-- [end:sensor]
    stop >> confirm
