"""Phase ``links``: the operators' extra links as the real api-server serves them (issue 26), read from
``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links`` while a task is deferred,
while one waits on its worker, after one failed, and after they finished (``e2e_links``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from e2e.deployment import q
from e2e.driver import RUN_TIMEOUT, Driver

DAG_ID = "e2e_links"
HELD = {"deferred": "links_deferred", "in_place": "links_in_place"}
UNKNOWN = "links_unknown"
CRAWL = "links-crawl"
FELDERA = "Feldera web console"
DATAFORSEO = "DataForSEO dashboard"


@pytest.fixture(scope="module")
def links(driver: Driver) -> Iterator[Driver]:
    driver.emu.set_stop_seconds(1.0)
    driver.unpause(DAG_ID)
    yield driver
    for pipeline in HELD.values():  # a failed scenario must not leave a pipeline held
        driver.emu.feldera.release(pipeline)


def extra_links(driver: Driver, run_id: str, task_id: str) -> dict[str, str | None]:
    """The task's links as the UI gets them from the api-server."""
    path = f"/dags/{DAG_ID}/dagRuns/{q(run_id)}/taskInstances/{task_id}/links"
    return dict(driver.dep.api("GET", path)["extra_links"])


def test_links_of_deferred_running_and_failed_tasks(links: Driver) -> None:
    """links: the api-server shows each pipeline's page in the Feldera web console on a deferred task, a
    task waiting on its worker and a failed one (an unknown pipeline), and the DataForSEO dashboard"""
    driver, feldera = links, links.emu.feldera
    for pipeline in HELD.values():
        feldera.add_pipeline(pipeline)
        feldera.hold_stopping.add(pipeline)
    driver.emu.dataforseo.add_task(CRAWL)
    page = {task: f"{feldera.url}/pipelines/{name}/" for task, name in {**HELD, "unknown": UNKNOWN}.items()}
    started = time.monotonic()
    run_id = driver.trigger(DAG_ID, {**HELD, "unknown": UNKNOWN, "crawl_task_ids": [CRAWL]})
    states = {"deferred": {"deferred"}, "in_place": {"running"}, "unknown": {"failed"}}
    try:
        for task_id, wanted in states.items():
            ti = driver.dep.wait_ti_state(DAG_ID, run_id, task_id, wanted, RUN_TIMEOUT)
            shown = extra_links(driver, run_id, task_id)
            assert shown == {FELDERA: page[task_id]}, (
                f"{task_id} ({ti['state']}) shows {shown}\n{driver.where(DAG_ID, run_id, task_id)}"
            )
        held_at = time.monotonic() - started
    finally:
        for pipeline in HELD.values():
            feldera.release(pipeline)
    state = driver.dep.wait_run(DAG_ID, run_id, RUN_TIMEOUT)
    assert state == "failed", f"the run ended {state} (its unknown pipeline must fail)"
    ended = {ti["task_id"]: ti["state"] for ti in driver.dep.task_instances(DAG_ID, run_id)}
    assert ended == {
        "deferred": "success",
        "in_place": "success",
        "unknown": "failed",
        "dataforseo": "success",
    }
    for task_id in states:  # the same link once the task ended (Airflow 3 stores it again at the end)
        assert extra_links(driver, run_id, task_id) == {FELDERA: page[task_id]}, task_id
    assert extra_links(driver, run_id, "dataforseo") == {
        DATAFORSEO: "https://app.dataforseo.com/api-dashboard"
    }
    assert feldera.handled_count("POST", f"*/{UNKNOWN}/stop") == 1
    driver.figure(
        f"  links: deferred, running and failed tasks showed their pipeline's page "
        f"({held_at:.0f}s); the same after the run ended ({time.monotonic() - started:.0f}s in all)"
    )
