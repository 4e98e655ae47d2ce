"""Stop, then say so with an asset event: the stop task's ``outlets`` get an event whose ``extra`` names
the pipelines it stopped and their final states, and a DAG scheduled on that asset runs after the stop
(for example to restart them, or to clean up after them). Airflow 3.0+ (on 2.11 the event carries no
such ``extra``)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Asset, task

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

# --8<-- [start:asset]
PIPELINES_STOPPED = Asset("feldera://pipelines/stopped")

with DAG(
    dag_id="feldera_stop_asset",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pipeline": "ledger_sync"},
    tags=["example", "feldera"],
):
    FelderaStopPipelineOperator(
        task_id="stop_pipeline",
        pipeline_name="{{ params.pipeline }}",
        force=True,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        outlets=[PIPELINES_STOPPED],
    )

with DAG(
    dag_id="feldera_after_stop",
    start_date=datetime(2026, 1, 1),
    schedule=[PIPELINES_STOPPED],
    catchup=False,
    tags=["example", "feldera"],
):

    @task
    def what_was_stopped(**context: Any) -> dict[str, Any]:
        """The stop's event: {"service": "feldera", "targets": {name: {"state", "stopped", "error"}}}."""
        events = context["triggering_asset_events"][PIPELINES_STOPPED]
        return {name: target for event in events for name, target in event.extra["targets"].items()}

    what_was_stopped()
# --8<-- [end:asset]
