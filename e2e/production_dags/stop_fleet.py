"""Forty deferrable stops of one Amperity tenant at once (``e2e/test_production.py``): every stop task
is its own process on a Celery worker, and waits in the triggerer that serves the provider's queue
(``queue="stop_provider"``, ``[triggerer] queues_enabled``: the trigger-queue recipe of
``docs/rate-limits.md``). ``dag_run.conf["prefix"]`` names the runs: ``<prefix>-00`` to ``<prefix>-39``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_stop.operators.amperity import AmperityStopWorkflowRunOperator

TASKS = 40

with DAG(
    dag_id="stop_fleet",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    max_active_tasks=TASKS,
    tags=["e2e"],
):
    for n in range(TASKS):
        AmperityStopWorkflowRunOperator(
            task_id=f"stop_{n:02d}",
            amperity_conn_id="amperity_fleet",
            workflow_run_id="{{ dag_run.conf['prefix'] }}-" + f"{n:02d}",
            deferrable=True,
            poll_interval=2.0,
            timeout=300.0,
            queue="stop_provider",
            retries=0,
        )
