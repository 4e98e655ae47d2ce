"""Nightly teardown: stop everything that costs money, every night."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.operators.amperity import AmperityStopAllWorkflowRunsOperator
from airflow_provider_stop.operators.dataforseo import DataForSeoStopOnPageTasksOperator
from airflow_provider_stop.operators.datasift import DataSiftStopAllSourcesOperator
from airflow_provider_stop.operators.feldera import FelderaStopAllPipelinesOperator
from airflow_provider_stop.operators.rainforest import RainforestStopAllCollectionsOperator

# Seconds between status checks; the demo and the tests turn it down.
# A nightly stop-all that matches more than this fails before it stops anything (a filter gone wrong).
MAX_TARGETS = 100
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="nightly_teardown",
    start_date=datetime(2026, 1, 1),
    schedule="0 2 * * *",
    catchup=False,
    # The crawls started during the day; a real DAG would pull these from XCom or a Variable.
    params={"crawl_task_ids": ["crawl-shop-example", "crawl-blog-example", "crawl-docs-example"]},
    tags=["example", "teardown"],
):
    # --8<-- [start:feldera]
    FelderaStopAllPipelinesOperator(
        task_id="stop_all_feldera_pipelines",
        force=False,  # checkpoint first where the server offers it ...
        fallback_to_force=True,  # ... and force on an open-source server
        force_after=300,  # a checkpoint hanging in Stopping for 5 minutes is forced
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
        max_targets=MAX_TARGETS,
    )
    # --8<-- [end:feldera]
    # --8<-- [start:dataforseo]
    DataForSeoStopOnPageTasksOperator(
        task_id="stop_dataforseo_crawls",
        crawl_task_ids="{{ params.crawl_task_ids | tojson }}",  # a JSON list renders to the list
        fail_on_partial_failure=False,  # a crawl that already vanished must not block the others
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
    )
    # --8<-- [end:dataforseo]
    # --8<-- [start:rainforest]
    RainforestStopAllCollectionsOperator(
        task_id="stop_all_rainforest_collections",  # one stopall call, then each collection is awaited
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
        max_targets=MAX_TARGETS,
    )
    # --8<-- [end:rainforest]
    # --8<-- [start:amperity]
    AmperityStopAllWorkflowRunsOperator(
        task_id="stop_all_amperity_workflow_runs",  # pages through scheduled/running/paused runs
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
        max_targets=MAX_TARGETS,
    )
    # --8<-- [end:amperity]
    # --8<-- [start:datasift]
    DataSiftStopAllSourcesOperator(
        task_id="stop_all_datasift_sources",  # pages through every source, stops the running ones
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
        max_targets=MAX_TARGETS,
    )
    # --8<-- [end:datasift]
