"""Phase ``fast_stop``: issue 13's DAG (a forced Feldera stop and a DataForSEO stop, both deferrable, done
within about a second) ``--runs`` times at once: no run lost to Airflow's deferral race."""

from __future__ import annotations

import time

import pytest

from e2e.driver import OUT, RUN_TIMEOUT, Driver

#: The issue's fast stop: done within about a second.
FAST_STOP_SECONDS = 0.8


def test_fast_stop_no_run_lost(driver: Driver, request: pytest.FixtureRequest) -> None:
    """fast-stop DAG x<runs>: no run lost (every run succeeds, every target stops)"""
    dag_id, n = "e2e_fast_stop", int(request.config.getoption("runs"))
    driver.emu.set_stop_seconds(FAST_STOP_SECONDS)
    driver.unpause(dag_id)
    runs = {}
    for i in range(n):
        pipeline, crawl = f"fast_pipeline_{i}", f"fast-crawl-{i}"
        driver.emu.feldera.add_pipeline(pipeline)
        driver.emu.dataforseo.add_task(crawl)
        runs[driver.trigger(dag_id, {"pipeline": pipeline, "crawl_task_ids": [crawl]})] = (pipeline, crawl)
    started = time.monotonic()
    lost: list[str] = []
    for run_id, (pipeline, crawl) in runs.items():
        state = driver.dep.wait_run(dag_id, run_id, RUN_TIMEOUT + 10 * n)
        stopped = (driver.emu.feldera.status_of(pipeline), driver.emu.dataforseo.progress_of(crawl))
        if state != "success" or stopped != ("Stopped", "finished"):
            lost.append(f"{run_id}: {state}, targets {stopped}\n{driver.where(dag_id, run_id)}")
    race = [line for run_id in runs for line in driver.race_lines(run_id)]
    deferred = sum(
        1
        for run_id in runs
        for task in ("stop_pipeline", "stop_crawls")
        if driver.dep.trigger_log_files(dag_id, run_id, task)
    )
    summary = (
        f"fast-stop: {n} runs, {len(lost)} failed, {len(race)} race line(s) in the scheduler log, "
        f"{deferred} of {2 * n} tasks deferred, {time.monotonic() - started:.0f}s"
    )
    driver.figure(summary)
    (OUT / "fast_stop.txt").write_text(summary + "\n" + "\n".join(race) + "\n" + "\n".join(lost) + "\n")
    assert not lost and not race, summary + "\n" + "\n".join(race[:6]) + "\n" + "\n".join(lost[:3])
