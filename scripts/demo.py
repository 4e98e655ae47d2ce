"""The demo: example DAGs under a real Airflow (sqlite, ``airflow dags test``) against the emulators.

Starts the five emulators with running targets (pipelines, crawls, collections, workflow runs, sources),
runs every example DAG, and prints each target's state before and after, with what stopped it.
Airflow's own logs go to ``.demo/logs/``. Exit status 0 only if every target ended as expected.
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
#: Each service's word for stopped (Feldera, DataForSEO, Rainforest, DataSift, Amperity).
STOPPED = ("Stopped", "finished", "idle", "stopped", "canceled")
#: An Amperity run that finished yesterday: stop-all must leave it alone.
OLD_RUN = "wf-20261122-51234-Old001"
WORK = ROOT / ".demo"


@dataclass
class Step:
    title: str
    dag_id: str
    conf: dict[str, Any] | None
    pipelines: list[str]
    expect_dag_failure: bool = False
    crawls: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()


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
    Step(
        "stop task started in the triggerer (Airflow 3.3+)",
        "feldera_stop_from_triggerer",
        {"pipeline": "search_index"},
        ["search_index"],
    ),
    Step(
        "your task, stopped on kill (in place + deferred)",
        "feldera_stop_on_kill",
        {"pipeline": "orders_backfill", "run_for": 10},
        ["orders_backfill", "orders_backfill_deferred"],
    ),
    Step("DeadlineAlert callback (triggerer)", "feldera_deadline_alert", None, ["nightly_fraud_scores"]),
    Step(
        "Amperity run (OAuth, deferred)",
        "amperity_stop_workflow_run",
        None,
        [],
        runs=("wf-20261123-09001-Demo01",),
    ),
    Step(
        "stop with an asset event (a DAG scheduled on it runs)",
        "feldera_stop_asset",
        {"pipeline": "ledger_sync"},
        ["ledger_sync"],
    ),
    Step(
        "stop-all preview (dry run: nothing stopped)",
        "feldera_stop_all_preview",
        None,
        [],
    ),
    Step(
        "nightly teardown (stop all)",
        "nightly_teardown",
        None,
        ["ml_features", "ad_hoc_report", "backfill_2025"],
        crawls=("crawl-shop-example", "crawl-blog-example", "crawl-docs-example"),
        collections=("200001", "200002"),
        sources=("6b77d9700a9a473a9e44ade033062d02", "9bb81b7b96f34bbc9880394e892bad07"),
        runs=("wf-20261123-14418-6UhqSe", "wf-20261123-14419-Tz8kQa"),
    ),
]


def seed(feldera: Any, dfs: Any, rainforest: Any, amperity: Any, datasift: Any) -> None:
    """The demo's targets: what each step stops, plus the two that must be left alone (also used by
    ``make e2e``)."""
    for step in STEPS:
        for name in step.pipelines:
            feldera.add_pipeline(name, paused=name == "ad_hoc_report")
    feldera.add_pipeline("already_stopped", running=False)
    dfs.add_demo_data()
    rainforest.add_demo_data()
    datasift.add_demo_data()
    amperity.add_demo_data()
    amperity.add_run("wf-20261123-09001-Demo01", name="Send audiences to Braze (by mistake)")
    amperity.add_run(OLD_RUN, state="succeeded")


def airflow_env(conns: dict[str, dict[str, Any]]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(WORK / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{WORK / 'airflow' / 'airflow.db'}",
        STOP_EXAMPLES_POLL_INTERVAL="0.5",
        PYTHONPATH=str(ROOT),
    )
    env.update({f"AIRFLOW_CONN_{service.upper()}_DEFAULT": json.dumps(c) for service, c in conns.items()})
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
    from airflow_provider_stop.testing.amperity import AmperityEmulator
    from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
    from airflow_provider_stop.testing.datasift import DataSiftEmulator
    from airflow_provider_stop.testing.feldera import FelderaEmulator
    from airflow_provider_stop.testing.rainforest import RainforestEmulator

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    feldera = FelderaEmulator(stop_lag_seconds=0.5, stopping_seconds=2.0)
    dfs = DataForSeoEmulator(stop_delay_seconds=1.0)
    rainforest = RainforestEmulator(stop_delay_seconds=1.0)
    datasift = DataSiftEmulator()
    amperity = AmperityEmulator(cancel_seconds=1.0)
    for emulator in (feldera, dfs, rainforest, datasift, amperity):
        emulator.start()
    seed(feldera, dfs, rainforest, amperity, datasift)
    emulators = {
        "feldera": feldera,
        "dataforseo": dfs,
        "rainforest": rainforest,
        "amperity": amperity,
        "datasift": datasift,
    }
    env = airflow_env({service: emu.connection() for service, emu in emulators.items()})

    def state(service: str, target: str) -> str:
        return emulators[service].target_state(target)

    print("Emulators: " + ", ".join(f"{service} at {emu.url}" for service, emu in emulators.items()))
    print(f"Airflow home {WORK / 'airflow'} (sqlite)")
    print("Preparing the Airflow metadata database ...", flush=True)
    if run_airflow(["db", "migrate"], env, WORK / "logs" / "db-migrate.log") != 0:
        print("airflow db migrate failed; see .demo/logs/db-migrate.log")
        return 1

    targets = [(service, tid) for service, emu in emulators.items() for tid in getattr(emu, emu.targets_attr)]
    before = {key: state(*key) for key in targets}
    rows: list[tuple[str, str, str, str, str]] = []
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
        if code and step.expect_dag_failure:
            outcome = "dag run failed (as intended)"
        else:
            outcome = "ok" if code == 0 else "FAILED"
        if code and not step.expect_dag_failure:
            problems.append(f"{step.dag_id} exited {code}; see {log.relative_to(ROOT)}")
        print(f"{outcome} in {elapsed:.1f}s")
        keys = [("feldera", n) for n in step.pipelines] + [("dataforseo", c) for c in step.crawls]
        keys += [("rainforest", c) for c in step.collections] + [("datasift", s) for s in step.sources]
        keys += [("amperity", r) for r in step.runs]
        for key in keys:
            rows.append((*key, before[key], state(*key), step.dag_id))

    for emu in emulators.values():
        emu.stop()
    rf_stops = rainforest.count("GET", "*/stop") + rainforest.count("GET", "*/stopall")
    stops = (
        feldera.count("POST", "*/stop")
        + dfs.count("POST", "*/force_stop")
        + rf_stops
        + datasift.count("PUT")
        + amperity.count("POST", "*/stop")
    )
    reads = sum(emu.count("GET") for emu in emulators.values()) - rf_stops
    tokens = amperity.count("POST", "/api/v0/oauth2/token")
    print()
    header = f"{'service':<11} {'target':<34} {'before':<12} {'after':<12} {'stopped by':<28}"
    print(header)
    print("-" * len(header))
    for service, name, was, now, dag_id in rows:
        print(f"{service:<11} {name:<34} {was:<12} {now:<12} {dag_id:<28}")
        if now not in STOPPED:
            problems.append(f"{service} {name} is {now}, expected stopped")
    left_alone = [
        (
            "feldera",
            "already_stopped",
            feldera.status_of("already_stopped"),
            feldera,
            "*/already_stopped/stop",
        ),
        ("amperity", OLD_RUN, amperity.state_of(OLD_RUN), amperity, f"*/{OLD_RUN}/stop"),
    ]
    for service, name, now, emu, stop_path in left_alone:
        print(f"{service:<11} {name:<34} {before[(service, name)]:<12} {now:<12} (left alone)")
        if emu.count("POST", stop_path):
            problems.append(f"{service} {name} was not running but received a stop request")
    print()
    stopped = sum(1 for r in rows if r[3] in STOPPED)
    print(
        f"Summary: {stopped} of {len(rows)} running targets stopped by {len(STEPS)} example DAGs; "
        f"{stops} stop requests, {reads} status reads, {tokens} OAuth token fetch(es). "
        "Airflow logs: .demo/logs/"
    )
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    print("Demo OK.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
