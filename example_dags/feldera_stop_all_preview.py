"""Preview a stop-all: list what it would stop (id, name, state), send no stop. Trigger it by hand before
changing a teardown's filter; its result is the list."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.operators.feldera import FelderaStopAllPipelinesOperator

with DAG(
    dag_id="feldera_stop_all_preview",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pattern": "*", "preview": True},
    tags=["example", "feldera"],
):
    # --8<-- [start:preview]
    FelderaStopAllPipelinesOperator(
        task_id="preview_stop_all",
        name_pattern="{{ params.pattern }}",
        dry_run="{{ params.preview }}",  # rendered "True": list the matches, stop nothing
        max_targets=20,  # more matches than this would fail the real run before any stop
        force=True,
    )
    # --8<-- [end:preview]
