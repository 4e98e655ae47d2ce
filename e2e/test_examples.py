"""Phase ``examples``: every example DAG through the scheduler, with stops slow enough that each
deferrable task defers. The run ends as intended, every target ends stopped, every deferrable task really
waited in the triggerer. The nightly teardown (a stop-all) runs when only its own targets still run; the
deadline alert runs after the restarts, the last of the runs."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from typing import Any

import pytest

from e2e.deployment import wait_for
from e2e.driver import RUN_TIMEOUT, Driver, code_root

#: Seconds every emulated stop takes in the example phase: longer than the operator's wait on the
#: worker before it defers (``[stop_provider] wait_before_defer``, 5 s by default), so every deferrable
#: task really hands its wait to the triggerer.
EXAMPLE_STOP_SECONDS = 12.0
#: The examples with a test of their own; the others run side by side (``test_example``).
OWN_TESTS = ("nightly_teardown", "feldera_deadline_alert")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dag_id" in metafunc.fixturenames:
        from e2e.emulators import load_demo

        demo = load_demo(code_root(metafunc.config))
        metafunc.parametrize("dag_id", [s.dag_id for s in demo.STEPS if s.dag_id not in OWN_TESTS])


@pytest.fixture(scope="session")
def steps(driver: Driver) -> dict[str, Any]:
    """``scripts/demo.py``'s steps by DAG id, their targets running, each stop taking a while."""
    driver.emu.seed_demo(driver.demo)
    driver.emu.set_stop_seconds(EXAMPLE_STOP_SECONDS)
    found = {step.dag_id: step for step in driver.demo.STEPS}
    assert set(found) == {p.stem for p in (driver.code_root / "example_dags").glob("*.py")}, (
        f"scripts/demo.py's steps {sorted(found)} do not cover every example DAG"
    )
    return found


@pytest.fixture(scope="session")
def example_runs(driver: Driver, steps: dict[str, Any]) -> dict[str, str]:
    """The examples without a test of their own, triggered at once: run id by DAG id."""
    driver.unpause("feldera_after_stop")  # scheduled on feldera_stop_asset's asset
    runs = {}
    for step in driver.demo.STEPS:
        if step.dag_id not in OWN_TESTS:
            driver.unpause(step.dag_id)
            runs[step.dag_id] = driver.trigger(step.dag_id, step.conf)
    return runs


def step_targets(step: Any) -> list[tuple[str, str]]:
    keys = [("feldera", n) for n in step.pipelines] + [("dataforseo", c) for c in step.crawls]
    keys += [("rainforest", c) for c in step.collections] + [("datasift", s) for s in step.sources]
    return keys + [("amperity", r) for r in step.runs]


def example_run(driver: Driver, step: Any, run_id: str) -> None:
    dag_id = step.dag_id
    state = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
    expected = "failed" if step.expect_dag_failure else "success"
    assert state == expected, f"run ended {state}, expected {expected}\n{driver.where(dag_id, run_id)}"
    for ti in driver.dep.task_instances(dag_id, run_id):
        # Only the work tasks of the teardown and on-failure examples fail, on purpose.
        if ti["operator"] != "_PythonDecoratedOperator":
            assert ti["state"] == "success", (
                f"{ti['task_id']} ended {ti['state']}\n{driver.where(dag_id, run_id)}"
            )
    not_stopped = [
        f"{svc} {t} is {driver.emu.state(svc, t)}"
        for svc, t in step_targets(step)
        if driver.emu.state(svc, t) not in driver.demo.STOPPED
    ]
    assert not not_stopped, f"{dag_id}: targets not stopped: {not_stopped}"
    for task_id in driver.deferrable[dag_id]:
        driver.deferred_for_real(dag_id, run_id, task_id)


def test_example(driver: Driver, steps: dict[str, Any], example_runs: dict[str, str], dag_id: str) -> None:
    """example <dag_id>"""
    example_run(driver, steps[dag_id], example_runs[dag_id])


def test_nightly_teardown_scheduled_stop_all(driver: Driver, steps: dict[str, Any]) -> None:
    """example nightly_teardown (scheduled run, stop-all)"""
    step = steps["nightly_teardown"]
    # A scheduled DAG: unpausing it makes the scheduler create its latest run, as at 02:00.
    driver.unpause(step.dag_id)
    run_id = wait_for(
        "the scheduler to create the nightly_teardown run",
        lambda: next(
            (r["dag_run_id"] for r in driver.dep.api("GET", f"/dags/{step.dag_id}/dagRuns")["dag_runs"]),
            None,
        ),
        60,
    )
    driver.runs.append((step.dag_id, run_id))
    example_run(driver, step, run_id)


def test_a_dag_scheduled_on_the_stop_asset_runs_after_it(
    driver: Driver, steps: dict[str, Any], example_runs: dict[str, str]
) -> None:
    """example feldera_stop_asset: its asset event runs feldera_after_stop, which sees what was stopped"""
    dag_id = "feldera_after_stop"
    example_run(driver, steps["feldera_stop_asset"], example_runs["feldera_stop_asset"])
    run_id = wait_for(
        f"the asset event to create a {dag_id} run",
        lambda: next(
            (r["dag_run_id"] for r in driver.dep.api("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]), None
        ),
        90,
    )
    driver.runs.append((dag_id, run_id))
    state = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
    assert state == "success", f"{dag_id} ended {state}\n{driver.where(dag_id, run_id)}"
    (entry,) = [
        e for e in driver.dep.xcom_entries(dag_id, run_id, "what_was_stopped") if e["key"] == "return_value"
    ]
    value = entry["value"] if isinstance(entry["value"], dict) else json.loads(entry["value"])
    assert value == {"ledger_sync": {"state": "Stopped", "stopped": True, "error": None}}, value


def test_targets_not_running_left_alone(driver: Driver, steps: dict[str, Any]) -> None:
    """examples: targets that were not running are left alone"""
    emu, demo = driver.emu, driver.demo
    assert emu.feldera.status_of("already_stopped") == "Stopped", "already_stopped changed"
    assert not emu.feldera.count("POST", "*/already_stopped/stop"), "already_stopped got a stop"
    assert emu.amperity.state_of(demo.OLD_RUN) == "succeeded", f"{demo.OLD_RUN} changed"
    assert not emu.amperity.count("POST", f"*/{demo.OLD_RUN}/stop"), f"{demo.OLD_RUN} got a stop"


@pytest.mark.e2e_after("routes")  # the last of the runs: on 3.3.2 its notifier crashed the triggerer
def test_deadline_alert_notifier_in_triggerer(driver: Driver, steps: dict[str, Any]) -> None:
    """example feldera_deadline_alert (missed deadline, notifier in the triggerer)

    ``airflow dags test`` cannot show a DeadlineAlert; a deployment can. The DAG stays paused so its run
    stays queued (as a run stuck behind a full pool would), the deadline Airflow computed (queued_at +
    30 min) is moved to now in the metadata DB, and the scheduler and triggerer do the rest: the
    scheduler sees the miss, the triggerer runs the DAG's own notifier."""
    dag_id, pipeline = "feldera_deadline_alert", "nightly_fraud_scores"
    driver.unpause(dag_id, paused=True)
    run_id = driver.trigger(dag_id)
    db = driver.home / "airflow.db"

    def deadline_row() -> Any:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute(
                "SELECT d.id, d.deadline_time FROM deadline d JOIN dag_run r ON d.dagrun_id = r.id "
                "WHERE r.dag_id = ? AND r.run_id = ?",
                (dag_id, run_id),
            ).fetchone()

    row = wait_for("Airflow to record the run's deadline", deadline_row, 30)
    with sqlite3.connect(db, timeout=30) as con:
        con.execute(
            "UPDATE deadline SET deadline_time = ? WHERE id = ?",
            (datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"), row[0]),
        )
    before = driver.emu.feldera.count("POST", f"*/{pipeline}/stop")

    def callback_state() -> str | None:
        driver.dep.check_alive()
        with sqlite3.connect(db, timeout=30) as con:
            got = con.execute(
                "SELECT c.state FROM deadline d JOIN callback c ON d.callback_id = c.id WHERE d.id = ?",
                (row[0],),
            ).fetchone()
        return got[0] if got and got[0] in ("success", "failed") else None

    state = wait_for("the deadline callback to finish", callback_state, 120, interval=0.5)
    assert state == "success", f"the deadline callback ended {state}"
    driver.wait_state(
        f"{pipeline} to be Stopped", lambda: driver.emu.feldera.status_of(pipeline) == "Stopped", 60
    )
    stops = driver.emu.feldera.count("POST", f"*/{pipeline}/stop") - before
    assert stops == 1, f"expected one stop request, the emulator saw {stops}"
    driver.unpause(dag_id)
    end = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
    assert end == "success", f"the run ended {end}\n{driver.where(dag_id, run_id)}"
