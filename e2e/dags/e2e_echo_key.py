"""A Feldera that answers with an error quoting the request's headers, its ``Authorization`` among them
(``feldera_echo``, a service that echoes the key): both tasks must fail with the service's error and
no form of the key, in place on the worker and in the triggerer.

The driver makes every request for ``in_place``'s pipeline echo, and lets ``deferred``'s stop succeed
and its pipeline stay ``Stopping`` until the task is deferred; from then on every status read echoes,
so the error comes from the trigger.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

with DAG(
    dag_id="e2e_echo_key",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"in_place": "echo_in_place", "deferred": "echo_deferred"},
    tags=["e2e"],
):
    FelderaStopPipelineOperator(
        task_id="in_place",
        feldera_conn_id="feldera_echo",
        pipeline_name="{{ params.in_place }}",
        force=True,
        deferrable=False,
        poll_interval=1,
        retries=0,
    )
    FelderaStopPipelineOperator(
        task_id="deferred",
        feldera_conn_id="feldera_echo",
        pipeline_name="{{ params.deferred }}",
        force=True,
        deferrable=True,
        poll_interval=1,
        timeout=300,
        retries=0,
    )
