"""A stop task started in the triggerer (Airflow 3.3's ``start_from_trigger``): the scheduler defers it
straight to ``StopStartTrigger``, the triggerer renders its target and connection fields, the trigger
stops and waits and ends the task itself when every target stopped cleanly; anything else resumes the
task on a worker with the same result or error as the other modes. The fault matrix and the secret sweep
run this path for every service too (``tests/matrix.py``); the e2e runs it on a real deployment."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string

from airflow_provider_stop._compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_stop.hooks.errors import InvalidInputError, StopProviderError
from airflow_provider_stop.operators.base import START_TRIGGER
from airflow_provider_stop.operators.feldera import (
    FelderaStopAllPipelinesOperator,
    FelderaStopPipelineOperator,
)
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import serialize_dag
from tests.matrix import DRIVERS, HOOK, Driver, run_started_in_triggerer

needs_3_3 = pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="start_from_trigger needs Airflow 3.3")


def stop_task(task_id: str = "stop", **kwargs: Any) -> FelderaStopPipelineOperator:
    return FelderaStopPipelineOperator(
        task_id=task_id,
        force=True,
        poll_interval=0.05,
        timeout=10,
        hook_params=HOOK,
        start_from_trigger=True,
        **kwargs,
    )


def trigger_of(task: Any) -> Any:
    """The trigger the triggerer builds from the kwargs the scheduler stored (JSON)."""
    args = task.start_trigger_args
    return import_string(args.trigger_cls)(**json.loads(json.dumps(args.trigger_kwargs)))


def started_task(drv: Driver, emu: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A service's stop task for its running target ``t1``, started in the triggerer."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{drv.service.upper()}_DEFAULT", json.dumps(drv.connection(emu)))
    drv.add(emu, "t1")
    return drv.cls("operators", drv.operator)(
        task_id="stop",
        **{drv.target_field: "t1"},
        **drv.options,
        hook_params=HOOK,
        poll_interval=0.05,
        timeout=10,
        start_from_trigger=True,
    )


async def first(trigger: Any) -> Any:
    async for event in trigger.run():
        return event
    raise AssertionError("no event")


def test_the_trigger_path_is_the_start_trigger() -> None:
    from airflow_provider_stop.triggers.start import StopStartTrigger

    assert import_string(START_TRIGGER) is StopStartTrigger


@needs_3_3
@pytest.mark.parametrize("name", list(DRIVERS))
def test_a_clean_stop_ends_the_task_in_the_triggerer_with_its_result(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.triggers.base import TaskSuccessEvent

    drv: Driver = DRIVERS[name]
    with drv.make() as emu:
        task = started_task(drv, emu, monkeypatch)
        assert task.start_from_trigger is True
        event = asyncio.run(first(trigger_of(task)))
        assert isinstance(event, TaskSuccessEvent), event  # no worker: the triggerer ends the task
        result: Any = (event.xcoms or {})["return_value"]
        assert result["t1"]["stopped"] is True and result["t1"]["error"] is None
        assert result["t1"]["details"]["audit"]["how"] in ("graceful", "forced", "stop")
        assert drv.is_stopped(emu, "t1")
        assert drv.stops_handled(emu) == 1


@needs_3_3
def test_the_triggerer_renders_the_target_and_connection_fields(feldera: FelderaEmulator) -> None:
    """Airflow's own mechanism: a trigger attribute named as a template field of the task, and a key
    of its ``start_trigger_args.trigger_kwargs``, is rendered with the task's context."""
    feldera.add_pipeline("orders_etl")
    task = stop_task(pipeline_name="{{ params.pipeline }}", feldera_conn_id="{{ params.conn }}")
    trigger = trigger_of(task)
    trigger.task_instance = SimpleNamespace(task_id="stop", task=task)
    assert set(trigger.template_fields) == {"pipeline_name", "feldera_conn_id"}
    trigger.render_template_fields(context={"params": {"pipeline": "orders_etl", "conn": "feldera_default"}})
    assert (trigger.pipeline_name, trigger.feldera_conn_id) == ("orders_etl", "feldera_default")
    event = asyncio.run(first(trigger))
    assert event.xcoms["return_value"]["orders_etl"]["raw_state"] == "Stopped"
    assert feldera.count("POST", "*/orders_etl/stop") == 1
    # the extra link a worker would push before the stop comes with the task's end
    link: Any = next(iter(task.operator_extra_links))
    assert event.xcoms[link.xcom_key] == f"{feldera.url}/pipelines/orders_etl/"


@needs_3_3
def test_a_task_finishing_on_a_worker_stores_the_link_the_trigger_built(feldera: FelderaEmulator) -> None:
    class TaskInstance:
        def __init__(self) -> None:
            self.pushed: dict[str, Any] = {}

        def xcom_push(self, key: str, value: Any) -> None:
            self.pushed[key] = value

    task = stop_task(pipeline_name="absent")
    event = asyncio.run(first(trigger_of(task)))
    assert event.payload["status"] == "error"
    ti = TaskInstance()
    context: Any = {"ti": ti}
    with pytest.raises(StopProviderError, match="absent"):
        task.execute_complete(context, dict(event.payload))
    link: Any = next(iter(task.operator_extra_links))
    assert ti.pushed == {link.xcom_key: f"{feldera.url}/pipelines/absent/"}


@needs_3_3
def test_an_error_resumes_on_a_worker_with_the_error_of_the_other_modes(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("present")
    outcomes = []
    modes: list[dict[str, Any]] = [{"deferrable": False}, {"start_from_trigger": True}]
    for mode in modes:
        task = FelderaStopPipelineOperator(
            task_id="stop", pipeline_name=["present", "absent"], force=True, poll_interval=0.05, **mode
        )
        with pytest.raises(StopProviderError) as caught:
            if mode.get("start_from_trigger"):
                run_started_in_triggerer(task)
            else:
                task.execute({})
        outcomes.append((type(caught.value), str(caught.value)))
    assert outcomes[0] == outcomes[1]
    assert "absent" in outcomes[1][1] and "present" not in outcomes[1][1].split("failed")[-1]


@needs_3_3
def test_without_waiting_the_accepted_stops_are_the_result(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1")
    result = run_started_in_triggerer(stop_task(pipeline_name="p1", wait_for_completion=False))
    assert result["p1"]["stopped"] is False and result["p1"]["details"]["stop_response"] is not None
    assert feldera.count("POST", "*/p1/stop") == 1


@needs_3_3
def test_a_task_with_outlets_finishes_on_a_worker_to_emit_its_asset_events(
    feldera: FelderaEmulator,
) -> None:
    from airflow.sdk import Asset
    from airflow.triggers.base import BaseTaskEndEvent

    feldera.add_pipeline("p1")
    task = stop_task(pipeline_name="p1", outlets=[Asset("feldera://p1")])
    event = asyncio.run(first(trigger_of(task)))
    assert not isinstance(event, BaseTaskEndEvent)
    assert event.payload["status"] == "success"
    assert task.execute_complete({}, dict(event.payload))["p1"]["stopped"] is True


@needs_3_3
def test_the_serialized_dag_carries_the_start_and_the_raw_templates() -> None:
    from airflow.sdk import DAG

    with DAG("start_from_trigger_dag", schedule=None) as dag:
        stop_task(pipeline_name="{{ params.pipeline }}")
    op = serialize_dag(dag)["dag"]["tasks"][0]["__var"]
    assert op["start_from_trigger"] is True
    kwargs = op["start_trigger_args"]["trigger_kwargs"]
    assert "{{ params.pipeline }}" in json.dumps(kwargs)
    assert op["start_trigger_args"]["trigger_cls"] == START_TRIGGER


@needs_3_3
def test_bad_input_fails_when_the_dag_is_parsed() -> None:
    from airflow.sdk import DAG
    from airflow.sdk.definitions.xcom_arg import XComArg

    with DAG("bad_start", schedule=None):
        upstream = FelderaStopPipelineOperator(task_id="up", pipeline_name="p0")
        with pytest.raises(InvalidInputError, match="XComArg"):
            stop_task(task_id="x", pipeline_name=XComArg(upstream))
    with pytest.raises(InvalidInputError, match="lists the running targets on a worker"):
        FelderaStopAllPipelinesOperator(task_id="all", start_from_trigger=True)


@pytest.mark.skipif(AIRFLOW_V_3_3_PLUS, reason="before Airflow 3.3 only")
def test_before_3_3_start_from_trigger_is_refused_with_the_version() -> None:
    with pytest.raises(InvalidInputError, match=r"needs Airflow 3\.3"):
        stop_task(pipeline_name="p1")


@needs_3_3
@pytest.mark.parametrize("name", list(DRIVERS))
def test_a_trigger_run_again_after_a_triggerer_restart_still_ends_the_task(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A triggerer restart runs the start trigger again from its stored kwargs: it sends the stop a
    second time, which each service answers as already stopping or stopped, and the task still ends
    in the triggerer with the target stopped (what docs/airflow-semantics.md promises)."""
    from airflow.triggers.base import TaskSuccessEvent

    drv: Driver = DRIVERS[name]
    with drv.make() as emu:
        task = started_task(drv, emu, monkeypatch)

        async def cut_short() -> None:  # the first run: the stop is sent, then the triggerer goes away
            trigger = trigger_of(task)
            hook = trigger._hook()
            async with hook.async_client() as client:
                await hook.astop_many(client, ["t1"], **trigger.settings["stop_options"])

        asyncio.run(cut_short())
        event = asyncio.run(first(trigger_of(task)))  # the new triggerer runs it from the start
        assert isinstance(event, TaskSuccessEvent), event.payload
        result: Any = (event.xcoms or {})["return_value"]
        assert result["t1"]["stopped"] is True
        assert drv.is_stopped(emu, "t1")
        assert drv.stops_handled(emu) in (1, 2)  # the second stop: sent, or settled by a status read


@needs_3_3
def test_a_partial_failure_waits_for_the_accepted_and_reports_the_refused_as_in_place(
    feldera: FelderaEmulator,
) -> None:
    results = []
    for mode in ({"deferrable": False}, {"start_from_trigger": True}):
        name = "start" if mode.get("start_from_trigger") else "place"
        feldera.add_pipeline(f"{name}_ok")
        task = FelderaStopPipelineOperator(
            task_id="stop",
            pipeline_name=[f"{name}_ok", f"{name}_absent"],
            force=True,
            poll_interval=0.05,
            fail_on_partial_failure=False,
            **mode,  # type: ignore[arg-type]
        )
        result: Any = run_started_in_triggerer(task) if name == "start" else task.execute({})
        results.append(
            {t.split("_", 1)[1]: (r["stopped"], (r["error"] or "").split(":")[0]) for t, r in result.items()}
        )
    assert results[0] == results[1] == {"ok": (True, ""), "absent": (False, "TargetNotFoundError")}
