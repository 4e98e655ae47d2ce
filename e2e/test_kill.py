"""Phase ``kill``: the example ``feldera_stop_on_kill`` (a user's operator with ``StopOnKill``) on the real
deployment. A task marked failed through the REST API stops the pipeline it started, running in place
(the operator's ``on_kill``) and deferred (the trigger's ``on_kill``, Airflow 3.3); a triggerer restart,
and a trigger taken over by another triggerer (which Airflow 3.3.2 reports to the old one as a kill,
apache/airflow#73454), leave it running."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from e2e.deployment import q
from e2e.driver import RUN_TIMEOUT, Driver

DAG_ID = "feldera_stop_on_kill"
IN_PLACE, DEFERRED = "run_backfill", "run_backfill_deferred"
#: The tasks' window: longer than any scenario, so only a kill (or the test) ends it.
RUN_FOR = 900
#: How long every emulated stop takes here.
STOP_SECONDS = 1.0


@pytest.fixture(scope="module")
def kills(driver: Driver) -> Iterator[Driver]:
    driver.emu.set_stop_seconds(STOP_SECONDS)
    driver.unpause(DAG_ID)
    yield driver


def start_run(driver: Driver, pipeline: str) -> str:
    """A run whose two tasks start ``pipeline`` (in place) and ``pipeline``_deferred."""
    for name in (pipeline, f"{pipeline}_deferred"):
        driver.emu.feldera.add_pipeline(name, running=False)
    return driver.trigger(DAG_ID, {"pipeline": pipeline, "run_for": RUN_FOR})


def stops(driver: Driver, pipeline: str) -> int:
    return driver.emu.feldera.count("POST", f"*/{pipeline}/stop")


def wait_running(driver: Driver, run_id: str, pipeline: str) -> None:
    """The in-place task runs and its pipeline (started after the task recorded it) is Running."""
    driver.dep.wait_ti_state(DAG_ID, run_id, IN_PLACE, {"running"}, RUN_TIMEOUT)
    driver.wait_state(
        f"{pipeline} to run", lambda: driver.emu.feldera.status_of(pipeline) == "Running", RUN_TIMEOUT
    )


def trigger_log(driver: Driver, run_id: str, job_id: int | None = None) -> str:
    files = driver.dep.trigger_log_files(DAG_ID, run_id, DEFERRED)
    if job_id is not None:
        files = [f for f in files if f.name.endswith(f".trigger.{job_id}.log")]
    return "\n".join(f.read_text(errors="replace") for f in files)


def triggerer_of(driver: Driver, run_id: str) -> int | None:
    """The job id of the triggerer holding the deferred task's trigger (None: unassigned)."""
    ti = driver.dep.task_instance(DAG_ID, run_id, DEFERRED)
    row = driver.dep.trigger_row(ti["id"])
    return None if row is None else row[1]


def wait_deferred(driver: Driver, run_id: str, pipeline: str, not_on: set[int | None]) -> int:
    """The deferred task's trigger runs in a triggerer other than ``not_on``; its job id."""
    driver.dep.wait_ti_state(DAG_ID, run_id, DEFERRED, {"deferred"}, RUN_TIMEOUT)
    driver.wait_state(
        f"{pipeline} to run", lambda: driver.emu.feldera.status_of(pipeline) == "Running", RUN_TIMEOUT
    )
    found: list[int] = []

    def started() -> bool:
        job = triggerer_of(driver, run_id)
        if job in not_on or job is None:
            return False
        found[:] = [job]
        return (
            re.search(rf"trigger {re.escape(DAG_ID)}/.* starting", trigger_log(driver, run_id, job))
            is not None
        )

    driver.wait_state(f"{DEFERRED}'s trigger to start in a triggerer not in {not_on}", started, 120)
    return found[0]


def wait_stopped(driver: Driver, *pipelines: str) -> None:
    def stopped() -> bool:
        return all(driver.emu.feldera.status_of(p) == "Stopped" for p in pipelines)

    driver.wait_state(f"{', '.join(pipelines)} to be Stopped", stopped, 60)


def mark_failed(driver: Driver, run_id: str, task_id: str) -> None:
    path = f"/dags/{DAG_ID}/dagRuns/{q(run_id)}/taskInstances/{task_id}"
    driver.dep.api("PATCH", path, json={"new_state": "failed"})


def test_marked_failed_in_place_and_deferred_stops_the_pipelines(kills: Driver) -> None:
    """kill: a task marked failed stops the pipeline it started, running in place and deferred"""
    driver, pipeline = kills, "kill_marked_failed"
    deferred = f"{pipeline}_deferred"
    run_id = start_run(driver, pipeline)
    wait_running(driver, run_id, pipeline)
    wait_deferred(driver, run_id, deferred, not_on=set())
    assert stops(driver, pipeline) == stops(driver, deferred) == 0
    started = time.monotonic()
    mark_failed(driver, run_id, IN_PLACE)
    mark_failed(driver, run_id, DEFERRED)
    wait_stopped(driver, pipeline, deferred)
    took = time.monotonic() - started
    assert stops(driver, pipeline) == 1, f"{pipeline}: {stops(driver, pipeline)} stop requests"
    assert stops(driver, deferred) == 1, f"{deferred}: {stops(driver, deferred)} stop requests"
    state = driver.dep.wait_run(DAG_ID, run_id, RUN_TIMEOUT)
    assert state == "failed", f"the run ended {state}\n{driver.where(DAG_ID, run_id)}"
    log = driver.dep.task_log(DAG_ID, run_id, IN_PLACE, 1)
    assert f"On kill, stopped Feldera pipeline_name='{pipeline}'" in log, log[-2000:]
    assert "On kill: the task is failed; stopping" in trigger_log(driver, run_id), trigger_log(driver, run_id)
    driver.figure(f"kill: marked failed in place and deferred; both pipelines Stopped within {took:.0f}s")


def test_a_moved_trigger_leaves_the_pipeline_running(kills: Driver) -> None:
    """kill: a triggerer restart leaves the pipeline running; marked failed afterwards, the new
    triggerer stops it. (A trigger taken over by another triggerer, apache/airflow#73454, calls on_kill
    on the old one while the task is still deferred: tests/test_stop_on_kill.py; an e2e of the takeover,
    moving the trigger row between two triggerers, was too timing-dependent on 2 cores to keep.)"""
    driver, pipeline = kills, "kill_moved"
    deferred = f"{pipeline}_deferred"
    run_id = start_run(driver, pipeline)
    wait_running(driver, run_id, pipeline)
    first = wait_deferred(driver, run_id, deferred, not_on=set())

    # A restart (a deploy): the triggerer is stopped, a new one takes the trigger over.
    driver.dep.restart("triggerer")
    second = wait_deferred(driver, run_id, deferred, not_on={first})
    assert stops(driver, deferred) == 0 and driver.emu.feldera.status_of(deferred) == "Running"

    mark_failed(driver, run_id, DEFERRED)
    mark_failed(driver, run_id, IN_PLACE)
    wait_stopped(driver, pipeline, deferred)
    assert stops(driver, deferred) == 1 and stops(driver, pipeline) == 1
    driver.wait_state(
        "the trigger's on_kill to log the stop",
        lambda: "On kill: the task is failed; stopping" in trigger_log(driver, run_id),
        30,
    )
    state = driver.dep.wait_run(DAG_ID, run_id, RUN_TIMEOUT)
    assert state == "failed", f"the run ended {state}\n{driver.where(DAG_ID, run_id)}"
    driver.figure(
        f"kill: triggerer restarted (job {first} -> {second}): pipeline left running; then marked failed: "
        "Stopped"
    )
