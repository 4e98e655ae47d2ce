"""One deferrable Feldera stop whose target the driver holds in ``Stopping``: the restart scenarios
(triggerer SIGKILLed mid-wait, worker killed between stop and deferral, api-server restarted)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

with DAG(
    dag_id="e2e_slow_stop",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pipeline": "slow_pipeline"},
    # One retry, soon: the worker-kill scenario needs the retry to run while the suite waits.
    default_args={"retries": 1, "retry_delay": timedelta(seconds=2)},
    tags=["e2e"],
):
    FelderaStopPipelineOperator(
        task_id="stop_pipeline",
        pipeline_name="{{ params.pipeline }}",
        force=True,
        deferrable=True,
        poll_interval=1,
        timeout=600,
    )
