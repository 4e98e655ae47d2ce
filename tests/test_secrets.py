"""A recognisable API key must never reach logs, exceptions, XCom, rendered fields or trigger kwargs."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.hooks.errors import StopProviderError
from airflow_provider_stop.hooks.feldera import FelderaHook
from airflow_provider_stop.notifications.feldera import FelderaStopPipelineNotifier
from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator
from airflow_provider_stop.sensors.feldera import FelderaPipelineStoppedSensor
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    FAST_RETRIES,
    LogCapture,
    run_dag,
    use_connection,
    xcom_model,
)

SECRET = "apikey:LEAKCANARY" + "Q7x" * 20
pytestmark = pytest.mark.usefixtures("airflow_db")


def everything_stored(dag_run: Any) -> str:
    """XCom, rendered template fields and trigger rows of a run, as text."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = session.query(xcom_model()).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id)
        rows: list[Any] = [x.value for x in xcoms]
        rows += [
            r.rendered_fields
            for r in session.query(RenderedTaskInstanceFields).filter_by(
                dag_id=dag_run.dag_id, run_id=dag_run.run_id
            )
        ]
        rows += [t.kwargs for t in session.query(Trigger).all()]
    return json.dumps(rows, default=str)


def without_test_supervisor_echo(text: str) -> str:
    """Airflow 3.0's ``dag.test()`` runs tasks under an in-process supervisor whose ``send`` debug-logs
    every request in full (``InProcessSupervisorComms``), the ``MaskSecret`` asking it to hide the key
    included; a deployed worker's supervisor logs "body omitted". Those lines are the test harness's own."""
    if not AIRFLOW_V_3_0_PLUS or AIRFLOW_V_3_1_PLUS:
        return text
    return "\n".join(line for line in text.splitlines() if "msg=MaskSecret(" not in line)


@pytest.mark.parametrize("key", [SECRET, "apikey:WRONGLEAKCANARY" + "z" * 30], ids=["valid-key", "wrong-key"])
def test_no_trace_of_the_key_in_any_path(monkeypatch: pytest.MonkeyPatch, logs: LogCapture, key: str) -> None:
    with FelderaEmulator(api_key=SECRET) as emu:
        use_connection(monkeypatch, "feldera_default", {**emu.connection(), "password": key})
        for name in ("a", "b", "c", "d"):
            emu.add_pipeline(name)
        emu.inject("status", status=503, retry_after="0", times=1)
        fast: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}
        with DAG(dag_id=f"secrets_{key[8:12]}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
            FelderaStopPipelineOperator(task_id="in_place", pipeline_name="a", force=True, **fast)
            FelderaStopPipelineOperator(
                task_id="deferred", pipeline_name="b", force=True, deferrable=True, **fast
            )
            FelderaStopPipelineOperator(task_id="refused", pipeline_name="c", force=False, **fast)
            FelderaStopPipelineOperator(task_id="unknown", pipeline_name="ghost", force=True, **fast)
            FelderaPipelineStoppedSensor(
                task_id="sensor",
                pipeline_name="a",
                poke_interval=0.05,
                timeout=5,
                deferrable=True,
                hook_params=FAST_RETRIES,
            )
        dr = run_dag(dag)

        errors: list[str] = []
        hook = FelderaHook(**FAST_RETRIES)
        for call in (
            lambda: hook.stop("d", force=True),
            lambda: hook.stop("ghost", force=True),
            lambda: hook.wait_until_stopped(["d"], poll_interval=0.05, deadline=time.time() + 2),
        ):
            try:
                call()
            except StopProviderError as exc:
                import traceback

                errors.append("".join(traceback.format_exception(exc)))
        ok, message = hook.test_connection()
        notifier = FelderaStopPipelineNotifier(
            pipeline_name=["d", "ghost"], force=True, hook_params=FAST_RETRIES
        )
        notifier.notify({})
        async_result = asyncio.run(
            FelderaStopPipelineNotifier(pipeline_name="d", force=True, hook_params=FAST_RETRIES).async_notify(
                {}
            )
        )

    if key == SECRET:
        assert emu.count() > 10 and ok  # the runs really talked to the service
    else:
        assert not ok and errors  # and the failure paths really failed
    haystack = "\n".join(
        [
            without_test_supervisor_echo(logs.text()),
            everything_stored(dr),
            *errors,
            message,
            json.dumps(notifier.result),
            json.dumps(async_result),
        ]
    )
    assert "LEAKCANARY" not in haystack
    assert "Q7xQ7x" not in haystack


def test_trigger_kwargs_hold_a_connection_id_never_a_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(
        monkeypatch,
        "feldera_default",
        {"conn_type": "feldera", "host": "http://127.0.0.1:9", "password": SECRET},
    )
    op = FelderaStopPipelineOperator(task_id="t", pipeline_name="p", force=True)
    trigger = op.wait_trigger(["p"], 1.0, time.time() + 5, {"deadline": 1.0})
    assert "LEAKCANARY" not in json.dumps(trigger.serialize())
