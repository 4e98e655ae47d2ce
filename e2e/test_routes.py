"""Phase ``routes``: which stop route fires on which event, measured on the real deployment.

The routes: the notifier as ``on_failure_callback``, a teardown task, a DeadlineAlert whose callback is
the notifier, and the on-kill helper (the operator's ``on_kill`` in place, its trigger's ``on_kill``
deferred). The events: a user marks the task failed (REST API), clears it (REST API), the task's process
is SIGKILLed (its pid from the REST API), the task times out, the run times out. Each event has its own
run (``e2e/dags/e2e_routes.py``), all at once; each route stops its own pipeline, so a route fired when
its pipeline got a stop request. The run that is cleared has its DeadlineAlert after its logical date (set
to now), not after queued_at: Airflow 3.3.2 answers 500 to a clear of such a run (apache/airflow#70368),
which the test records too. The table goes to the terminal and ``.e2e/routes.md``; the cells Airflow's
source decides are asserted (``EXPECTED``), so a change in the provider, or in Airflow, shows.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from e2e.dags.e2e_routes import DAGRUN_TIMEOUT, DEADLINE, DEFERRED_EVENTS, EVENTS, TASK_TIMEOUT
from e2e.deployment import E2EError, q, wait_for
from e2e.driver import OUT, RUN_TIMEOUT, Driver

#: The table's rows: (route, label); ``on_kill_deferred`` is the on-kill pipeline of the deferred runs.
ROUTES = {
    "callback": "notifier as `on_failure_callback`",
    "teardown": "teardown task",
    "deadline": "DeadlineAlert (notifier as callback)",
    "on_kill": "on-kill helper, task in place (`on_kill`)",
    "on_kill_deferred": "on-kill helper, task deferred (trigger `on_kill`)",
}
COLUMNS = {
    "mark_failed": "marked failed",
    "clear": "cleared",
    "sigkill": "SIGKILL",
    "task_timeout": f"task timeout ({TASK_TIMEOUT}s)",
    "dagrun_timeout": f"DAG-run timeout ({DAGRUN_TIMEOUT}s)",
}
#: What Airflow 3.3.2's source decides (True: the route stops the target because of the event; "deadline":
#: only once the DeadlineAlert's deadline passes; None: not asserted). Why, in docs/routes.md.
EXPECTED: dict[str, dict[str, bool | str | None]] = {
    "callback": {
        "mark_failed": False,
        "clear": None,
        "sigkill": False,
        "task_timeout": True,
        "dagrun_timeout": False,
    },
    "teardown": {
        "mark_failed": True,
        "clear": False,
        "sigkill": True,
        "task_timeout": True,
        "dagrun_timeout": False,
    },
    "deadline": dict.fromkeys(EVENTS, "deadline"),
    "on_kill": {
        "mark_failed": True,
        "clear": True,
        "sigkill": False,
        "task_timeout": True,
        "dagrun_timeout": True,
    },
    # Cleared while deferred: stopped when the trigger's on_kill reads the task's state before the re-run
    # defers again; once it has, the re-run holds the pipeline and it is left to it (a race of Airflow's).
    "on_kill_deferred": {"mark_failed": True, "clear": None, "task_timeout": False, "dagrun_timeout": True},
}
#: How long each emulated stop takes here.
STOP_SECONDS = 1.0


@dataclass
class Scenario:
    event: str
    deferred: bool
    run_id: str = ""
    #: Seconds on the driver's clock: the run triggered, the work ready (pipelines running), the event.
    queued: float = 0.0
    ready: float | None = None
    event_at: float | None = None
    note: str = ""
    error: str = ""
    #: What the first try's trigger said on kill (deferred runs): the helper's "On kill" lines.
    kill_said: str = ""
    #: pipeline -> when its first stop request was seen
    stopped: dict[str, float] = field(default_factory=dict)

    @property
    def dag_id(self) -> str:
        return f"e2e_routes_{self.event}" + ("_deferred" if self.deferred else "")

    def pipelines(self) -> dict[str, str]:
        if self.deferred:
            return {"on_kill_deferred": f"{self.dag_id}_on_kill"}
        return {r: f"{self.dag_id}_{r}" for r in ("callback", "teardown", "deadline", "on_kill")}


def stop_count(driver: Driver, pipeline: str) -> int:
    return driver.emu.feldera.count("POST", f"*/{pipeline}/stop")


def work(driver: Driver, s: Scenario) -> dict[str, Any]:
    return driver.dep.task_instance(s.dag_id, s.run_id, "work")


def wait_ready(driver: Driver, s: Scenario) -> None:
    """The work task holds (running, or deferred with its trigger started) and its pipelines run."""
    states = {"deferred"} if s.deferred else {"running"}
    driver.dep.wait_ti_state(s.dag_id, s.run_id, "work", states, RUN_TIMEOUT)
    feldera = driver.emu.feldera
    driver.wait_state(
        f"{s.dag_id}'s pipelines to run",
        lambda: all(feldera.status_of(p) == "Running" for p in s.pipelines().values()),
        RUN_TIMEOUT,
    )
    if s.deferred:
        driver.wait_state(
            f"{s.dag_id}'s trigger to start",
            lambda: any(
                "starting" in f.read_text(errors="replace")
                for f in driver.dep.trigger_log_files(s.dag_id, s.run_id, "work")
            ),
            120,
        )
    s.ready = time.monotonic()


def act(driver: Driver, s: Scenario) -> None:
    """Wait until the scenario's work holds, make its event happen (or see it happen), then wait until
    the run settles: finished, or (cleared) its work running again."""
    try:
        wait_ready(driver, s)
        path = f"/dags/{s.dag_id}/dagRuns/{q(s.run_id)}/taskInstances/work"
        if s.event == "mark_failed":
            driver.dep.api("PATCH", path, json={"new_state": "failed"})
        elif s.event == "clear":
            body = {"dry_run": False, "task_ids": ["work"], "dag_run_id": s.run_id, "only_failed": False}
            driver.dep.api("POST", f"/dags/{s.dag_id}/clearTaskInstances", json=body)
        elif s.event == "sigkill":
            pid = work(driver, s)["pid"]
            if not pid:
                raise E2EError(f"{s.dag_id}: the REST API shows no pid for the running task")
            os.kill(int(pid), signal.SIGKILL)
        if s.event in ("mark_failed", "clear", "sigkill"):
            s.event_at = time.monotonic()
        else:  # the timeouts happen by themselves: seen when the task stops holding
            holding = "deferred" if s.deferred else "running"

            def timed_out() -> bool:
                if s.event == "dagrun_timeout":
                    return driver.dep.run_state(s.dag_id, s.run_id) == "failed"
                return str(work(driver, s)["state"]) != holding

            driver.wait_state(f"{s.dag_id} to time out", timed_out, RUN_TIMEOUT)
            s.event_at = time.monotonic() - (time.time() - timed_out_at(driver, s))
        if s.event == "clear":
            driver.wait_state(
                f"{s.dag_id}'s work to run again",
                lambda: (
                    work(driver, s)["try_number"] >= 2 and work(driver, s)["state"] in ("running", "deferred")
                ),
                RUN_TIMEOUT,
            )
        else:
            driver.dep.wait_run(s.dag_id, s.run_id, RUN_TIMEOUT)
        if s.event == "sigkill":
            s.note = clear_with_queued_at_deadline(driver, s)
    except Exception as exc:
        s.error = f"{type(exc).__name__}: {exc}\n{driver.where(s.dag_id, s.run_id)}"


def timed_out_at(driver: Driver, s: Scenario) -> float:
    """When the timeout was due (epoch seconds): the task's start + ``execution_timeout``, the run's
    start + ``dagrun_timeout``; a deferral's timeout: when it was seen (its task no longer deferred)."""
    if s.event == "dagrun_timeout":
        run = driver.dep.api("GET", f"/dags/{s.dag_id}/dagRuns/{q(s.run_id)}")
        return datetime.fromisoformat(run["start_date"]).timestamp() + DAGRUN_TIMEOUT
    if not s.deferred:
        return datetime.fromisoformat(work(driver, s)["start_date"]).timestamp() + TASK_TIMEOUT
    return time.time()


def deadline_handled(driver: Driver, s: Scenario) -> bool:
    """The run's DeadlineAlert is done with: its callback finished, or the deadline was dropped (a run
    that succeeds before it)."""
    with sqlite3.connect(driver.home / "airflow.db", timeout=30) as con:
        rows = con.execute(
            "SELECT c.state FROM deadline d JOIN dag_run r ON d.dagrun_id = r.id "
            "LEFT JOIN callback c ON d.callback_id = c.id WHERE r.dag_id = ? AND r.run_id = ?",
            (s.dag_id, s.run_id),
        ).fetchall()
    return all(state in ("success", "failed") for (state,) in rows)


def cell(s: Scenario, route: str) -> tuple[bool | str, str]:
    """(what happened, its text): True (stopped because of the event), "deadline" (stopped at the
    deadline), False (not stopped)."""
    if s.error or s.event_at is None:
        return "error", "not measured (the scenario failed)"
    pipeline = s.pipelines()[route]
    at = s.stopped.get(pipeline)
    if at is None:
        if route != "on_kill_deferred":
            return False, "no"
        if "still deferred" in s.kill_said:
            return False, "no: the re-run had deferred again (it holds the pipeline)"
        return False, "no: on_kill not called" if not s.kill_said else "no"
    after = f"{max(0.0, at - s.event_at):.0f}s after"
    if route == "deadline" and at >= s.queued + DEADLINE:
        return "deadline", f"at the deadline ({after})"
    if at < s.event_at - 1:
        return "before", f"before the event ({s.event_at - at:.0f}s)"
    return True, f"yes ({after})"


def table(scenarios: list[Scenario]) -> list[str]:
    by_key = {(s.event, s.deferred): s for s in scenarios}
    lines = [
        "| route \\ event | " + " | ".join(COLUMNS.values()) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for route, label in ROUTES.items():
        deferred = route == "on_kill_deferred"
        cells = []
        for event in COLUMNS:
            s = by_key.get((event, deferred))
            cells.append(cell(s, route)[1] if s else "n/a: no task process")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def test_which_route_fires_on_which_event(driver: Driver) -> None:
    """routes: which stop route fires on which event (the table of docs/routes.md)"""
    started = time.monotonic()
    driver.emu.set_stop_seconds(STOP_SECONDS)
    scenarios = [Scenario(e, False) for e in EVENTS] + [Scenario(e, True) for e in DEFERRED_EVENTS]
    feldera = driver.emu.feldera
    for s in scenarios:
        for pipeline in s.pipelines().values():
            feldera.add_pipeline(pipeline, running=False)
        driver.unpause(s.dag_id)
    for s in scenarios:
        s.queued = time.monotonic()
        if s.event == "clear" and not s.deferred:  # its DeadlineAlert counts from the logical date
            now = datetime.now(timezone.utc).isoformat()
            body = {"logical_date": now, "conf": {}}
            s.run_id = str(driver.dep.api("POST", f"/dags/{s.dag_id}/dagRuns", json=body)["dag_run_id"])
            driver.runs.append((s.dag_id, s.run_id))
        else:
            s.run_id = driver.trigger(s.dag_id)
    pipelines = {p: s for s in scenarios for p in s.pipelines().values()}

    def watch() -> None:
        for pipeline, s in pipelines.items():
            if pipeline not in s.stopped and stop_count(driver, pipeline):
                s.stopped[pipeline] = time.monotonic()

    with ThreadPoolExecutor(max_workers=len(scenarios)) as pool:
        acting = [pool.submit(act, driver, s) for s in scenarios]
        while not all(f.done() for f in acting):
            watch()
            time.sleep(0.2)
    in_place = [s for s in scenarios if not s.deferred and not s.error]

    def settled() -> bool:
        watch()
        return (
            all(deadline_handled(driver, s) for s in in_place)
            and time.monotonic() > max((s.queued for s in in_place), default=0.0) + DEADLINE
        )

    wait_for("every run's DeadlineAlert to be handled", settled, DEADLINE + RUN_TIMEOUT, interval=0.2)
    elapsed = time.monotonic() - started
    for s in scenarios:
        if s.deferred:
            s.kill_said = kill_said(driver, s)
    probed = [s.note for s in scenarios if s.event == "sigkill" and s.note]
    for s in scenarios:
        if s.event == "clear" and not s.error:
            # Cleared: the work runs again and holds; end it (a failed run of its own, measured above).
            driver.dep.api("PATCH", f"/dags/{s.dag_id}/dagRuns/{q(s.run_id)}", json={"state": "failed"})
            driver.dep.wait_run(s.dag_id, s.run_id, RUN_TIMEOUT)
    lines = table(scenarios)
    notes = [
        "Clearing a task of a run whose DeadlineAlert (after queued_at) has not passed: "
        + (probed[0] if probed else "not measured")
        + ".",
        f"Measured on Airflow {airflow_version()} with "
        "`python -m pytest e2e/test_routes.py -p no:randomly -v` "
        f"({len(scenarios)} runs at once, {elapsed:.0f}s).",
    ]
    for line in [*lines, *notes]:
        driver.figure(line)
    (OUT / "routes.md").write_text("\n".join([*lines, "", *notes, ""]))
    errors = [s.error for s in scenarios if s.error]
    assert not errors, "\n".join(errors)

    wrong = []
    for s in scenarios:
        for route in s.pipelines():
            expected = EXPECTED[route].get(s.event)
            got, text = cell(s, route)
            if expected is not None and got != expected:
                wrong.append(f"{ROUTES[route]} on {COLUMNS[s.event]}: {text}, expected {expected}")
    assert not wrong, "\n".join(wrong) + "\n" + "\n".join(lines)


def clear_with_queued_at_deadline(driver: Driver, s: Scenario) -> str:
    """Clear the finished teardown of a run whose DeadlineAlert (after queued_at) has not passed yet:
    what Airflow answers (3.3.2: HTTP 500, apache/airflow#70368). A clear that works only runs the
    teardown again, which stops a stopped pipeline."""
    body = {"dry_run": False, "task_ids": ["teardown"], "dag_run_id": s.run_id, "only_failed": False}
    response = driver.dep.client.post(f"/api/v2/dags/{s.dag_id}/clearTaskInstances", json=body)
    if response.status_code < 400:
        driver.dep.wait_run(s.dag_id, s.run_id, RUN_TIMEOUT)
    return f"HTTP {response.status_code}" + (" (apache/airflow#70368)" if response.status_code == 500 else "")


def kill_said(driver: Driver, s: Scenario) -> str:
    """The helper's "On kill" lines in the first try's trigger log (a deferred run)."""
    lines = []
    for path in driver.dep.trigger_log_files(s.dag_id, s.run_id, "work"):
        if path.name.startswith("attempt=1."):
            lines += [x for x in path.read_text(errors="replace").splitlines() if "On kill" in x]
    return "\n".join(lines)


def airflow_version() -> str:
    from airflow import __version__

    return str(__version__)
