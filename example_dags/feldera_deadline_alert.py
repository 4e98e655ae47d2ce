"""DeadlineAlert: a run still going 30 minutes after it was queued stops its pipeline (in the triggerer)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from airflow_provider_stop.notifications.feldera import FelderaStopPipelineNotifier

with DAG(
    dag_id="feldera_deadline_alert",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
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
    tags=["example", "feldera"],
):

    @task
    def score() -> str:
        return "scored"

    score()
