"""Phase ``restarts``: components restarted mid-wait (``e2e_slow_stop``, stops of 2 s): the triggerer
SIGKILLed mid-wait, the worker killed between stop and deferral, the api-server restarted while triggers
poll."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.deployment import E2EError
from e2e.driver import RUN_TIMEOUT, Driver


@pytest.fixture(scope="module")
def slow_stops(driver: Driver) -> Driver:
    driver.emu.set_stop_seconds(2.0)
    driver.unpause("e2e_slow_stop")
    return driver


@pytest.fixture(autouse=True)
def release_holds(slow_stops: Driver) -> Iterator[None]:
    """A failed scenario must not leave a pipeline or an answer held."""
    yield
    feldera = slow_stops.emu.feldera
    for pipeline in list(feldera.hold_stopping) + list(feldera.hold_answer):
        feldera.release(pipeline)


def slow_run(driver: Driver, pipeline: str) -> str:
    """A run whose pipeline stays ``Stopping`` until released."""
    driver.emu.feldera.add_pipeline(pipeline)
    driver.emu.feldera.hold_stopping.add(pipeline)
    return driver.trigger("e2e_slow_stop", {"pipeline": pipeline})


def polls(driver: Driver, pipeline: str) -> int:
    """Status reads that show this pipeline: by name, or the list a shared board reads for several."""
    feldera = driver.emu.feldera
    return feldera.count("GET", f"/v0/pipelines/{pipeline}") + feldera.count("GET", "/v0/pipelines")


def wait_polling(driver: Driver, run_id: str, pipeline: str, timeout: float = 90.0) -> dict[str, Any]:
    """Until the task is deferred, its trigger is assigned, and the trigger polls the pipeline."""
    driver.dep.wait_ti_state("e2e_slow_stop", run_id, "stop_pipeline", {"deferred"}, timeout)
    seen = polls(driver, pipeline)
    driver.wait_state(f"{pipeline}'s trigger to poll", lambda: polls(driver, pipeline) >= seen + 2, timeout)
    return driver.dep.task_instance("e2e_slow_stop", run_id, "stop_pipeline")


def trigger_state(driver: Driver, ti: dict[str, Any]) -> tuple[float, int | None]:
    """(deadline in the trigger's kwargs, triggerer job holding it), from the metadata DB."""
    row = driver.dep.trigger_row(ti["id"])
    if row is None:
        raise E2EError(f"{ti['task_id']} ({ti['dag_run_id']}) has no trigger")
    found = re.search(r'"deadline":\s*([0-9.]+)', row[0])
    if not found:
        raise E2EError(f"no deadline in the trigger kwargs: {row[0][:500]}")
    return float(found.group(1)), row[1]


def test_triggerer_sigkilled_mid_wait(slow_stops: Driver) -> None:
    """restart: triggerer SIGKILLed mid-wait (a new one takes over with the same deadline)"""
    driver, pipeline = slow_stops, "restart_triggerer"
    run_id = slow_run(driver, pipeline)
    ti = wait_polling(driver, run_id, pipeline)
    deadline, old_job = trigger_state(driver, ti)
    stop_at = next(t for n, t in driver.emu.feldera.effective_stops if n == pipeline)
    assert abs(deadline - (stop_at + 600)) < 5, (
        f"deadline {deadline} is not the stop's time + timeout ({stop_at + 600})"
    )
    driver.dep.components["triggerer"].kill(signal.SIGKILL)
    killed_at = time.monotonic()
    driver.dep.start("triggerer")
    driver.wait_state(
        "a new triggerer to take the trigger over",
        lambda: trigger_state(driver, ti)[1] not in (None, old_job),
        90,
    )
    seen = polls(driver, pipeline)
    driver.wait_state("the new triggerer to poll", lambda: polls(driver, pipeline) >= seen + 2, 60)
    after = trigger_state(driver, ti)[0]
    assert after == deadline, f"the deadline changed across the restart: {deadline} -> {after}"
    driver.figure(f"  triggerer SIGKILLed; a new one polled {time.monotonic() - killed_at:.0f}s later")
    driver.emu.feldera.release(pipeline)
    state = driver.dep.wait_run("e2e_slow_stop", run_id, RUN_TIMEOUT)
    assert state == "success", f"the run ended {state}\n{driver.where('e2e_slow_stop', run_id)}"
    stops = driver.emu.feldera.handled_count("POST", f"*/{pipeline}/stop")
    assert stops == 1, f"the emulator saw {stops} stop requests, expected exactly 1"
    assert driver.emu.feldera.status_of(pipeline) == "Stopped", f"{pipeline} is not stopped"
    files = driver.dep.trigger_log_files("e2e_slow_stop", run_id, "stop_pipeline")
    assert len(files) >= 2, f"expected trigger logs from two triggerers, found {[f.name for f in files]}"


def test_worker_killed_between_stop_and_deferral(slow_stops: Driver) -> None:
    """restart: worker killed between stop and deferral (the retry succeeds and the pipeline saw one
    effective stop)"""
    import psutil

    driver, pipeline = slow_stops, "restart_worker"
    feldera = driver.emu.feldera
    feldera.add_pipeline(pipeline)
    arrived, clients = feldera.watch_stop(pipeline, hold_answer=True)
    run_id = driver.trigger("e2e_slow_stop", {"pipeline": pipeline})
    driver.wait_state(f"the stop of {pipeline}", arrived.is_set, 120)
    port = int(clients[0].rsplit(":", 1)[1])
    owners = {
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == feldera.port and c.pid
    }
    assert len(owners) == 1, f"cannot tell which process sent the stop (port {port}): {owners}"
    pid = owners.pop()
    scheduler = psutil.Process(driver.dep.components["scheduler"].pid)
    assert pid in {p.pid for p in scheduler.children(recursive=True)}, (
        f"the stop came from pid {pid}, which is not one of the scheduler's workers"
    )
    ti = driver.dep.task_instance("e2e_slow_stop", run_id, "stop_pipeline")
    assert ti["state"] == "running", f"the task is {ti['state']} while its stop is held"
    psutil.Process(pid).kill()
    feldera.release(pipeline)
    state = driver.dep.wait_run("e2e_slow_stop", run_id, RUN_TIMEOUT)
    ti = driver.dep.task_instance("e2e_slow_stop", run_id, "stop_pipeline")
    assert state == "success", f"the run ended {state}\n{driver.where('e2e_slow_stop', run_id)}"
    assert ti["try_number"] == 2, f"expected the retry (try 2) to finish the task, got try {ti['try_number']}"
    assert feldera.effective(pipeline) == 1, f"{feldera.effective(pipeline)} effective stops"
    assert feldera.status_of(pipeline) == "Stopped", f"{pipeline} is not stopped"


def test_api_server_restarted_while_triggers_poll(slow_stops: Driver) -> None:
    """restart: api-server restarted while triggers poll (the waits go on and the runs succeed)"""
    driver, pipelines = slow_stops, ["restart_api_1", "restart_api_2"]
    run_ids = [slow_run(driver, p) for p in pipelines]
    for run_id, pipeline in zip(run_ids, pipelines, strict=True):
        wait_polling(driver, run_id, pipeline)
    driver.dep.components["api-server"].kill(signal.SIGTERM)
    seen = {p: polls(driver, p) for p in pipelines}
    driver.wait_state(
        "the triggers to keep polling while the api-server is down",
        lambda: all(polls(driver, p) >= seen[p] + 2 for p in pipelines),
        30,
    )
    driver.dep.start("api-server")
    driver.dep.wait_api_up()
    for pipeline in pipelines:
        driver.emu.feldera.release(pipeline)
    for run_id, pipeline in zip(run_ids, pipelines, strict=True):
        state = driver.dep.wait_run("e2e_slow_stop", run_id, RUN_TIMEOUT)
        assert state == "success", f"{run_id} ended {state}\n{driver.where('e2e_slow_stop', run_id)}"
        assert driver.emu.feldera.effective(pipeline) == 1, f"{pipeline}: not exactly one effective stop"
        assert driver.emu.feldera.status_of(pipeline) == "Stopped", f"{pipeline} is not stopped"
