"""Every example DAG, loaded as the DAG processor would and run under real Airflow against the emulator."""

from __future__ import annotations

import pytest

from airflow_provider_stop.testing.amperity import AmperityEmulator
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
from airflow_provider_stop.testing.datasift import DataSiftEmulator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from tests.conftest import (
    AIRFLOW_V_3_1_PLUS,
    EXAMPLE_DAGS,
    callback_trigger,
    dagbag,
    load_example_dag,
    needs_airflow,
    serialize_dag,
    task_states,
    xcom_value,
)

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_every_example_dag_imports_cleanly() -> None:
    bag = dagbag(EXAMPLE_DAGS)
    assert bag.import_errors == {}
    expected = {
        "feldera_stop_task",
        "feldera_teardown",
        "feldera_on_failure_callback",
        "nightly_teardown",
        "amperity_stop_workflow_run",
    }
    assert expected <= set(bag.dag_ids)
    # DeadlineAlert came with Airflow 3.1: before, that file parses and defines no DAG.
    assert ("feldera_deadline_alert" in bag.dag_ids) == AIRFLOW_V_3_1_PLUS


def test_amperity_example_stops_the_runs_it_is_given(amperity: AmperityEmulator) -> None:
    amperity.add_run("wf-20261123-09001-Demo01")
    dr = load_example_dag("amperity_stop_workflow_run").test()
    assert task_states(dr) == {"stop_workflow_runs": "success"}
    result = xcom_value(dr, "stop_workflow_runs")["wf-20261123-09001-Demo01"]
    assert result["raw_state"] == "canceled" and result["details"]["error"] == "Workflow manually stopped"


def test_stop_task_defers_then_the_sensor_confirms(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("orders_etl")
    dr = load_example_dag("feldera_stop_task").test()
    assert task_states(dr) == {"stop_pipeline": "success", "confirm_stopped": "success"}
    assert xcom_value(dr, "stop_pipeline")["orders_etl"]["raw_state"] == "Stopped"
    assert feldera.count("POST", "*/stop") == 1


def test_teardown_stops_the_pipeline_even_when_the_work_fails(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("clickstream")
    dr = load_example_dag("feldera_teardown").test()
    assert task_states(dr) == {"use_pipeline": "failed", "stop_pipeline": "success"}
    assert str(dr.state).endswith("failed")  # a teardown does not hide the failure
    assert feldera.status_of("clickstream") == "Stopped"


def test_nightly_teardown_stops_every_running_pipeline_crawl_and_collection(
    feldera: FelderaEmulator,
    dfs: DataForSeoEmulator,
    rainforest: RainforestEmulator,
    datasift: DataSiftEmulator,
    amperity: AmperityEmulator,
) -> None:
    amperity.add_run("wf-a")
    amperity.add_run("wf-done", state="succeeded")
    datasift.add_source("ds1")
    datasift.add_source("ds_off", status="stopped")
    rainforest.add_collection("r1")
    rainforest.add_collection("r2", status="queued")
    for name in ("a", "b", "c"):
        feldera.add_pipeline(name)
    feldera.add_pipeline("already_off", running=False)
    dfs.add_task("crawl-shop-example")
    dfs.add_task("crawl-blog-example")  # crawl-docs-example is gone: reported, not blocking
    dr = load_example_dag("nightly_teardown").test()
    assert task_states(dr) == {
        "stop_all_feldera_pipelines": "success",
        "stop_dataforseo_crawls": "success",
        "stop_all_rainforest_collections": "success",
        "stop_all_amperity_workflow_runs": "success",
        "stop_all_datasift_sources": "success",
    }
    assert xcom_value(dr, "stop_all_amperity_workflow_runs")["wf-a"]["raw_state"] == "canceled"
    assert amperity.count("POST", "/api/workflow/runs/wf-done/stop") == 0
    assert sorted(xcom_value(dr, "stop_all_datasift_sources")) == ["ds1"]
    assert datasift.status_of("ds1") == "stopped"
    assert sorted(xcom_value(dr, "stop_all_rainforest_collections")) == ["r1", "r2"]
    assert rainforest.status_of("r1") == rainforest.status_of("r2") == "idle"
    crawls = xcom_value(dr, "stop_dataforseo_crawls")
    assert crawls["crawl-shop-example"]["details"]["crawl_stop_reason"] == "force_stopped"
    assert "40401" in crawls["crawl-docs-example"]["error"]
    assert dfs.count("POST", "/v3/on_page/force_stop") == 1
    assert sorted(xcom_value(dr, "stop_all_feldera_pipelines")) == ["a", "b", "c"]
    # graceful first (501 on open source), then the allowed fallback to force: two POSTs each
    assert feldera.count("POST", "*/stop") == 6
    assert feldera.count("POST", "*/already_off/stop") == 0


@needs_airflow("3.1", "DeadlineAlert and awaitable notifiers")
def test_deadline_alert_callback_serializes_and_stops_the_pipeline_in_the_triggerer(
    feldera: FelderaEmulator,
) -> None:
    """The DAG serializes as the DAG processor stores it, and its own callback, run by Airflow's
    callback trigger (what the triggerer does on a missed deadline), stops the pipeline.

    ``dag.test()`` cannot run this DAG in Airflow 3.3.2: ``DagRun.update_state`` looks deadline
    alerts up by id but is handed the DAG's alert definitions (the scheduler path is not affected).
    """
    import asyncio

    dag = load_example_dag("feldera_deadline_alert")
    serialized = serialize_dag(dag)
    assert "FelderaStopPipelineNotifier" in str(serialized)
    (alert,) = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert alert.callback.path == "airflow_provider_stop.notifications.feldera.FelderaStopPipelineNotifier"

    feldera.add_pipeline("nightly_fraud_scores")
    trigger = callback_trigger(alert.callback.path, dict(alert.callback.kwargs))

    async def collect() -> list[dict[str, object]]:
        return [event.payload async for event in trigger.run()]

    final = asyncio.run(collect())[-1]
    assert str(final["state"]).lower().endswith("success"), final
    assert isinstance(final["body"], str)  # stored in callback.output, a text column
    assert feldera.count("POST", "*/nightly_fraud_scores/stop") == 1
