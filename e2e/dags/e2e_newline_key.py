"""A Feldera key read from a mounted secret file, its trailing newline kept (``feldera_newline``): the
task must fail when the connection is read, saying which field is wrong and never what it holds.

An HTTP library refuses such a header value and quotes it (``'Bearer apikey:…\\n'``) in its own error;
the secret sweep of ``make e2e`` looks for every form of this key in every log and REST answer.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

with DAG(
    dag_id="e2e_newline_key",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pipeline": "newline_key_pipeline"},
    tags=["e2e"],
):
    FelderaStopPipelineOperator(
        task_id="stop_pipeline",
        feldera_conn_id="feldera_newline",
        pipeline_name="{{ params.pipeline }}",
        force=True,
        deferrable=False,
        poll_interval=1,
        retries=0,
    )
