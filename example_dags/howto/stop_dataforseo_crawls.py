"""DataForSEO On-Page: force-stop crawl tasks, confirm them stopped, stop a crawl when its analysis fails."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_stop.notifications.dataforseo import DataForSeoStopOnPageTasksNotifier
from airflow_provider_stop.operators.dataforseo import DataForSeoStopOnPageTasksOperator
from airflow_provider_stop.sensors.dataforseo import DataForSeoOnPageTasksStoppedSensor

# Seconds between status checks; the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))

with DAG(
    dag_id="stop_dataforseo_crawls",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        # The ids `task_post` answered (a real DAG pulls them from XCom: `ti.xcom_pull(...) | tojson`).
        "crawl_task_ids": ["crawl-shop-example", "crawl-blog-example"],
        "audit_crawl_id": "crawl-audit-example",
        "fail_audit": False,
    },
    tags=["example", "dataforseo"],
):
    # --8<-- [start:operator]
    stop = DataForSeoStopOnPageTasksOperator(
        task_id="stop_crawls",
        crawl_task_ids="{{ params.crawl_task_ids | tojson }}",  # a list, or a JSON list
        fail_on_partial_failure=False,  # an unknown id is reported; the others are still stopped
        queued_grace=600,  # a task still queued 10 minutes into the wait never started
        escalate_after=900,  # force_stop again whatever still crawls after 15 minutes
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=1800,
    )
    # --8<-- [end:operator]

    # --8<-- [start:sensor]
    confirm = DataForSeoOnPageTasksStoppedSensor(
        task_id="confirm_finished",
        crawl_task_ids="{{ params.crawl_task_ids | tojson }}",
        poke_interval=POLL_INTERVAL,
        timeout=600,
        mode="reschedule",  # or deferrable=True
    )
    # --8<-- [end:sensor]
    stop >> confirm

    # --8<-- [start:notifier]
    @task(
        on_failure_callback=DataForSeoStopOnPageTasksNotifier(
            crawl_task_ids="{{ params.audit_crawl_id }}", wait_for_completion=True
        )
    )
    def audit_site(**context: object) -> None:
        params = context["params"]
        assert isinstance(params, dict)
        if params["fail_audit"]:
            raise RuntimeError("the audit failed; its crawl is force-stopped instead of billed to the end")

    # --8<-- [end:notifier]
    audit_site()
