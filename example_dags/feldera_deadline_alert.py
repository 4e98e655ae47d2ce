"""DeadlineAlert: a run still going 30 minutes after it was queued stops its pipeline (in the triggerer)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, task
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_1_PLUS

from airflow_provider_stop.notifications.feldera import FelderaStopPipelineNotifier

# DeadlineAlert (and awaitable notifiers) came with Airflow 3.1: on older versions this file defines no DAG.
if AIRFLOW_V_3_1_PLUS:
    # this path works on 3.1 to 3.3; from 3.2 they are also importable from airflow.sdk itself
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    with DAG(
        dag_id="feldera_deadline_alert",
        start_date=datetime(2026, 1, 1),
        schedule=None,
        catchup=False,
        # --8<-- [start:deadline]
        deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(minutes=30),
            callback=AsyncCallback(
                FelderaStopPipelineNotifier,
                kwargs={
                    "pipeline_name": "nightly_fraud_scores",
                    "force": True,
                    "feldera_conn_id": "feldera_default",
                },
            ),
        ),
        # --8<-- [end:deadline]
        tags=["example", "feldera"],
    ):

        @task
        def score() -> str:
            return "scored"

        score()
