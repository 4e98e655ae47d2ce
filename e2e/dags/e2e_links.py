"""Operator extra links on a real deployment (issue 26): a deferrable and an in-place Feldera stop whose
pipelines the driver holds in ``Stopping``, a stop of an unknown pipeline (fails at once), and a
DataForSEO stop (a service whose link is its console); ``e2e/test_links.py`` reads each task's links from
the api-server while the tasks are deferred, running and failed, and after they end."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_stop.operators.dataforseo import DataForSeoStopOnPageTasksOperator
from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

with DAG(
    dag_id="e2e_links",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "deferred": "links_deferred",
        "in_place": "links_in_place",
        "unknown": "links_unknown",
        "crawl_task_ids": ["links-crawl"],
    },
    default_args={"retries": 0},
    tags=["e2e"],
):
    for task_id, deferrable in (("deferred", True), ("in_place", False), ("unknown", True)):
        FelderaStopPipelineOperator(
            task_id=task_id,
            pipeline_name=f"{{{{ params.{task_id} }}}}",
            force=True,
            deferrable=deferrable,
            poll_interval=1,
            timeout=300,
        )
    DataForSeoStopOnPageTasksOperator(
        task_id="dataforseo",
        crawl_task_ids="{{ params.crawl_task_ids | tojson }}",  # a JSON list renders to the list
        deferrable=True,
        poll_interval=1,
        timeout=300,
    )
