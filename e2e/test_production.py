"""``make e2e-production`` (run by CI after ``make test``): the shared rate limit in a production-shaped
deployment (``e2e/production.py``: PostgreSQL, CeleryExecutor with Redis, two triggerers).

Forty deferrable stop tasks of one Amperity tenant run at once, each in its own worker process, against
the emulator enforcing the documented 10 requests a second (issue 24). First with
``[stop_provider] rate_limit_storage`` on the deployment's Redis: no stop fails, every run is stopped
exactly once, and 429s are at most a few percent. Then the same without the storage (worker and
triggerers restarted): each process paces itself alone, and the figures show what the tenant answers.
The triggers of the provider's tasks all run in the one triggerer that serves its queue (the
trigger-queue recipe), so the tenant's run list is read at most twice a poll, whatever the number of
triggerers.

    python -m pytest e2e/test_production.py -p no:randomly -v
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import CONSOLE
from e2e.deployment import E2EError
from e2e.driver import OUT, airflow_settings, code_root
from e2e.production import QUEUE, FleetEmulator, ProductionDeployment

HERE = Path(__file__).resolve().parent
DAG_ID = "stop_fleet"
TASKS = 40
#: The DAG's poll_interval: the triggerer's reads are counted per poll.
POLL = 2.0
#: How long a run takes to cancel after its stop: well past ``wait_before_defer`` (5 s), so every task
#: defers and the triggerer polls the tenant for a while.
CANCEL_SECONDS = 30.0
RUN_TIMEOUT = 600.0


@dataclass
class Round:
    """One run of the fleet DAG and what the tenant saw of it."""

    name: str
    seconds: float = 0.0
    states: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    rate_limited: int = 0
    peak_per_second: int = 0
    accepted_stops: dict[str, int] = field(default_factory=dict)
    canceled: int = 0
    list_reads: int = 0
    list_seconds: float = 0.0
    trigger_jobs: set[int] = field(default_factory=set)

    @property
    def failed(self) -> list[str]:
        return sorted(t for t, s in self.states.items() if s != "success")

    def figure(self) -> str:
        share = self.rate_limited / self.requests if self.requests else 0.0
        return (
            f"production ({self.name}): {TASKS} stop tasks in {self.seconds:.0f}s, "
            f"{len(self.failed)} failed; {self.requests} requests to the tenant, {self.rate_limited} "
            f"answered 429 ({share:.1%}), at most {self.peak_per_second} in one second; "
            f"{self.canceled}/{TASKS} runs canceled, stops accepted per run: "
            f"{sorted(set(self.accepted_stops.values()))}"
        )


class Fleet:
    """The deployment, the tenant, and the rounds run so far."""

    def __init__(self, dep: ProductionDeployment, emu: FleetEmulator, say: Any) -> None:
        self.dep = dep
        self.emu = emu
        self.say = say
        self.rounds: dict[str, Round] = {}

    def run(self, name: str) -> Round:
        """Stop the tenant's runs ``<name>-00`` to ``<name>-39`` with the fleet DAG; what happened."""
        if name in self.rounds:
            return self.rounds[name]
        ids = [f"{name}-{n:02d}" for n in range(TASKS)]
        for run_id in ids:
            self.emu.add_run(run_id)
        before, limited = len(self.emu.requests), self.emu.rate_limited
        started = time.monotonic()
        dag_run = self.dep.trigger(DAG_ID, {"prefix": name})
        self.dep.wait_run(DAG_ID, dag_run, RUN_TIMEOUT)
        result = Round(name, seconds=time.monotonic() - started)
        result.states = {ti["task_id"]: ti["state"] for ti in self.dep.task_instances(DAG_ID, dag_run)}
        seen = self.emu.requests[before:]
        result.requests = len(seen)
        result.rate_limited = self.emu.rate_limited - limited
        times = sorted(r.at for r in seen)
        result.peak_per_second = max(
            (sum(1 for b in times[i:] if b < a + 1.0) for i, a in enumerate(times)), default=0
        )
        result.accepted_stops = {r: self.emu.accepted_stops[r] for r in ids}
        result.canceled = sum(1 for r in ids if self.emu.target_state(r) == "canceled")
        lists = [r.at for r in seen if r.method == "GET" and r.path == "/api/workflow/runs"]
        result.list_reads = len(lists)
        result.list_seconds = (lists[-1] - lists[0]) if len(lists) > 1 else 0.0
        result.trigger_jobs = self.dep.trigger_jobs_of_run(DAG_ID, dag_run)

        self.rounds[name] = result
        return result


@pytest.fixture(scope="module")
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """The production-shaped deployment with the fleet DAG and one tenant's emulator, once."""
    config = request.config
    console = config.stash[CONSOLE]
    root = code_root(config)
    home = Path(tempfile.mkdtemp(prefix="airflow-production-"))
    emu = FleetEmulator(cancel_seconds=CANCEL_SECONDS)
    dep = ProductionDeployment(
        home,
        root,
        sorted((HERE / "production_dags").glob("*.py")),
        airflow_settings(config.getoption("config")),
    )
    ok = False
    try:
        started = time.monotonic()
        emu.start()
        dep.prepare()
        console.say(f"  PostgreSQL and Redis up, metadata DB migrated ({time.monotonic() - started:.0f}s)")
        where = dep.imported_provider()
        if not where.startswith(str(root) + "/"):
            raise E2EError(f"the components import airflow_provider_stop from {where}, not {root}")
        conn = emu.connection("token")
        dep.add_connection("amperity_fleet", conn)
        dep.start_all()
        dep.wait_dags_parsed([DAG_ID])
        dep.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        console.say(f"Production-shaped deployment up in {time.monotonic() - started:.0f}s (home {home})")
        yield Fleet(dep, emu, console.say)
        dep.check_alive()
        ok = not request.session.testsfailed
    finally:
        dep.stop_all()
        emu.stop()
        if not ok:
            keep = OUT / "production-failed"
            shutil.rmtree(keep, ignore_errors=True)
            for part in ("out", "logs", "cli"):
                if (home / part).exists():
                    shutil.copytree(home / part, keep / part)
            console.figure(f"Logs of the failed production run: {keep}")
        shutil.rmtree(home, ignore_errors=True)


def test_forty_stops_of_one_tenant_share_its_limit_through_redis(
    fleet: Fleet, request: pytest.FixtureRequest
) -> None:
    shared = fleet.run("shared")
    request.config.stash[CONSOLE].figure(shared.figure())
    assert not shared.failed, f"failed stop tasks: {shared.failed}"
    assert shared.canceled == TASKS
    assert set(shared.accepted_stops.values()) == {1}, "a run was stopped more than once, or never"
    # a few at most (0 of 133 and 3 of 124 measured; without the storage 40% to 50%): a burst the busy
    # two-core host delays unevenly can still meet the next window at the tenant
    assert shared.rate_limited <= max(3, 0.1 * shared.requests), shared.figure()


def test_the_trigger_queue_recipe_keeps_the_waits_on_the_triggerer_of_the_providers_queue(
    fleet: Fleet, request: pytest.FixtureRequest
) -> None:
    shared = fleet.run("shared")
    assert shared.trigger_jobs == {fleet.dep.stop_triggerer_job}, (
        f"the {QUEUE} triggers ran on triggerer jobs {shared.trigger_jobs}, "
        f"not only on triggerer-stop's {fleet.dep.stop_triggerer_job}"
    )
    polls = math.ceil(max(shared.list_seconds, 0.001) / POLL)
    request.config.stash[CONSOLE].figure(
        f"production (trigger queue): every trigger on the one triggerer of 2 that serves {QUEUE!r}; "
        f"{shared.list_reads} reads of the run list over {shared.list_seconds:.0f}s ({POLL:g}s polls)"
    )
    # one status board on one triggerer: at most two list reads a poll interval (and one at its edge)
    assert shared.list_reads <= 2 * polls + 1


def test_without_the_storage_each_process_paces_alone(fleet: Fleet, request: pytest.FixtureRequest) -> None:
    """For comparison (issue 24's numbers): what the tenant answers when every process keeps 8 a second."""
    fleet.run("shared")  # the figures above come first, from the same deployment
    fleet.dep.restart_for_limit(shared=False)
    alone = fleet.run("alone")
    shared = fleet.rounds["shared"]
    console = request.config.stash[CONSOLE]
    console.figure(alone.figure())
    console.figure(
        f"production: 429s {shared.rate_limited} of {shared.requests} with rate_limit_storage, "
        f"{alone.rate_limited} of {alone.requests} without"
    )
    # Whatever the tenant answered, no run is stopped twice (a stop is never resent once accepted).
    assert max(alone.accepted_stops.values()) <= 1
