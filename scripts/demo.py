"""The demo: example DAGs under a real Airflow (sqlite, ``airflow dags test``) against the emulators.

Starts the Feldera emulator with running pipelines, runs every example DAG, and prints each
pipeline's state before and after, with what stopped it. Airflow's own logs go to ``.demo/logs/``.
Exit status 0 only if every pipeline ended as expected.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".demo"


@dataclass
class Step:
    title: str
    dag_id: str
    conf: dict[str, Any] | None
    pipelines: list[str]
    expect_dag_failure: bool = False


STEPS = [
    Step("stop task (deferred) + sensor", "feldera_stop_task", {"pipeline": "orders_etl"}, ["orders_etl"]),
    Step(
        "teardown after failed work",
        "feldera_teardown",
        {"pipeline": "clickstream", "fail_work": True},
        ["clickstream"],
        expect_dag_failure=True,
    ),
    Step(
        "on_failure_callback notifier",
        "feldera_on_failure_callback",
        {"pipeline": "payments_ingest"},
        ["payments_ingest"],
        expect_dag_failure=True,
    ),
    Step("DeadlineAlert callback (triggerer)", "feldera_deadline_alert", None, ["nightly_fraud_scores"]),
    Step(
        "nightly teardown (stop all)",
        "nightly_teardown",
        None,
        ["ml_features", "ad_hoc_report", "backfill_2025"],
    ),
]


def airflow_env(conn: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(WORK / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{WORK / 'airflow' / 'airflow.db'}",
        AIRFLOW_CONN_FELDERA_DEFAULT=json.dumps(conn),
        STOP_EXAMPLES_POLL_INTERVAL="0.5",
        PYTHONPATH=str(ROOT),
    )
    return env


def run_airflow(args: list[str], env: dict[str, str], log: Path) -> int:
    with log.open("w") as out:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode


def run_deadline_callback(step: Step, env: dict[str, str], log: Path) -> int:
    """Run the DAG's own DeadlineAlert callback through Airflow's CallbackTrigger, as the triggerer does
    when the deadline is missed (``airflow dags test`` does not evaluate deadlines)."""
    code = (
        "import asyncio, json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from airflow.triggers.callback import CallbackTrigger\n"
        f"bag = DagBag(dag_folder={str(ROOT / 'example_dags' / (step.dag_id + '.py'))!r})\n"
        f"dag = bag.get_dag({step.dag_id!r})\n"
        "alert = dag.deadline[0] if isinstance(dag.deadline, list) else dag.deadline\n"
        "kwargs = {**alert.callback.kwargs, 'wait_for_completion': True, 'poll_interval': 0.5}\n"
        "trigger = CallbackTrigger(callback_path=alert.callback.path, callback_kwargs=kwargs)\n"
        "async def main():\n"
        "    return [e.payload async for e in trigger.run()]\n"
        "final = asyncio.run(main())[-1]\n"
        "print(json.dumps(final, default=str))\n"
        "raise SystemExit(0 if str(final['state']).lower().endswith('success') else 1)\n"
    )
    with log.open("w") as out:
        return subprocess.run(
            [sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode


def main() -> int:
    from airflow_provider_stop.testing.feldera import FelderaEmulator

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    emulator = FelderaEmulator(stop_lag_seconds=0.5, stopping_seconds=2.0)
    emulator.start()
    for step in STEPS:
        for name in step.pipelines:
            emulator.add_pipeline(name, paused=name == "ad_hoc_report")
    emulator.add_pipeline("already_stopped", running=False)
    env = airflow_env(emulator.connection())

    print(f"Feldera emulator at {emulator.url}; Airflow home {WORK / 'airflow'} (sqlite)")
    print("Preparing the Airflow metadata database ...", flush=True)
    if run_airflow(["db", "migrate"], env, WORK / "logs" / "db-migrate.log") != 0:
        print("airflow db migrate failed; see .demo/logs/db-migrate.log")
        return 1

    before = {name: emulator.status_of(name) for name in emulator.pipelines}
    rows: list[tuple[str, str, str, str, str, float]] = []
    problems: list[str] = []
    for step in STEPS:
        print(f"Running {step.dag_id:<30} ({step.title}) ...", end=" ", flush=True)
        log = WORK / "logs" / f"{step.dag_id}.log"
        started = time.monotonic()
        if step.dag_id == "feldera_deadline_alert":
            code = run_deadline_callback(step, env, log)
        else:
            args = ["dags", "test", step.dag_id]
            if step.conf:
                args += ["-c", json.dumps(step.conf)]
            code = run_airflow(args, env, log)
        elapsed = time.monotonic() - started
        outcome = (
            "dag run failed (as intended)"
            if code and step.expect_dag_failure
            else ("ok" if code == 0 else "FAILED")
        )
        if code and not step.expect_dag_failure:
            problems.append(f"{step.dag_id} exited {code}; see {log.relative_to(ROOT)}")
        print(f"{outcome} in {elapsed:.1f}s")
        for name in step.pipelines:
            rows.append((name, before[name], emulator.status_of(name), step.dag_id, outcome, elapsed))

    emulator.stop()
    posts = emulator.count("POST", "*/stop")
    gets = emulator.count("GET")
    print()
    header = f"{'pipeline':<22} {'before':<10} {'after':<10} {'stopped by':<30}"
    print(header)
    print("-" * len(header))
    for name, was, now, dag_id, _outcome, _elapsed in rows:
        print(f"{name:<22} {was:<10} {now:<10} {dag_id:<30}")
        if now != "Stopped":
            problems.append(f"{name} is {now}, expected Stopped")
    after_idle = emulator.status_of("already_stopped")
    print(f"{'already_stopped':<22} {before['already_stopped']:<10} {after_idle:<10} (left alone)")
    if emulator.count("POST", "*/already_stopped/stop"):
        problems.append("already_stopped received a stop request")
    print()
    stopped = sum(1 for r in rows if r[2] == "Stopped")
    print(
        f"Summary: {stopped} of {len(rows)} running pipelines stopped by {len(STEPS)} example DAGs; "
        f"{posts} stop requests, {gets} status reads. Airflow logs: .demo/logs/"
    )
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    print("Demo OK.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
