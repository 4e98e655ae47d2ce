"""Rainforest API (Traject Data): stop collections by id or name, confirm, stop one when its reader fails."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_stop.notifications.rainforest import RainforestStopCollectionNotifier
from airflow_provider_stop.operators.rainforest import (
    RainforestStopAllCollectionsOperator,
    RainforestStopCollectionOperator,
)
from airflow_provider_stop.sensors.rainforest import RainforestCollectionStoppedSensor

# Seconds between status checks; the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="stop_rainforest_collections",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"collection_ids": ["300001", "300002"], "feed_collection_id": "300009", "fail_feed": False},
    tags=["example", "rainforest"],
):
    # --8<-- [start:operator]
    stop = RainforestStopCollectionOperator(
        task_id="stop_collections",
        collection_id="{{ params.collection_ids | tojson }}",  # one id, a list, or a JSON list
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
    )
    # --8<-- [end:operator]

    # --8<-- [start:sensor]
    confirm = RainforestCollectionStoppedSensor(
        task_id="confirm_idle",
        collection_id="{{ params.collection_ids | tojson }}",
        poke_interval=POLL_INTERVAL,
        timeout=600,
        mode="reschedule",
    )
    # --8<-- [end:sensor]
    stop >> confirm

    # --8<-- [start:stop_all]
    RainforestStopAllCollectionsOperator(
        task_id="stop_nightly_collections",
        name_pattern="nightly*",  # GET /collections/{id}/stop for each match; the others keep running
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
    )
    # --8<-- [end:stop_all]

    # --8<-- [start:notifier]
    @task(
        on_failure_callback=RainforestStopCollectionNotifier(
            collection_id="{{ params.feed_collection_id }}", wait_for_completion=True
        )
    )
    def load_results(**context: object) -> None:
        params = context["params"]
        assert isinstance(params, dict)
        if params["fail_feed"]:
            raise RuntimeError("nothing reads the results any more; stop the collection spending credits")

    # --8<-- [end:notifier]
    load_results()
