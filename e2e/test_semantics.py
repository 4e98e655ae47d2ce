"""Phase ``semantics``: Airflow's own semantics around a stop, on the real deployment (issue 29): one
deadline with ``execution_timeout`` in place and deferred; a retry after its worker was SIGKILLed mid-wait
resumes (no second stop request, the first try's deadline); 20 mapped instances each stop exactly their
own pipeline, also when mapped over (pipeline, connection) pairs."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from e2e.deployment import q
from e2e.driver import RUN_TIMEOUT, Driver

#: The example DAG whose stop task starts in the triggerer (Airflow 3.3+).
FROM_TRIGGERER = "feldera_stop_from_triggerer"


@pytest.fixture(scope="module")
def semantics(driver: Driver) -> Driver:
    driver.emu.set_stop_seconds(1.0)
    for dag_id in ("e2e_deadline", "e2e_retry_resume", "e2e_mapped", FROM_TRIGGERER):
        driver.unpause(dag_id)
    return driver


def stop_requests(driver: Driver, pipeline: str) -> list[Any]:
    return [
        r for r in driver.emu.feldera.requests if r.method == "POST" and r.path.endswith(f"/{pipeline}/stop")
    ]


def test_execution_timeout_is_the_deadline_in_place_and_deferred(semantics: Driver) -> None:
    """semantics: execution_timeout 30 s, timeout 600 s: both modes fail at the same deadline with the
    provider's error naming the pipeline still running"""
    driver, dag_id = semantics, "e2e_deadline"
    pipelines = {"in_place": "deadline_in_place", "deferred": "deadline_deferred"}
    for pipeline in pipelines.values():
        driver.emu.feldera.add_pipeline(pipeline)
        driver.emu.feldera.hold_stopping.add(pipeline)
    started = time.monotonic()
    run_id = driver.trigger(dag_id, pipelines)
    try:
        state = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
    finally:
        for pipeline in pipelines.values():
            driver.emu.feldera.release(pipeline)
    took = time.monotonic() - started
    assert state == "failed", f"the run ended {state}\n{driver.where(dag_id, run_id)}"
    ended = {}
    for mode, pipeline in pipelines.items():
        ti = driver.dep.task_instance(dag_id, run_id, f"stop_{mode}")
        log = driver.dep.task_log(dag_id, run_id, f"stop_{mode}", ti["try_number"])
        assert ti["state"] == "failed", f"stop_{mode} is {ti['state']}"
        expected = f"timed out waiting for 1 pipeline(s) to stop; still running: '{pipeline}' (Stopping)"
        assert expected in log, f"stop_{mode}: not the provider's timeout error:\n{log[-3000:]}"
        assert "AirflowTaskTimeout" not in log and "Timeout" not in re.sub(r"StopTimeoutError", "", log), (
            f"stop_{mode}: Airflow's own timeout fired first:\n{log[-3000:]}"
        )
        assert len(stop_requests(driver, pipeline)) == 1
        ended[mode] = ti["end_date"]
    driver.figure(
        f"  deadline: execution_timeout 30 s ended both modes with the provider's error ({took:.0f}s run)"
    )
    assert took < 150, f"the run took {took:.0f}s: the deadline was not execution_timeout's"


def test_a_retry_after_a_worker_kill_resumes(semantics: Driver) -> None:
    """semantics: the worker SIGKILLed mid-wait; the retry does not resend the accepted stop and keeps
    the first try's deadline (Airflow 3.3's task state store)"""
    import psutil

    driver, dag_id, pipeline = semantics, "e2e_retry_resume", "resume_pipeline"
    feldera = driver.emu.feldera
    feldera.add_pipeline(pipeline)
    feldera.hold_stopping.add(pipeline)
    run_id = driver.trigger(dag_id, {"pipeline": pipeline})
    try:
        driver.wait_state(f"the stop of {pipeline}", lambda: len(stop_requests(driver, pipeline)) == 1, 120)
        reads = feldera.count("GET", f"/v0/pipelines/{pipeline}")
        driver.wait_state(
            "the wait to poll", lambda: feldera.count("GET", f"/v0/pipelines/{pipeline}") >= reads + 2, 60
        )
        ti = driver.dep.task_instance(dag_id, run_id, "stop_pipeline")
        assert ti["state"] == "running" and ti["try_number"] == 1, ti
        pid = int(ti["pid"])
        scheduler = psutil.Process(driver.dep.components["scheduler"].pid)
        assert pid in {p.pid for p in scheduler.children(recursive=True)}, f"pid {pid} is not a worker's"
        psutil.Process(pid).kill()
        driver.dep.wait_ti_state(dag_id, run_id, "stop_pipeline", {"running"}, 120)
        driver.wait_state(
            "the retry to run",
            lambda: driver.dep.task_instance(dag_id, run_id, "stop_pipeline")["try_number"] == 2,
            120,
        )
        reads = feldera.count("GET", f"/v0/pipelines/{pipeline}")
        driver.wait_state(
            "the retry to poll", lambda: feldera.count("GET", f"/v0/pipelines/{pipeline}") >= reads + 1, 60
        )
    finally:
        feldera.release(pipeline)
    state = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
    assert state == "success", f"the run ended {state}\n{driver.where(dag_id, run_id)}"
    log = driver.dep.task_log(dag_id, run_id, "stop_pipeline", 2)
    assert "accepted by an earlier try (not sent again)" in log, f"try 2 did not resume:\n{log[-3000:]}"
    assert len(stop_requests(driver, pipeline)) == 1, "the retry sent the stop again"
    assert feldera.status_of(pipeline) == "Stopped"
    driver.figure("  retry: worker SIGKILLed mid-wait; try 2 resumed, 1 stop request in all")


def test_mapped_stops_each_stop_their_own_pipeline(semantics: Driver) -> None:
    """semantics: .partial().expand() over 20 names (deferrable) and .expand_kwargs() over 20
    (pipeline, connection) pairs: each instance stops exactly its own pipeline, on its own connection"""
    driver, dag_id, feldera = semantics, "e2e_mapped", semantics.emu.feldera
    names = [f"mapped_{i:02d}" for i in range(20)]
    pairs = [(f"mapped_conn_{i:02d}", "feldera_tenant_b" if i % 2 else "feldera_default") for i in range(20)]
    bystander = "mapped_bystander"
    for name in [*names, *(p for p, _ in pairs), bystander]:
        feldera.add_pipeline(name)
    run_id = driver.trigger(dag_id, {"pipelines": names, "pairs": [list(p) for p in pairs]})
    state = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT + 120)
    assert state == "success", f"the run ended {state}\n{driver.where(dag_id, run_id)}"
    tis = [ti for ti in driver.dep.task_instances(dag_id, run_id) if ti["task_id"].startswith("stop_each")]
    assert len(tis) == 40 and all(ti["state"] == "success" for ti in tis), [
        (ti["task_id"], ti["map_index"], ti["state"]) for ti in tis
    ]
    for name in [*names, *(p for p, _ in pairs)]:
        assert len(stop_requests(driver, name)) == 1, (
            f"{name}: {len(stop_requests(driver, name))} stop requests"
        )
        assert feldera.status_of(name) == "Stopped", f"{name} is {feldera.status_of(name)}"
    for name, conn_id in pairs:
        (request,) = stop_requests(driver, name)
        tenant = request.headers.get("feldera-tenant")
        assert tenant == ("tenant-b" if conn_id == "feldera_tenant_b" else None), f"{name}: tenant {tenant!r}"
    assert stop_requests(driver, bystander) == [] and feldera.status_of(bystander) != "Stopped"
    driver.figure("  mapped: 40 instances (20 by name, deferrable; 20 by name and connection), 1 stop each")


def test_a_stop_started_in_the_triggerer_takes_no_worker(semantics: Driver) -> None:
    """semantics: start_from_trigger (Airflow 3.3): the triggerer renders the pipeline, stops it and waits;
    a clean stop ends the task there (no worker ever runs it), an error finishes on a worker with the
    provider's error"""
    driver, dag_id, feldera = semantics, FROM_TRIGGERER, semantics.emu.feldera
    feldera.add_pipeline("sft_clean")
    started = time.monotonic()
    run_id = driver.trigger(dag_id, {"pipeline": "sft_clean"})
    state = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
    took = time.monotonic() - started
    assert state == "success", f"the run ended {state}\n{driver.where(dag_id, run_id)}"
    ti = driver.dep.task_instance(dag_id, run_id, "stop_pipeline")
    assert not ti.get("hostname") and not ti.get("pid"), f"a worker ran the task: {ti}"
    (entry,) = [
        e for e in driver.dep.xcom_entries(dag_id, run_id, "stop_pipeline") if e["key"] == "return_value"
    ]
    value = entry["value"] if isinstance(entry["value"], dict) else json.loads(entry["value"])
    assert value["sft_clean"]["raw_state"] == "Stopped" and value["sft_clean"]["stopped"] is True, value
    assert len(stop_requests(driver, "sft_clean")) == 1
    path = f"/dags/{dag_id}/dagRuns/{q(run_id)}/taskInstances/stop_pipeline/links"
    links = dict(driver.dep.api("GET", path)["extra_links"])
    assert list(links.values()) == [f"{feldera.url}/pipelines/sft_clean/"], links
    log = driver.dep.task_log(dag_id, run_id, "stop_pipeline", ti["try_number"])
    assert "All stopped in the triggerer" in log, log[-3000:]

    missing = "sft_missing"
    run_id = driver.trigger(dag_id, {"pipeline": missing})
    state = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
    assert state == "failed", f"the run ended {state}\n{driver.where(dag_id, run_id)}"
    ti = driver.dep.task_instance(dag_id, run_id, "stop_pipeline")
    log = driver.dep.task_log(dag_id, run_id, "stop_pipeline", ti["try_number"])
    assert "Resuming the task on a worker" in log and missing in log and "TargetNotFoundError" in log, log[
        -3000:
    ]
    assert ti.get("hostname"), f"the failure was not reported by a worker: {ti}"
    driver.figure(
        f"  start from trigger: a clean stop ended in the triggerer, no worker ({took:.0f}s run); "
        "an unknown pipeline failed on a worker with the provider's error"
    )
