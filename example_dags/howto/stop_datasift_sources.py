"""DataSift managed sources: stop sources by id or by type, confirm, stop a source when its consumer fails."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_stop.notifications.datasift import DataSiftStopSourceNotifier
from airflow_provider_stop.operators.datasift import (
    DataSiftStopAllSourcesOperator,
    DataSiftStopSourceOperator,
)
from airflow_provider_stop.sensors.datasift import DataSiftSourceStoppedSensor

# Seconds between status checks; the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="stop_datasift_sources",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "source_id": "6b77d9700a9a473a9e44ade033062d02",
        "feed_source_id": "0c3ab7c2d4e54e3f9d5f6a7b8c9d0e1f",
        "fail_feed": False,
    },
    tags=["example", "datasift"],
):
    # --8<-- [start:operator]
    stop = DataSiftStopSourceOperator(
        task_id="stop_source",
        source_id="{{ params.source_id }}",  # one id, a list, or a JSON list
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
    )
    # --8<-- [end:operator]

    # --8<-- [start:sensor]
    confirm = DataSiftSourceStoppedSensor(
        task_id="confirm_stopped",
        source_id="{{ params.source_id }}",
        poke_interval=POLL_INTERVAL,
        timeout=600,
        mode="reschedule",
    )
    # --8<-- [end:sensor]
    stop >> confirm

    # --8<-- [start:stop_all]
    DataSiftStopAllSourcesOperator(
        task_id="stop_instagram_sources",
        source_type="instagram",  # pages through source/get; only running sources of this type
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
    )
    # --8<-- [end:stop_all]

    # --8<-- [start:notifier]
    @task(
        on_failure_callback=DataSiftStopSourceNotifier(
            source_id="{{ params.feed_source_id }}", wait_for_completion=True
        )
    )
    def consume_feed(**context: object) -> None:
        params = context["params"]
        assert isinstance(params, dict)
        if params["fail_feed"]:
            raise RuntimeError("the consumer is down; stop the source instead of paying for its data")

    # --8<-- [end:notifier]
    consume_feed()
