"""Issue 13's DAG: two deferrable stops whose targets stop within about a second.

A trigger that fires within seconds of the deferral races the deferring worker's exit event in Airflow's
scheduler ("... finished with state success, but the task instance's state attribute is queued ...
Marking task as FAILED"). ``make e2e`` runs this DAG many times and counts the runs lost.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_stop.operators.dataforseo import DataForSeoStopOnPageTasksOperator
from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

with DAG(
    dag_id="e2e_fast_stop",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    # Each run stops its own targets (the driver creates them and passes their ids).
    params={"pipeline": "fast_pipeline", "crawl_task_ids": ["fast-crawl"]},
    tags=["e2e"],
):
    FelderaStopPipelineOperator(
        task_id="stop_pipeline",
        pipeline_name="{{ params.pipeline }}",
        force=True,
        deferrable=True,
        poll_interval=1,
    )
    DataForSeoStopOnPageTasksOperator(
        task_id="stop_crawls",
        crawl_task_ids="{{ params.crawl_task_ids | tojson }}",
        deferrable=True,
        poll_interval=1,
    )
