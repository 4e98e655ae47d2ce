"""A stop task that never takes a worker slot: on Airflow 3.3+ it starts in the triggerer, which renders
its templates, sends the stop and waits; before 3.3 a worker sends the stop and defers the wait."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop._compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

# Seconds between status checks; the demo and the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="feldera_stop_from_triggerer",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pipeline": "search_index"},
    tags=["example", "feldera"],
):
    # --8<-- [start:operator]
    FelderaStopPipelineOperator(
        task_id="stop_pipeline",
        pipeline_name="{{ params.pipeline }}",  # rendered in the triggerer
        force=True,
        start_from_trigger=AIRFLOW_V_3_3_PLUS,  # Airflow 3.3+: no worker slot when the stop goes well
        deferrable=True,  # before 3.3 (and on a mapped task): start on a worker, wait in the triggerer
        poll_interval=POLL_INTERVAL,
        timeout=600,
    )
    # --8<-- [end:operator]
