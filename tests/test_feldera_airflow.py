"""Operator, sensor, trigger and notifier under real Airflow (``dag.test()``, sqlite) against the emulator."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.hooks.errors import InvalidInputError, StopFailedError, StopTimeoutError
from airflow_provider_stop.notifications.feldera import FelderaStopPipelineNotifier
from airflow_provider_stop.operators.feldera import (
    FelderaStopAllPipelinesOperator,
    FelderaStopPipelineOperator,
)
from airflow_provider_stop.sensors.feldera import FelderaPipelineStoppedSensor
from airflow_provider_stop.testing.feldera import FelderaEmulator
from airflow_provider_stop.triggers.wait import StopWaitTrigger
from tests.conftest import (
    AIRFLOW_V_3_3_PLUS,
    FAST_RETRIES,
    LogCapture,
    callback_trigger,
    needs_airflow,
    run_dag,
    task_states,
    use_connection,
    xcom_value,
)

pytestmark = pytest.mark.usefixtures("airflow_db")
FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}


def run(dag_id: str, *make_tasks: Any, conf: dict[str, Any] | None = None) -> Any:
    """Build a one-off DAG from task factories and run it with ``dag.test()``."""
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        tasks = [make() for make in make_tasks]
        for upstream, downstream in itertools.pairwise(tasks):
            upstream >> downstream
    return run_dag(dag, run_conf=conf)


@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_operator_stops_a_list_and_returns_every_final_status(
    feldera: FelderaEmulator, deferrable: bool
) -> None:
    feldera.add_pipeline("a")
    feldera.add_pipeline("b", paused=True)
    feldera.add_pipeline("c", running=False)
    dr = run(
        f"op_list_{deferrable}",
        lambda: FelderaStopPipelineOperator(
            task_id="stop", pipeline_name=["a", "b", "c"], force=True, deferrable=deferrable, **FAST
        ),
    )
    assert task_states(dr) == {"stop": "success"}
    result = xcom_value(dr, "stop")
    assert set(result) == {"a", "b", "c"}
    assert all(s["raw_state"] == "Stopped" and s["stopped"] and s["error"] is None for s in result.values())
    assert feldera.count("POST", "*/stop") == 3  # each stop sent once, none by the trigger


def test_templated_name_from_params_and_no_wait(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("from_conf")
    with DAG(dag_id="op_template", schedule=None, start_date=datetime(2026, 1, 1), params={"p": "x"}) as dag:
        FelderaStopPipelineOperator(
            task_id="stop", pipeline_name="{{ params.p }}", force=True, wait_for_completion=False, **FAST
        )
    dr = run_dag(dag, run_conf={"p": "from_conf"})
    result = xcom_value(dr, "stop")
    assert result["from_conf"]["raw_state"] is None
    assert result["from_conf"]["details"]["stop_response"] == "Pipeline is forcefully stopping"
    assert feldera.count("GET") == 0


def test_graceful_stop_on_open_source_fails_with_the_fix_in_the_message(
    feldera: FelderaEmulator, logs: LogCapture
) -> None:
    feldera.add_pipeline("p")
    dr = run("op_501", lambda: FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", **FAST))
    assert task_states(dr) == {"stop": "failed"}
    assert "set force=True" in logs.text()


def test_a_stop_that_ends_with_deployment_error_fails_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    with FelderaEmulator(edition="Enterprise") as emu:
        use_connection(monkeypatch, "feldera_default", emu.connection())
        emu.add_pipeline(
            "p", graceful_stop_error={"message": "no storage configured", "error_code": "SuspendError"}
        )
        op = FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", deferrable=False, **FAST)
        with pytest.raises(StopFailedError, match="'p' \\(Stopped\\): SuspendError: no storage configured"):
            op.execute({})


@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_force_after_escalates_a_graceful_stop_stuck_in_stopping(
    monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    with FelderaEmulator(edition="Enterprise", suspend_seconds=0.05) as emu:
        use_connection(monkeypatch, "feldera_default", emu.connection())
        emu.add_pipeline("stuck", paused=True, stuck_in_stopping=True)
        emu.add_pipeline("fine")
        dr = run(
            f"op_escalate_{deferrable}",
            lambda: FelderaStopPipelineOperator(
                task_id="stop",
                pipeline_name=["stuck", "fine"],
                force=False,
                force_after=0.6,
                deferrable=deferrable,
                timeout=20,
                **FAST,
            ),
        )
        assert task_states(dr) == {"stop": "success"}
        result = xcom_value(dr, "stop")
        assert result["stuck"]["raw_state"] == result["fine"]["raw_state"] == "Stopped"
        forces = [(r.path.split("/")[3], r.query["force"][0]) for r in emu.requests if r.method == "POST"]
        # one graceful stop each, then exactly one forced stop for the stuck pipeline only
        assert sorted(forces) == [("fine", "false"), ("stuck", "false"), ("stuck", "true")]


@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_timeout_names_the_pipelines_still_running(
    feldera: FelderaEmulator, deferrable: bool, logs: LogCapture
) -> None:
    feldera.add_pipeline("slow", status_override="Stopping")

    def make() -> FelderaStopPipelineOperator:
        return FelderaStopPipelineOperator(
            task_id="stop", pipeline_name="slow", force=True, timeout=0.4, deferrable=deferrable, **FAST
        )

    if not deferrable:
        with pytest.raises(StopTimeoutError, match="still running: 'slow' \\(Stopping\\)"):
            make().execute({})
    else:
        dr = run("op_timeout_deferred", make)
        assert task_states(dr) == {"stop": "failed"}
        assert "still running: 'slow' (Stopping)" in logs.text()
    assert feldera.count("POST", "*/stop") == 1


def test_stop_all_stops_only_running_pipelines_matching_the_glob(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("nightly_a")
    feldera.add_pipeline("nightly_b", paused=True)
    feldera.add_pipeline("nightly_c", running=False)
    feldera.add_pipeline("keep_me")
    dr = run(
        "op_stop_all",
        lambda: FelderaStopAllPipelinesOperator(
            task_id="stop_all", name_pattern="nightly_*", force=True, deferrable=True, **FAST
        ),
    )
    assert sorted(xcom_value(dr, "stop_all")) == ["nightly_a", "nightly_b"]
    assert feldera.status_of("keep_me") == "Running"
    assert feldera.count("POST", "*/nightly_c/stop") == 0


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_sensor_waits_in_every_mode(feldera: FelderaEmulator, mode: str) -> None:
    feldera.add_pipeline("p")
    dr = run(
        f"sensor_{mode}",
        lambda: FelderaStopPipelineOperator(
            task_id="stop", pipeline_name="p", force=True, wait_for_completion=False, **FAST
        ),
        lambda: FelderaPipelineStoppedSensor(
            task_id="wait",
            pipeline_name="p",
            poke_interval=0.1,
            timeout=30,
            mode="poke" if mode == "deferrable" else mode,
            deferrable=mode == "deferrable",
            hook_params=FAST_RETRIES,
        ),
    )
    assert task_states(dr) == {"stop": "success", "wait": "success"}
    assert xcom_value(dr, "wait")["p"]["raw_state"] == "Stopped"
    assert feldera.count("POST") == 1  # the sensor never sends a stop


def test_sensor_timeout_is_a_sensor_timeout_in_deferrable_mode(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    dr = run(
        "sensor_timeout",
        lambda: FelderaPipelineStoppedSensor(
            task_id="wait", pipeline_name="p", poke_interval=0.05, timeout=0.3, deferrable=True, retries=3
        ),
    )
    assert task_states(dr) == {"wait": "failed"}  # AirflowSensorTimeout: no retry


def test_bad_input_is_rejected_at_parse_time_naming_the_parameter() -> None:
    with pytest.raises(InvalidInputError, match="pipeline_name must not be empty"):
        FelderaStopPipelineOperator(task_id="t", pipeline_name="  ")
    with pytest.raises(InvalidInputError, match="pipeline_name must be a string"):
        FelderaStopPipelineOperator(task_id="t", pipeline_name=123)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="poll_interval must be a positive number"):
        FelderaStopPipelineOperator(task_id="t", pipeline_name="p", poll_interval=0)
    with pytest.raises(InvalidInputError, match="force_after must be a positive number"):
        FelderaStopPipelineOperator(task_id="t", pipeline_name="p", force_after=-1)
    with pytest.raises(InvalidInputError, match="feldera_conn_id must be a non-empty string"):
        FelderaPipelineStoppedSensor(task_id="t", pipeline_name="p", feldera_conn_id="")


def test_template_rendering_to_none_fails_before_any_request(
    feldera: FelderaEmulator, logs: LogCapture
) -> None:
    with DAG(
        dag_id="op_none", schedule=None, start_date=datetime(2026, 1, 1), render_template_as_native_obj=True
    ) as dag:
        FelderaStopPipelineOperator(task_id="stop", pipeline_name="{{ None }}", force=True, **FAST)
    dr = run_dag(dag)
    assert task_states(dr) == {"stop": "failed"}
    assert "pipeline_name is required; it rendered to None" in logs.text()
    assert feldera.count() == 0


# ---- the trigger -----------------------------------------------------------------------------
def test_trigger_serializes_only_ids_and_settings_and_round_trips() -> None:
    trigger = StopWaitTrigger(
        hook_class_path="airflow_provider_stop.hooks.feldera.FelderaHook",
        conn_id="feldera_default",
        target_ids=["a", "b"],
        poll_interval=2.0,
        deadline=1_900_000_000.0,
        hook_params={"request_timeout": 5},
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_stop.triggers.wait.StopWaitTrigger"
    rebuilt = StopWaitTrigger(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)
    assert set(kwargs) == {
        "hook_class_path",
        "conn_id",
        "target_ids",
        "poll_interval",
        "deadline",
        "hook_params",
        "resume",
        "not_before",
    }


def _events(trigger: StopWaitTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def feldera_trigger(target_ids: list[str], deadline: float) -> StopWaitTrigger:
    return StopWaitTrigger(
        hook_class_path="airflow_provider_stop.hooks.feldera.FelderaHook",
        conn_id="feldera_default",
        target_ids=target_ids,
        poll_interval=0.05,
        deadline=deadline,
    )


def test_trigger_rebuilt_mid_wait_keeps_its_deadline_and_sends_no_stop(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p", status_override="Stopping")
    deadline = time.time() + 0.5
    first = feldera_trigger(["p"], deadline)
    _, kwargs = first.serialize()
    restarted = StopWaitTrigger(**kwargs)  # as after a triggerer restart
    (event,) = _events(restarted)
    assert event["status"] == "timeout" and event["pending"] == ["p"]
    assert "still running: 'p' (Stopping)" in event["message"]
    assert time.time() >= deadline and time.time() - deadline < 1.0
    assert feldera.count("POST") == 0


def test_trigger_turns_errors_into_an_error_event(feldera: FelderaEmulator) -> None:
    (event,) = _events(feldera_trigger(["ghost"], time.time() + 5))
    assert event["status"] == "error" and event["retryable"] is False
    assert event["error_class"] == "airflow_provider_stop.hooks.errors.PermanentBatchStopError"
    assert "Unknown pipeline name 'ghost'" in event["message"]


def test_trigger_refuses_hook_classes_from_elsewhere() -> None:
    (event,) = _events(
        StopWaitTrigger(
            hook_class_path="os.system",
            conn_id="x",
            target_ids=["a"],
            poll_interval=1,
            deadline=time.time() + 1,
        )
    )
    assert event["status"] == "error" and "refusing to load hook class" in event["message"]


def test_operator_run_again_after_its_stop_was_accepted_succeeds(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    op = FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", force=True, deferrable=False, **FAST)
    first = op.execute({})
    second = op.execute({})  # a worker retry
    assert first["p"]["raw_state"] == second["p"]["raw_state"] == "Stopped"


# ---- the notifier ----------------------------------------------------------------------------
def test_notifier_in_on_failure_callback_stops_the_pipeline(feldera: FelderaEmulator) -> None:
    from tests.conftest import load_example_dag

    feldera.add_pipeline("orders_etl")
    dr = load_example_dag("feldera_on_failure_callback").test()
    assert task_states(dr) == {"load_batch": "failed"}
    assert feldera.status_of("orders_etl") == "Stopped"
    assert feldera.count("POST", "*/orders_etl/stop") == 1


def test_notifier_never_raises_and_reports_what_failed(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("ok")
    notifier = FelderaStopPipelineNotifier(
        pipeline_name=["ok", "ghost"], force=True, hook_params=FAST_RETRIES
    )
    notifier.notify({})
    assert "'ghost'" in notifier.result["error"] and "Unknown pipeline name" in notifier.result["error"]
    assert list(notifier.result["stopped"]) == ["ok"]  # what did stop is still reported
    assert feldera.status_of("ok") in ("Running", "Stopping", "Stopped")
    assert feldera.count("POST", "*/ok/stop") == 1


@needs_airflow("3.1", "DeadlineAlert and awaitable notifiers")
def test_notifier_as_deadline_alert_callback_runs_in_the_triggerer(feldera: FelderaEmulator) -> None:
    """Run the real trigger the triggerer uses for an AsyncCallback DeadlineAlert."""
    feldera.add_pipeline("nightly_fraud_scores")
    trigger = callback_trigger(
        "airflow_provider_stop.notifications.feldera.FelderaStopPipelineNotifier",
        {
            "pipeline_name": "nightly_fraud_scores",
            "force": True,
            "wait_for_completion": True,
            "poll_interval": 0.05,
        },
    )

    async def collect() -> list[Any]:
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(collect())
    final = events[-1]
    assert str(final["state"]).lower().endswith("success"), final
    # The triggerer stores the body in callback.output, a text column: it must be text, not a dict.
    assert isinstance(final["body"], str), final["body"]
    body = json.loads(final["body"])
    assert body["error"] is None
    assert body["stopped"]["nightly_fraud_scores"]["raw_state"] == "Stopped"


@pytest.mark.parametrize("with_policy", [True, False], ids=["stop_retry_policy", "no-policy"])
def test_retry_policy_fails_a_permanent_error_at_once(feldera: FelderaEmulator, with_policy: bool) -> None:
    from airflow_provider_stop.retry import RetryPolicyUnavailableError, stop_retry_policy

    if with_policy and not AIRFLOW_V_3_3_PLUS:  # no retry policies: a clear error, not an ImportError
        with pytest.raises(RetryPolicyUnavailableError, match=r"needs Airflow 3\.3"):
            stop_retry_policy()
        return
    extra: dict[str, Any] = {"retry_policy": stop_retry_policy()} if with_policy else {}
    dr = run(
        f"retry_policy_{with_policy}",
        lambda: FelderaStopPipelineOperator(
            task_id="stop",
            pipeline_name="ghost",
            force=True,
            retries=3,
            retry_delay=timedelta(0),
            **extra,
            **FAST,
        ),
    )
    assert task_states(dr) == {"stop": "failed"}
    # unknown pipeline: permanent. With the policy the first try fails the task; without it, all 4 tries run.
    assert feldera.count("POST", "*/ghost/stop") == (1 if with_policy else 4)
