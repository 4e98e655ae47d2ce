"""On-failure callback: a task that fails stops the pipeline it was feeding."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_stop.notifications.feldera import FelderaStopPipelineNotifier

with DAG(
    dag_id="feldera_on_failure_callback",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pipeline": "orders_etl"},
    tags=["example", "feldera"],
):
    # --8<-- [start:notifier]
    @task(
        on_failure_callback=FelderaStopPipelineNotifier(
            pipeline_name="{{ params.pipeline }}", force=True, wait_for_completion=True
        )
    )
    def load_batch() -> None:
        raise RuntimeError("upstream data is corrupt; stop the pipeline instead of feeding it")

    load_batch()
    # --8<-- [end:notifier]
