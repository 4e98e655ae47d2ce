"""Every example DAG, loaded as the DAG processor would and run under real Airflow against the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_stop.testing.amperity import AmperityEmulator
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
from airflow_provider_stop.testing.datasift import DataSiftEmulator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from tests.conftest import (
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_3_PLUS,
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

#: ``example_dags/howto/``: one DAG per service showing each of its classes; the docs include their code.
HOWTO_DAGS = (
    "stop_dataforseo_crawls",
    "stop_rainforest_collections",
    "stop_amperity_workflow_runs",
    "stop_datasift_sources",
)


def howto_dag(dag_id: str) -> Any:
    """A DAG of ``example_dags/howto/``, loaded the way the DAG processor does."""
    bag = dagbag(EXAMPLE_DAGS / "howto" / f"{dag_id}.py")
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id!r}"
    return dag


def test_every_example_dag_imports_cleanly() -> None:
    bag = dagbag(EXAMPLE_DAGS)
    assert bag.import_errors == {}
    expected = {
        "feldera_stop_task",
        "feldera_teardown",
        "feldera_on_failure_callback",
        "nightly_teardown",
        "amperity_stop_workflow_run",
        "feldera_stop_on_kill",
        "feldera_stop_from_triggerer",
        *HOWTO_DAGS,
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


def test_the_stop_from_the_triggerer_example_stops_its_pipeline(feldera: FelderaEmulator) -> None:
    """Under dag.test() the task runs on the (in-process) worker; the real triggerer start is in the e2e."""
    feldera.add_pipeline("search_index")
    dag = load_example_dag("feldera_stop_from_triggerer")
    assert dag.get_task("stop_pipeline").start_from_trigger is AIRFLOW_V_3_3_PLUS
    dr = dag.test()
    assert task_states(dr) == {"stop_pipeline": "success"}
    assert xcom_value(dr, "stop_pipeline")["search_index"]["raw_state"] == "Stopped"
    assert feldera.count("POST", "*/search_index/stop") == 1


@needs_airflow(
    "3.1",
    "assets came with 3.0, but 3.0's dag.test() leaves a DAG's assets inactive (the DAG processor "
    "activates them), so the task fails before it runs",
)
def test_the_stop_emits_an_asset_event_naming_what_it_stopped(feldera: FelderaEmulator) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    feldera.add_pipeline("ledger_sync")
    dr = load_example_dag("feldera_stop_asset").test()
    assert task_states(dr) == {"stop_pipeline": "success"}
    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == "feldera://pipelines/stopped", AssetEvent.source_run_id == dr.run_id)
            .all()
        )
        extras = [dict(e.extra) for e in events]
    assert extras == [
        {
            "service": "feldera",
            "targets": {"ledger_sync": {"state": "Stopped", "stopped": True, "error": None}},
        }
    ]


def test_the_stop_all_preview_lists_and_stops_nothing(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("etl_a")
    feldera.add_pipeline("etl_b")
    feldera.add_pipeline("idle", running=False)
    dr = load_example_dag("feldera_stop_all_preview").test()
    assert task_states(dr) == {"preview_stop_all": "success"}
    result = xcom_value(dr, "preview_stop_all")
    assert sorted(result) == ["etl_a", "etl_b"] and all(r["details"]["dry_run"] for r in result.values())
    assert feldera.count("POST") == 0 and feldera.status_of("etl_a") == "Running"


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


# ---- example_dags/howto/: every operator, sensor and notifier the service pages show -------------------


def test_dataforseo_howto_stops_confirms_and_notifies(dfs: DataForSeoEmulator) -> None:
    for crawl in ("crawl-shop-example", "crawl-blog-example", "crawl-audit-example"):
        dfs.add_task(crawl)
    dr = howto_dag("stop_dataforseo_crawls").test(run_conf={"fail_audit": True})
    assert task_states(dr) == {
        "stop_crawls": "success",
        "confirm_finished": "success",
        "audit_site": "failed",
    }
    stopped = xcom_value(dr, "stop_crawls")
    assert sorted(stopped) == ["crawl-blog-example", "crawl-shop-example"]
    assert {s["details"]["crawl_stop_reason"] for s in stopped.values()} == {"force_stopped"}
    # the failed task's notifier force-stopped its own crawl
    assert dfs.progress_of("crawl-audit-example") == "finished"


def test_rainforest_howto_stops_by_id_and_by_name_and_notifies(rainforest: RainforestEmulator) -> None:
    rainforest.add_collection("300001")
    rainforest.add_collection("300002", status="queued")
    rainforest.add_collection("300009", name="price feed")
    rainforest.add_collection("300010", name="nightly prices")
    rainforest.add_collection("300011", name="daily offers")
    dr = howto_dag("stop_rainforest_collections").test(run_conf={"fail_feed": True})
    assert task_states(dr) == {
        "stop_collections": "success",
        "confirm_idle": "success",
        "stop_nightly_collections": "success",
        "load_results": "failed",
    }
    assert sorted(xcom_value(dr, "stop_collections")) == ["300001", "300002"]
    assert sorted(xcom_value(dr, "stop_nightly_collections")) == ["300010"]
    for stopped in ("300001", "300002", "300009", "300010"):
        assert rainforest.status_of(stopped) == "idle", stopped
    assert rainforest.status_of("300011") == "running"  # no match: left running
    assert rainforest.count("GET", "*/stopall") == 0  # a filtered stop-all stops by id


def test_amperity_howto_stops_the_matching_runs_waits_and_notifies(amperity: AmperityEmulator) -> None:
    amperity.add_run("wf-20261124-00001-Watch1", name="nightly send", type="campaign.send")
    amperity.add_run("wf-20261124-00002-Send01", name="Send audiences to Braze", type="campaign.send")
    amperity.add_run("wf-20261124-00003-Day001", name="daily send", type="campaign.send")
    amperity.add_run("wf-20261124-00004-Stitch", name="nightly stitch", type="courier.group/run")
    dr = howto_dag("stop_amperity_workflow_runs").test(run_conf={"fail_check": True})
    assert task_states(dr) == {
        "stop_nightly_sends": "success",
        "wait_until_ended": "success",
        "check_audience": "failed",
    }
    assert sorted(xcom_value(dr, "stop_nightly_sends")) == ["wf-20261124-00001-Watch1"]
    assert amperity.state_of("wf-20261124-00001-Watch1") == "canceled"
    assert amperity.state_of("wf-20261124-00002-Send01") == "canceled"  # by the notifier
    for other in ("wf-20261124-00003-Day001", "wf-20261124-00004-Stitch"):
        assert amperity.count("POST", f"*/{other}/stop") == 0, other


def test_datasift_howto_stops_by_id_and_by_type_and_notifies(datasift: DataSiftEmulator) -> None:
    datasift.add_source(
        "6b77d9700a9a473a9e44ade033062d02", name="brand mentions", source_type="facebook_page"
    )
    datasift.add_source("0c3ab7c2d4e54e3f9d5f6a7b8c9d0e1f", name="feed", source_type="facebook_page")
    datasift.add_source("1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a", name="pictures", source_type="instagram")
    datasift.add_source("2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b", name="pages", source_type="facebook_page")
    dr = howto_dag("stop_datasift_sources").test(run_conf={"fail_feed": True})
    assert task_states(dr) == {
        "stop_source": "success",
        "confirm_stopped": "success",
        "stop_instagram_sources": "success",
        "consume_feed": "failed",
    }
    assert sorted(xcom_value(dr, "stop_instagram_sources")) == ["1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a"]
    for stopped in (
        "6b77d9700a9a473a9e44ade033062d02",
        "0c3ab7c2d4e54e3f9d5f6a7b8c9d0e1f",
        "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a",
    ):
        assert datasift.status_of(stopped) == "stopped", stopped
    assert datasift.status_of("2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b") == "running"


def test_a_users_dag_test_against_an_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/emulators.md shows this test: how a user tests a DAG offline against an emulator."""
    from airflow_provider_stop import process_state

    process_state.reset()  # what the suite remembers per connection id (list lengths, paces)
    # --8<-- [start:user_test]
    with FelderaEmulator(edition="Enterprise", stopping_seconds=0.5) as feldera:
        feldera.add_pipeline("orders_etl")  # Running
        # the manager is briefly unavailable: the first two stops get 503 with Retry-After: 1
        feldera.inject("status", status=503, retry_after="1", times=2, path="*/stop")
        monkeypatch.setenv("AIRFLOW_CONN_FELDERA_DEFAULT", json.dumps(feldera.connection()))

        dag_run = load_example_dag("feldera_stop_task").test()  # your DAG here

        assert feldera.status_of("orders_etl") == "Stopped"
        assert feldera.count("POST", "*/stop") == 3  # two refused with 503, then accepted
    # --8<-- [end:user_test]
    assert task_states(dag_run) == {"stop_pipeline": "success", "confirm_stopped": "success"}


def test_stop_on_kill_runs_the_pipelines_for_their_window_then_stops_them(feldera: FelderaEmulator) -> None:
    """Nobody kills the tasks: each starts its pipeline, lets it run (in place; deferred), then stops it.
    The kills are shown on a real deployment (e2e/test_kill.py); the helper in tests/test_stop_on_kill.py."""
    for name in ("orders_backfill", "orders_backfill_deferred"):
        feldera.add_pipeline(name, running=False)
    dr = load_example_dag("feldera_stop_on_kill").test(run_conf={"run_for": 0.5})
    assert task_states(dr) == {"run_backfill": "success", "run_backfill_deferred": "success"}
    for name in ("orders_backfill", "orders_backfill_deferred"):
        assert feldera.count("POST", f"*/{name}/start") == 1, name
        assert feldera.count("POST", f"*/{name}/stop") == 1, name
        assert feldera.status_of(name) == "Stopped", name
