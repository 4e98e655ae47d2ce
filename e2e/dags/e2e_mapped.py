"""Mapped stops (issue 29): 20 instances over pipeline names (deferrable) and 20 over (pipeline,
connection) pairs; ``e2e/test_semantics.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

START = datetime(2026, 1, 1)

with DAG(
    dag_id="e2e_mapped",
    start_date=START,
    schedule=None,
    catchup=False,
    params={"pipelines": [], "pairs": []},
    tags=["e2e"],
):

    @task
    def pipelines(**context: Any) -> list[str]:
        return list(context["params"]["pipelines"])

    @task
    def pairs(**context: Any) -> list[dict[str, str]]:
        return [{"pipeline_name": p, "feldera_conn_id": c} for p, c in context["params"]["pairs"]]

    FelderaStopPipelineOperator.partial(
        task_id="stop_each", force=True, deferrable=True, poll_interval=1, timeout=300
    ).expand(pipeline_name=pipelines())
    FelderaStopPipelineOperator.partial(
        task_id="stop_each_on_its_connection", force=True, deferrable=False, poll_interval=1, timeout=300
    ).expand_kwargs(pairs())
