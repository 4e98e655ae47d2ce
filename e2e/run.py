"""``make e2e``: the provider under a real Airflow deployment, end to end.

Starts the five emulators in this process and a real Airflow 3 deployment (api-server, scheduler,
dag-processor and triggerer as separate processes; LocalExecutor; sqlite; connections stored with
``airflow connections add``), then checks, through the scheduler and the REST API v2:

1. every example DAG: the run ends as intended, every target ends stopped, every deferrable task really
   waited in the triggerer (its trigger log and its ``deferred`` state change);
2. issue 13's fast-stop DAG, ``--runs`` times: no run lost to Airflow's deferral race;
3. restarts: the triggerer SIGKILLed mid-wait, the worker killed between stop and deferral, the
   api-server restarted while triggers poll;
4. secrets: a Feldera key with its newline (``feldera_newline``) is refused, naming the field; a
   service that echoes the key (``feldera_echo``) fails both a task in place and a deferred one with
   its error; then no connection secret in any log, component output, rendered field, XCom or REST log;
5. the connection forms (``e2e/forms.py``, when present).

Prints ``e2e: N passed, M failed`` last and exits non-zero on any failure. Component output and logs
of a failed run are kept in ``.e2e/failed/``.

    python -m e2e.run [--runs 20] [--only examples,fast_stop,restarts,secrets,forms]
                      [--code-root PATH]   # import the provider (and example DAGs) from another tree
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".e2e"
PHASES = ("examples", "fast_stop", "restarts", "secrets", "forms")
#: Seconds every emulated stop takes in the example phase: longer than the operator's wait on the
#: worker before it defers (``[stop_provider] wait_before_defer``, 5 s by default), so every deferrable
#: task really hands its wait to the triggerer.
EXAMPLE_STOP_SECONDS = 12.0
#: The issue's fast stop: done within about a second.
FAST_STOP_SECONDS = 0.8
#: Airflow's answer when its deferral race loses a run (issue 13).
RACE = re.compile(r"finished with state success, but the task instance's state attribute is \w+")
RUN_TIMEOUT = 240.0


class Failed(AssertionError):
    """A check failed; the message says which DAG, task and why."""


def require(condition: object, message: str) -> None:
    if not condition:
        raise Failed(message)


@dataclass
class Suite:
    """Named checks, each counted once; failures keep their message."""

    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def check(self, name: str, fn: Callable[[], object]) -> bool:
        started = time.monotonic()
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            detail = str(exc) if isinstance(exc, AssertionError) else traceback.format_exc()
            self.failed.append((name, detail))
            print(f"FAIL {name} ({time.monotonic() - started:.1f}s)\n  " + detail.replace("\n", "\n  "))
            return False
        self.passed.append(name)
        print(f"ok   {name} ({time.monotonic() - started:.1f}s)", flush=True)
        return True

    def record(self, name: str, problems: list[str]) -> None:
        """A check whose problems were gathered elsewhere (e.g. the connection forms)."""

        def verdict() -> None:
            require(not problems, "\n".join(problems))

        self.check(name, verdict)


class E2E:
    """The driver: owns the emulators, the deployment and the checks."""

    def __init__(self, args: argparse.Namespace) -> None:
        from e2e.deployment import Deployment
        from e2e.emulators import Emulators, load_demo

        self.args = args
        self.code_root = Path(args.code_root).resolve()
        self.suite = Suite()
        self.demo = load_demo(self.code_root)
        self.emu = Emulators.start()
        dag_files = sorted((self.code_root / "example_dags").glob("*.py"))
        dag_files += sorted((ROOT / "e2e" / "dags").glob("*.py"))
        self.dag_ids = [p.stem for p in dag_files]
        self.home = Path(tempfile.mkdtemp(prefix="airflow-e2e-"))
        extra_env = {}
        for setting in args.config:
            key, sep, value = setting.partition("=")
            section, dot, option = key.partition(".")
            if not (sep and dot):
                raise SystemExit(f"--config wants section.option=value, got {setting!r}")
            extra_env[f"AIRFLOW__{section.upper()}__{option.upper()}"] = value
        self.dep = Deployment(self.home, self.code_root, dag_files, extra_env)
        #: (dag_id, run_id) of every run this suite started, for the secret sweep.
        self.runs: list[tuple[str, str]] = []
        self.deferrable: dict[str, list[str]] = {}

    # ---- helpers ---------------------------------------------------------------------------
    def where(self, dag_id: str, run_id: str, task_id: str | None = None) -> str:
        """A failure's context: the task instances' states and the log tail of the named task."""
        lines = [f"{dag_id} run {run_id}:"]
        try:
            for ti in self.dep.task_instances(dag_id, run_id):
                lines.append(f"  {ti['task_id']}: {ti['state']} (try {ti['try_number']})")
                if task_id in (None, ti["task_id"]) and ti["state"] != "success" and ti["try_number"]:
                    log = self.dep.task_log(dag_id, run_id, ti["task_id"], ti["try_number"])
                    lines += ["    " + line[:300] for line in log.splitlines()[-8:]]
        except Exception as exc:
            lines.append(f"  (could not read the task instances: {exc})")
        race = self.race_lines(run_id)
        if race:
            lines += ["  scheduler:", *("    " + line for line in race)]
        return "\n".join(lines)

    def race_lines(self, run_id: str | None = None) -> list[str]:
        """Scheduler lines where Airflow failed a task because of its deferral race."""
        found = []
        for path in sorted(self.dep.out_dir.glob("scheduler.*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if RACE.search(line) and (run_id is None or run_id in line):
                    found.append(line.strip()[:600])
        return found

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run_id = self.dep.trigger(dag_id, conf)
        self.runs.append((dag_id, run_id))
        return run_id

    def unpause(self, dag_id: str, paused: bool = False) -> None:
        self.dep.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def deferred_for_real(self, dag_id: str, run_id: str, task_id: str) -> None:
        """The task handed its wait to the triggerer: its state went to ``deferred`` (execution API),
        and the triggerer ran its trigger and wrote the trigger's own log for this try."""
        ti = self.dep.task_instance(dag_id, run_id, task_id)
        api_log = "\n".join(p.read_text(errors="replace") for p in self.dep.out_dir.glob("api-server.*.log"))
        require(
            re.search(rf"new_state=deferred .*ti_id={ti['id']}", api_log),
            f"{dag_id}.{task_id} ({run_id}) never entered the deferred state",
        )
        files = self.dep.trigger_log_files(dag_id, run_id, task_id)
        require(files, f"{dag_id}.{task_id} ({run_id}) has no trigger log: it never ran in the triggerer")
        text = "\n".join(p.read_text(errors="replace") for p in files)
        require(
            re.search(rf"trigger {re.escape(f'{dag_id}/{run_id}/{task_id}/')}.* starting", text),
            f"{dag_id}.{task_id} ({run_id}): its trigger log does not show it starting:\n{text[-2000:]}",
        )

    def wait_state(self, what: str, probe: Callable[[], bool], timeout: float) -> None:
        from e2e.deployment import wait_for

        wait_for(what, lambda: probe() or None, timeout, interval=0.2)

    # ---- the deployment --------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        self.dep.prepare()
        print(f"  metadata DB migrated ({time.monotonic() - started:.0f}s)", flush=True)
        where = self.dep.imported_provider()
        print(f"Airflow home {self.home}; the components import the provider from {where}")
        if not where.startswith(str(self.code_root) + "/"):
            raise Failed(f"the components import airflow_provider_stop from {where}, not {self.code_root}")
        # One `airflow connections add` per connection, side by side (each is a CLI start-up).
        connections = self.emu.connections()
        with ThreadPoolExecutor(max_workers=len(connections) + 1) as pool:
            added = [pool.submit(self.dep.add_connection, c, v) for c, v in connections.items()]
            deferrable = pool.submit(self.dep.deferrable_tasks)
            for future in added:
                future.result()
            self.deferrable = deferrable.result()
        print(f"  connections added ({time.monotonic() - started:.0f}s)", flush=True)
        self.dep.start_all()
        print(f"  api-server answers ({time.monotonic() - started:.0f}s)", flush=True)
        self.dep.wait_dags_parsed(self.dag_ids)
        print(f"Deployment up at {self.dep.base_url} in {time.monotonic() - started:.0f}s", flush=True)

    def stop(self, ok: bool) -> None:
        """Stop everything; a second Ctrl-C or SIGTERM does not cut the clean-up short."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for step in (self.dep.stop_all, self.emu.stop):
            try:
                step()
            except Exception as exc:
                print(f"clean-up: {type(exc).__name__}: {exc}")
        if not ok:
            keep = OUT / "failed"
            shutil.rmtree(keep, ignore_errors=True)
            for part in ("out", "logs", "cli"):
                if (self.home / part).exists():
                    shutil.copytree(self.home / part, keep / part)
            print(f"Logs of the failed run: {keep}")
        shutil.rmtree(self.home, ignore_errors=True)

    # ---- 1. example DAGs -------------------------------------------------------------------
    def examples(self) -> None:
        """Every example DAG through the scheduler, with stops slow enough that each deferrable task
        defers (the nightly teardown, a stop-all, runs last, when only its own targets still run)."""
        emu, demo = self.emu, self.demo
        emu.seed_demo(demo)
        emu.set_stop_seconds(EXAMPLE_STOP_SECONDS)
        steps = {step.dag_id: step for step in demo.STEPS}
        require(
            set(steps) == {p.stem for p in (self.code_root / "example_dags").glob("*.py")},
            f"scripts/demo.py's steps {sorted(steps)} do not cover every example DAG",
        )
        first = [s for s in demo.STEPS if s.dag_id not in ("nightly_teardown", "feldera_deadline_alert")]
        runs = {}
        for step in first:
            self.unpause(step.dag_id)
            runs[step.dag_id] = self.trigger(step.dag_id, step.conf)
        for step in first:
            self.suite.check(f"example {step.dag_id}", self.example_check(step, runs[step.dag_id]))
        step = steps["nightly_teardown"]

        def nightly() -> None:
            # A scheduled DAG: unpausing it makes the scheduler create its latest run, as at 02:00.
            self.unpause(step.dag_id)
            from e2e.deployment import wait_for

            run_id = wait_for(
                "the scheduler to create the nightly_teardown run",
                lambda: next(
                    (
                        r["dag_run_id"]
                        for r in self.dep.api("GET", f"/dags/{step.dag_id}/dagRuns")["dag_runs"]
                    ),
                    None,
                ),
                60,
            )
            self.runs.append((step.dag_id, run_id))
            self.example_run(step, run_id)

        self.suite.check("example nightly_teardown (scheduled run, stop-all)", nightly)

        def left_alone() -> None:
            require(emu.feldera.status_of("already_stopped") == "Stopped", "already_stopped changed")
            require(not emu.feldera.count("POST", "*/already_stopped/stop"), "already_stopped got a stop")
            require(emu.amperity.state_of(demo.OLD_RUN) == "succeeded", f"{demo.OLD_RUN} changed")
            require(not emu.amperity.count("POST", f"*/{demo.OLD_RUN}/stop"), f"{demo.OLD_RUN} got a stop")

        self.suite.check("examples: targets that were not running are left alone", left_alone)

    def example_check(self, step: Any, run_id: str) -> Callable[[], None]:
        return lambda: self.example_run(step, run_id)

    def step_targets(self, step: Any) -> list[tuple[str, str]]:
        keys = [("feldera", n) for n in step.pipelines] + [("dataforseo", c) for c in step.crawls]
        keys += [("rainforest", c) for c in step.collections] + [("datasift", s) for s in step.sources]
        return keys + [("amperity", r) for r in step.runs]

    def example_run(self, step: Any, run_id: str) -> None:
        dag_id = step.dag_id
        state = self.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
        expected = "failed" if step.expect_dag_failure else "success"
        require(state == expected, f"run ended {state}, expected {expected}\n{self.where(dag_id, run_id)}")
        for ti in self.dep.task_instances(dag_id, run_id):
            # Only the work tasks of the teardown and on-failure examples fail, on purpose.
            if ti["operator"] != "_PythonDecoratedOperator":
                require(
                    ti["state"] == "success",
                    f"{ti['task_id']} ended {ti['state']}\n{self.where(dag_id, run_id)}",
                )
        not_stopped = [
            f"{svc} {t} is {self.emu.state(svc, t)}"
            for svc, t in self.step_targets(step)
            if self.emu.state(svc, t) not in self.demo.STOPPED
        ]
        require(not not_stopped, f"{dag_id}: targets not stopped: {not_stopped}")
        for task_id in self.deferrable[dag_id]:
            self.deferred_for_real(dag_id, run_id, task_id)

    def deadline_alert(self) -> None:
        """``airflow dags test`` cannot show a DeadlineAlert; a deployment can. The DAG stays paused so
        its run stays queued (as a run stuck behind a full pool would), the deadline Airflow computed
        (queued_at + 30 min) is moved to now in the metadata DB, and the scheduler and triggerer do the
        rest: the scheduler sees the miss, the triggerer runs the DAG's own notifier."""
        dag_id, pipeline = "feldera_deadline_alert", "nightly_fraud_scores"
        self.unpause(dag_id, paused=True)
        run_id = self.trigger(dag_id)
        db = self.home / "airflow.db"

        def deadline_row() -> Any:
            with sqlite3.connect(db, timeout=30) as con:
                return con.execute(
                    "SELECT d.id, d.deadline_time FROM deadline d JOIN dag_run r ON d.dagrun_id = r.id "
                    "WHERE r.dag_id = ? AND r.run_id = ?",
                    (dag_id, run_id),
                ).fetchone()

        from e2e.deployment import wait_for

        row = wait_for("Airflow to record the run's deadline", deadline_row, 30)
        with sqlite3.connect(db, timeout=30) as con:
            con.execute(
                "UPDATE deadline SET deadline_time = ? WHERE id = ?",
                (datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"), row[0]),
            )
        before = self.emu.feldera.count("POST", f"*/{pipeline}/stop")

        def callback_state() -> str | None:
            self.dep.check_alive()
            with sqlite3.connect(db, timeout=30) as con:
                got = con.execute(
                    "SELECT c.state FROM deadline d JOIN callback c ON d.callback_id = c.id WHERE d.id = ?",
                    (row[0],),
                ).fetchone()
            return got[0] if got and got[0] in ("success", "failed") else None

        state = wait_for("the deadline callback to finish", callback_state, 120, interval=0.5)
        require(state == "success", f"the deadline callback ended {state}")
        self.wait_state(
            f"{pipeline} to be Stopped", lambda: self.emu.feldera.status_of(pipeline) == "Stopped", 60
        )
        stops = self.emu.feldera.count("POST", f"*/{pipeline}/stop") - before
        require(stops == 1, f"expected one stop request, the emulator saw {stops}")
        self.unpause(dag_id)
        end = self.dep.wait_run(dag_id, run_id, RUN_TIMEOUT)
        require(end == "success", f"the run ended {end}\n{self.where(dag_id, run_id)}")

    # ---- 2. fast stops ---------------------------------------------------------------------
    def fast_stop(self) -> None:
        """Issue 13's DAG ``--runs`` times at once: every run must succeed, every target stop."""
        dag_id, n = "e2e_fast_stop", self.args.runs
        self.emu.set_stop_seconds(FAST_STOP_SECONDS)
        self.unpause(dag_id)
        runs = {}
        for i in range(n):
            pipeline, crawl = f"fast_pipeline_{i}", f"fast-crawl-{i}"
            self.emu.feldera.add_pipeline(pipeline)
            self.emu.dataforseo.add_task(crawl)
            runs[self.trigger(dag_id, {"pipeline": pipeline, "crawl_task_ids": [crawl]})] = (pipeline, crawl)
        started = time.monotonic()
        lost: list[str] = []
        for run_id, (pipeline, crawl) in runs.items():
            state = self.dep.wait_run(dag_id, run_id, RUN_TIMEOUT + 10 * n)
            stopped = (self.emu.feldera.status_of(pipeline), self.emu.dataforseo.progress_of(crawl))
            if state != "success" or stopped != ("Stopped", "finished"):
                lost.append(f"{run_id}: {state}, targets {stopped}\n{self.where(dag_id, run_id)}")
        race = [line for run_id in runs for line in self.race_lines(run_id)]
        deferred = sum(
            1
            for run_id in runs
            for task in ("stop_pipeline", "stop_crawls")
            if self.dep.trigger_log_files(dag_id, run_id, task)
        )
        summary = (
            f"fast-stop: {n} runs, {len(lost)} failed, {len(race)} race line(s) in the scheduler log, "
            f"{deferred} of {2 * n} tasks deferred, {time.monotonic() - started:.0f}s"
        )
        print(summary)
        (OUT / "fast_stop.txt").write_text(summary + "\n" + "\n".join(race) + "\n" + "\n".join(lost) + "\n")
        require(not lost and not race, summary + "\n" + "\n".join(race[:6]) + "\n" + "\n".join(lost[:3]))

    # ---- 3. restarts -----------------------------------------------------------------------
    def slow_run(self, pipeline: str, hold_stopping: bool = True) -> str:
        self.emu.feldera.add_pipeline(pipeline)
        if hold_stopping:
            self.emu.feldera.hold_stopping.add(pipeline)
        return self.trigger("e2e_slow_stop", {"pipeline": pipeline})

    def polls(self, pipeline: str) -> int:
        """Status reads that show this pipeline: by name, or the list a shared board reads for several."""
        return self.emu.feldera.count("GET", f"/v0/pipelines/{pipeline}") + self.emu.feldera.count(
            "GET", "/v0/pipelines"
        )

    def wait_polling(self, run_id: str, pipeline: str, timeout: float = 90.0) -> dict[str, Any]:
        """Until the task is deferred, its trigger is assigned, and the trigger polls the pipeline."""
        self.dep.wait_ti_state("e2e_slow_stop", run_id, "stop_pipeline", {"deferred"}, timeout)
        seen = self.polls(pipeline)
        self.wait_state(f"{pipeline}'s trigger to poll", lambda: self.polls(pipeline) >= seen + 2, timeout)
        return self.dep.task_instance("e2e_slow_stop", run_id, "stop_pipeline")

    def trigger_state(self, ti: dict[str, Any]) -> tuple[float, int | None]:
        """(deadline in the trigger's kwargs, triggerer job holding it), from the metadata DB."""
        row = self.dep.trigger_row(ti["id"])
        if row is None:
            raise Failed(f"{ti['task_id']} ({ti['dag_run_id']}) has no trigger")
        found = re.search(r'"deadline":\s*([0-9.]+)', row[0])
        if not found:
            raise Failed(f"no deadline in the trigger kwargs: {row[0][:500]}")
        return float(found.group(1)), row[1]

    def restart_triggerer(self) -> None:
        """SIGKILL the triggerer while it waits on a stop; a new one takes over with the same deadline."""
        pipeline = "restart_triggerer"
        run_id = self.slow_run(pipeline)
        ti = self.wait_polling(run_id, pipeline)
        deadline, old_job = self.trigger_state(ti)
        stop_at = next(t for n, t in self.emu.feldera.effective_stops if n == pipeline)
        require(
            abs(deadline - (stop_at + 600)) < 5,
            f"deadline {deadline} is not the stop's time + timeout ({stop_at + 600})",
        )
        self.dep.components["triggerer"].kill(signal.SIGKILL)
        killed_at = time.monotonic()
        self.dep.start("triggerer")
        self.wait_state(
            "a new triggerer to take the trigger over",
            lambda: self.trigger_state(ti)[1] not in (None, old_job),
            90,
        )
        seen = self.polls(pipeline)
        self.wait_state("the new triggerer to poll", lambda: self.polls(pipeline) >= seen + 2, 60)
        after = self.trigger_state(ti)[0]
        require(after == deadline, f"the deadline changed across the restart: {deadline} -> {after}")
        print(f"  triggerer SIGKILLed; a new one polled {time.monotonic() - killed_at:.0f}s later")
        self.emu.feldera.release(pipeline)
        state = self.dep.wait_run("e2e_slow_stop", run_id, RUN_TIMEOUT)
        require(state == "success", f"the run ended {state}\n{self.where('e2e_slow_stop', run_id)}")
        stops = self.emu.feldera.handled_count("POST", f"*/{pipeline}/stop")
        require(stops == 1, f"the emulator saw {stops} stop requests, expected exactly 1")
        require(self.emu.feldera.status_of(pipeline) == "Stopped", f"{pipeline} is not stopped")
        files = self.dep.trigger_log_files("e2e_slow_stop", run_id, "stop_pipeline")
        require(
            len(files) >= 2, f"expected trigger logs from two triggerers, found {[f.name for f in files]}"
        )

    def restart_worker(self) -> None:
        """Kill the task's process after its stop took effect, before it could defer: the retry
        succeeds and the pipeline saw one effective stop."""
        import psutil

        pipeline = "restart_worker"
        self.emu.feldera.add_pipeline(pipeline)
        arrived, clients = self.emu.feldera.watch_stop(pipeline, hold_answer=True)
        run_id = self.trigger("e2e_slow_stop", {"pipeline": pipeline})
        self.wait_state(f"the stop of {pipeline}", arrived.is_set, 120)
        port = int(clients[0].rsplit(":", 1)[1])
        emu_port = self.emu.feldera.port
        owners = {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == emu_port and c.pid
        }
        require(len(owners) == 1, f"cannot tell which process sent the stop (port {port}): {owners}")
        pid = owners.pop()
        scheduler = psutil.Process(self.dep.components["scheduler"].pid)
        require(
            pid in {p.pid for p in scheduler.children(recursive=True)},
            f"the stop came from pid {pid}, which is not one of the scheduler's workers",
        )
        ti = self.dep.task_instance("e2e_slow_stop", run_id, "stop_pipeline")
        require(ti["state"] == "running", f"the task is {ti['state']} while its stop is held")
        psutil.Process(pid).kill()
        self.emu.feldera.release(pipeline)
        state = self.dep.wait_run("e2e_slow_stop", run_id, RUN_TIMEOUT)
        ti = self.dep.task_instance("e2e_slow_stop", run_id, "stop_pipeline")
        require(state == "success", f"the run ended {state}\n{self.where('e2e_slow_stop', run_id)}")
        require(
            ti["try_number"] == 2,
            f"expected the retry (try 2) to finish the task, got try {ti['try_number']}",
        )
        require(
            self.emu.feldera.effective(pipeline) == 1,
            f"{self.emu.feldera.effective(pipeline)} effective stops",
        )
        require(self.emu.feldera.status_of(pipeline) == "Stopped", f"{pipeline} is not stopped")

    def restart_api_server(self) -> None:
        """Restart the api-server while two triggers poll: the waits go on and the runs succeed."""
        pipelines = ["restart_api_1", "restart_api_2"]
        run_ids = [self.slow_run(p) for p in pipelines]
        for run_id, pipeline in zip(run_ids, pipelines, strict=True):
            self.wait_polling(run_id, pipeline)
        api = self.dep.components["api-server"]
        api.kill(signal.SIGTERM)
        seen = {p: self.polls(p) for p in pipelines}
        self.wait_state(
            "the triggers to keep polling while the api-server is down",
            lambda: all(self.polls(p) >= seen[p] + 2 for p in pipelines),
            30,
        )
        self.dep.start("api-server")
        self.dep.wait_api_up()
        for pipeline in pipelines:
            self.emu.feldera.release(pipeline)
        for run_id, pipeline in zip(run_ids, pipelines, strict=True):
            state = self.dep.wait_run("e2e_slow_stop", run_id, RUN_TIMEOUT)
            require(state == "success", f"{run_id} ended {state}\n{self.where('e2e_slow_stop', run_id)}")
            require(self.emu.feldera.effective(pipeline) == 1, f"{pipeline}: not exactly one effective stop")
            require(self.emu.feldera.status_of(pipeline) == "Stopped", f"{pipeline} is not stopped")

    def restarts(self) -> None:
        self.emu.set_stop_seconds(2.0)
        self.unpause("e2e_slow_stop")
        scenarios = {
            "restart: triggerer SIGKILLed mid-wait": self.restart_triggerer,
            "restart: worker killed between stop and deferral": self.restart_worker,
            "restart: api-server restarted while triggers poll": self.restart_api_server,
        }
        for name, scenario in scenarios.items():
            try:
                self.suite.check(name, scenario)
            finally:  # a failed scenario must not leave a pipeline or an answer held
                for pipeline in list(self.emu.feldera.hold_stopping) + list(self.emu.feldera.hold_answer):
                    self.emu.feldera.release(pipeline)

    # ---- 4. secrets ------------------------------------------------------------------------
    def hostile_secrets(self) -> None:
        """A key with its newline is refused when the connection is read (the task fails, its log names
        the password field); a service that echoes the key fails a task in place and a deferred one
        (the error from the triggerer) with its error, and their logs hold no form of the key."""
        started = time.monotonic()
        echo = self.emu.feldera_echo
        in_place, deferred = "echo_in_place", "echo_deferred"
        for pipeline in (in_place, deferred):
            echo.add_pipeline(pipeline)
        echo.hold_stopping.add(deferred)  # the worker's wait before deferring sees it Stopping
        # Every request for in_place's pipeline echoes; deferred's status reads echo once it is deferred.
        echo.inject("echo", status=400, path=f"/v0/pipelines/{in_place}*", times=10**9)
        runs = {}
        for dag_id in ("e2e_newline_key", "e2e_echo_key"):
            self.unpause(dag_id)
            runs[dag_id] = self.trigger(dag_id, {"in_place": in_place, "deferred": deferred})
        echo_run = runs["e2e_echo_key"]
        try:
            ti = self.dep.wait_ti_state(
                "e2e_echo_key", echo_run, "deferred", {"deferred", "failed", "success", "up_for_retry"}, 90
            )
            require(
                ti["state"] == "deferred",
                f"the deferred task ended {ti['state']} before deferring\n"
                + self.where("e2e_echo_key", echo_run),
            )
            get_echo = echo.inject("echo", status=400, method="GET", times=10**9)
            states = {
                dag_id: self.dep.wait_run(dag_id, run_id, RUN_TIMEOUT) for dag_id, run_id in runs.items()
            }
        finally:
            echo.release(deferred)
        echoed = 10**9 - get_echo.times
        logs: dict[str, str] = {}
        for dag_id, run_id in runs.items():
            require(
                states[dag_id] == "failed", f"{dag_id} ended {states[dag_id]}\n{self.where(dag_id, run_id)}"
            )
            for ti in self.dep.task_instances(dag_id, run_id):
                task = f"{dag_id}.{ti['task_id']}"
                require(
                    ti["state"] == "failed" and ti["try_number"] == 1,
                    f"{task} is {ti['state']} (try {ti['try_number']}), expected failed (try 1)\n"
                    + self.where(dag_id, run_id),
                )
                logs[task] = self.dep.task_log(dag_id, run_id, ti["task_id"], 1)
        require(len(logs) == 3, f"expected 3 tasks, found {sorted(logs)}")
        newline_log = logs["e2e_newline_key.stop_pipeline"]
        require(
            "feldera_newline" in newline_log
            and re.search(
                r"the password field has (a control character|surrounding white space)", newline_log
            ),
            "e2e_newline_key's log does not say that feldera_newline's password field has a control "
            f"character or white space:\n{newline_log[-3000:]}",
        )
        sent = [r for r in self.emu.feldera.requests if self.emu.newline_key.strip() in str(r.headers)]
        require(not sent, f"the key with its newline went on the wire: {[r.path for r in sent]}")
        for task in ("in_place", "deferred"):
            log = logs[f"e2e_echo_key.{task}"]
            # The service's error, shown as far as the credentials it quotes (hidden: "***").
            require(
                re.search(r"HTTP 400 Echo: invalid credentials '[^']*\*\*\*", log),
                f"e2e_echo_key.{task}'s log does not show the service's HTTP 400 quoting the credentials "
                f"(masked):\n{log[-3000:]}",
            )
        self.deferred_for_real("e2e_echo_key", echo_run, "deferred")
        trigger_log = "\n".join(
            p.read_text(errors="replace")
            for p in self.dep.trigger_log_files("e2e_echo_key", echo_run, "deferred")
        )
        require(
            "HTTP 400" in trigger_log, f"the trigger's log does not show the HTTP 400:\n{trigger_log[-3000:]}"
        )
        key = f"Bearer {echo.settings.api_key}"
        for pipeline, method in ((in_place, None), (deferred, "GET")):
            asked = [
                r
                for r in echo.requests
                if r.path.startswith(f"/v0/pipelines/{pipeline}") and (method is None or r.method == method)
            ]
            require(
                any(r.headers.get("authorization") == key for r in asked),
                f"no request for {pipeline} carried the echo key: the echo never had it to quote",
            )
        require(echoed >= 1, "the triggerer's status reads were never answered with the echo")
        forms = {
            n: v for n, v in self.emu.secrets().items() if n.startswith(("feldera_newline", "feldera_echo"))
        }
        leaks = [f"{task}: {name}" for task, log in logs.items() for name, v in forms.items() if v in log]
        require(not leaks, "a form of the hostile keys in the task logs:\n" + "\n".join(leaks))
        summary = (
            f"hostile keys: feldera_newline refused when read (password field named, 0 requests sent); "
            f"feldera_echo: in_place and deferred failed with HTTP 400 ({echoed} echoed status read(s) in "
            f"the triggerer), 0 of {len(forms)} key forms in their logs, {time.monotonic() - started:.0f}s"
        )
        print(f"  {summary}")
        # The logs as the UI shows them, for a reader (checked above: no form of the keys in them).
        shown = [f"==== {task} (REST log, try 1)\n{log}" for task, log in logs.items()]
        (OUT / "hostile_keys.txt").write_text(summary + "\n\n" + "\n\n".join(shown) + "\n")

    def secrets(self) -> None:
        """No secret in any file the deployment wrote, nor in the REST answers for the runs."""
        forms = self.emu.secrets()
        require(len(forms) >= 5, f"too few secrets to look for: {sorted(forms)}")

        def hits(text: str) -> list[str]:
            return [name for name, secret in forms.items() if secret in text]

        probe = "x " + next(iter(forms.values())) + " y"
        require(hits(probe), "the scanner does not find a secret in a text that holds one")
        # What the provider printed before it refused such keys and redacted every form: an HTTP
        # library's refusal of the header quoting it with repr, and the echoed header in a JSON log line.
        newline, echoed = self.emu.newline_key, self.emu.feldera_echo.settings.api_key
        refused = f"Invalid header value: {f'Bearer {newline}'!r}"
        for text, wanted in (
            (refused, "feldera_newline repr"),
            (json.dumps({"event": "Task failed", "exc_value": refused}), "feldera_newline repr in JSON"),
            (
                json.dumps({"event": f"HTTP 400: headers={{'authorization': 'Bearer {echoed}'}}"}),
                "feldera_echo Bearer",
            ),
        ):
            found = hits(text)
            require(
                any(name.startswith(wanted) for name in found),
                f"the scanner does not find the {wanted!r} form where the provider used to print it "
                f"(found {found})",
            )
        used = [
            s
            for s in ("feldera", "dataforseo", "rainforest", "amperity", "datasift")
            if not self.emu.all()[s].handled
        ]
        require(not used, f"services the runs never reached (their secrets were never used): {used}")
        leaks: list[str] = []
        scanned = 0
        for folder in (self.home / "logs", self.dep.out_dir, self.dep.cli_dir):
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    scanned += 1
                    if found := hits(path.read_text(errors="replace")):
                        leaks.append(f"{path.relative_to(self.home)}: {found}")
        answers = 0
        for dag_id, run_id in self.runs:
            for ti in self.dep.task_instances(dag_id, run_id):
                task_id = ti["task_id"]
                detail = self.dep.task_instance(dag_id, run_id, task_id)
                blobs = {
                    "task instance (rendered fields, trigger)": json.dumps(detail),
                    "xcom": json.dumps(self.dep.xcom_entries(dag_id, run_id, task_id), default=str),
                }
                for attempt in range(1, ti["try_number"] + 1):  # 0: never ran, no log
                    blobs[f"log try {attempt}"] = self.dep.task_log(dag_id, run_id, task_id, attempt)
                for what, blob in blobs.items():
                    answers += 1
                    if found := hits(blob):
                        leaks.append(f"REST {dag_id}/{run_id}/{task_id} {what}: {found}")
        print(f"  secret sweep: {len(forms)} secret forms, {scanned} files, {answers} REST answers")
        require(not leaks, "secrets leaked:\n" + "\n".join(leaks[:20]))

    # ---- 5. connection forms ---------------------------------------------------------------
    def forms(self) -> None:
        if not (ROOT / "e2e" / "forms.py").exists():
            print("  (e2e/forms.py not present: connection-form check skipped)")
            return
        forms = importlib.import_module("e2e.forms")
        out_dir = OUT / "forms"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        headers = {"Authorization": f"Bearer {self.dep.token()}"}
        started = time.monotonic()
        problems = forms.check_connection_forms(self.dep.base_url, out_dir, headers)
        shots = len(list(out_dir.glob("*.png")))
        print(f"  connection forms: {time.monotonic() - started:.0f}s, {shots} screenshot(s) in {out_dir}")
        self.suite.record("connection forms (hook_meta + headless Chromium)", list(problems))

    # ---- the whole suite -------------------------------------------------------------------
    def run(self) -> int:
        phases = self.args.only.split(",") if self.args.only else list(PHASES)
        unknown = set(phases) - set(PHASES)
        if unknown:
            raise SystemExit(f"unknown phase(s) {sorted(unknown)}; choose from {PHASES}")
        try:
            self.checks(phases)
        except KeyboardInterrupt:
            self.suite.failed.append(("interrupted", "Ctrl-C or SIGTERM"))
            print("e2e: interrupted; stopping everything")
        finally:
            self.stop(ok=not self.suite.failed)
        return self.summary()

    def checks(self, phases: list[str]) -> None:
        if not self.suite.check("deployment up (4 components, DB connections, DAGs parsed)", self.start):
            return
        if "forms" in phases:
            self.forms()
        if "examples" in phases:
            self.examples()
        if "fast_stop" in phases:
            self.suite.check(f"fast-stop DAG x{self.args.runs}: no run lost", self.fast_stop)
        if "restarts" in phases:
            self.restarts()
        if "examples" in phases:
            # Last of the runs: on 3.3.2 a notifier's dict result crashed the triggerer here.
            self.suite.check(
                "example feldera_deadline_alert (missed deadline, notifier in the triggerer)",
                self.deadline_alert,
            )
        if "secrets" in phases:
            self.suite.check(
                "secrets: a key with its newline refused, an echoed key in no log (in place, deferred)",
                self.hostile_secrets,
            )
            self.suite.check("secrets: in no log, output, rendered field, XCom, REST log", self.secrets)
        self.suite.check("components still alive", self.dep.check_alive)

    def summary(self) -> int:
        for name, _ in self.suite.failed:
            print(f"failed: {name}")
        print(f"e2e: {len(self.suite.passed)} passed, {len(self.suite.failed)} failed", flush=True)
        return 1 if self.suite.failed else 0


def interrupted(signum: int, frame: object) -> None:
    """SIGTERM (e.g. CI cancelling the job) cleans up like Ctrl-C."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of the fast-stop DAG (default 20)")
    parser.add_argument("--only", default="", help=f"comma-separated phases of {', '.join(PHASES)}")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="an Airflow setting for every component, e.g. stop_provider.wait_before_defer=0 (repeatable)",
    )
    parser.add_argument("--code-root", default=str(ROOT), help="tree the provider and example DAGs come from")
    args = parser.parse_args(argv)
    code_root = Path(args.code_root).resolve()
    # The driver's emulators come from the same tree as the code under test.
    sys.path.insert(0, str(code_root))
    import airflow_provider_stop

    print(f"Emulators from {Path(airflow_provider_stop.__file__).parent}")
    OUT.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, interrupted)
    started = time.monotonic()
    try:
        suite = E2E(args)
    except KeyboardInterrupt:
        print("e2e: 0 passed, 1 failed")
        return 130
    code = suite.run()
    print(f"(e2e took {time.monotonic() - started:.0f}s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
