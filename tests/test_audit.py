"""The audit record in a stop task's result: which DAG, run, task, map index and try stopped each target,
when, and how (graceful, forced, already stopped, escalated), in place, deferred and in a real run."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG, TaskDeferred

from airflow_provider_stop import audit
from airflow_provider_stop.hooks.errors import StopTimeoutError
from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import FAST_RETRIES, run_dag, xcom_value
from tests.matrix import first_event, rebuilt

FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}
TI = SimpleNamespace(dag_id="d", run_id="r1", task_id="stop", map_index=3, try_number=2)
CONTEXT: Any = {"ti": TI}


def audit_of(result: dict[str, Any], target: str) -> dict[str, Any]:
    return dict(result[target]["details"]["audit"])


def test_in_place_each_target_says_who_stopped_it_when_and_how(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("running")
    result = FelderaStopPipelineOperator(
        task_id="stop", pipeline_name=["running"], force=True, deferrable=False, **FAST
    ).execute(CONTEXT)
    running = audit_of(result, "running")
    assert {k: running[k] for k in ("dag_id", "run_id", "task_id", "map_index", "try_number")} == vars(TI)
    assert running["how"] == "forced"
    assert datetime.fromisoformat(running["stopped_at"]).tzinfo is not None


@pytest.mark.parametrize(
    ("status", "how"),
    [
        ({"stopped": True, "details": {"stop_options": {}}}, "already_stopped"),
        ({"stopped": False, "details": {"stop_options": {"force": False}}}, "graceful"),
        ({"stopped": False, "details": {"stop_options": {"force": True}}}, "forced"),
        ({"stopped": False, "details": {"stop_options": {}}}, "stop"),
    ],
)
def test_how_a_stop_was_made(status: dict[str, Any], how: str) -> None:
    assert audit.how(status) == how


def test_an_escalated_stop_says_so(feldera: FelderaEmulator) -> None:
    feldera.settings.edition = "Enterprise"
    feldera.settings.stopping_seconds = 3600.0
    feldera.add_pipeline("slow")

    op = FelderaStopPipelineOperator(
        task_id="stop", pipeline_name="slow", deferrable=False, force_after=0.2, timeout=2, **FAST
    )
    with pytest.raises(StopTimeoutError):  # still stopping after the forced stop
        op.execute(CONTEXT)
    record = op._audit["slow"]
    assert record["how"] == "escalated" and record["escalation"] == {"force": True}
    assert record["escalated_at"] >= record["stopped_at"]


def test_deferred_the_record_survives_the_trigger(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__WAIT_BEFORE_DEFER", "0")
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__TRIGGER_MIN_DELAY", "0")
    feldera.add_pipeline("p")
    op = FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", force=True, deferrable=True, **FAST)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(CONTEXT)
    event = asyncio.run(first_event(rebuilt(deferred.value.trigger)))
    fresh = FelderaStopPipelineOperator(
        task_id="stop", pipeline_name="p", force=True, deferrable=True, **FAST
    )
    result = fresh.execute_complete(CONTEXT, event, **(deferred.value.kwargs or {}))
    assert audit_of(result, "p")["how"] == "forced" and audit_of(result, "p")["try_number"] == 2


@pytest.mark.usefixtures("airflow_db")
def test_a_real_run_records_its_dag_run_and_try(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    with DAG(dag_id="audit_run", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", force=True, deferrable=False, **FAST)
    dag_run = run_dag(dag)
    record = audit_of(xcom_value(dag_run, "stop"), "p")
    assert (record["dag_id"], record["run_id"], record["task_id"]) == ("audit_run", dag_run.run_id, "stop")
    assert record["try_number"] == 1 and record["map_index"] == -1 and record["how"] == "forced"
