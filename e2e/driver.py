"""The driver of ``make e2e``: the emulators, the deployment and what the phases' tests share.

``e2e/conftest.py`` makes one ``Driver`` per pytest session (the ``driver`` fixture), starts it and stops
it; the tests (``e2e/test_*.py``, one module per phase) trigger runs through it, and every run it starts
is recorded in ``Driver.runs`` for the secret sweep.
"""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from e2e.deployment import Deployment, E2EError, wait_for

if TYPE_CHECKING:
    from types import ModuleType

    from e2e.emulators import Emulators

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".e2e"
#: Airflow's answer when its deferral race loses a run (issue 13).
RACE = re.compile(r"finished with state success, but the task instance's state attribute is \w+")
RUN_TIMEOUT = 240.0


def airflow_settings(settings: Iterable[str]) -> dict[str, str]:
    """``--config section.option=value`` settings as the components' ``AIRFLOW__SECTION__OPTION``."""
    env = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        section, dot, option = key.partition(".")
        if not (sep and dot):
            raise ValueError(f"--config wants section.option=value, got {setting!r}")
        env[f"AIRFLOW__{section.upper()}__{option.upper()}"] = value
    return env


def code_root(config: pytest.Config) -> Path:
    """The tree under test (``--code-root``)."""
    return Path(config.getoption("code_root")).resolve()


class Driver:
    """The emulators (in this process), the deployment, and every run the tests started."""

    def __init__(
        self,
        code_root: Path,
        extra_env: dict[str, str],
        say: Callable[[str], None],
        figure: Callable[[str], None],
    ) -> None:
        from e2e.emulators import Emulators, load_demo

        self.code_root = code_root
        #: Progress lines, printed as they come; ``figure``: a phase's figures, repeated at the end.
        self.say, self.figure = say, figure
        self.demo: ModuleType = load_demo(code_root)
        self.emu: Emulators = Emulators.start()
        dag_files = sorted((code_root / "example_dags").glob("*.py"))
        dag_files += sorted((ROOT / "e2e" / "dags").glob("*.py"))
        #: One name a DAG file (most define the DAG of that name; e2e/dags/e2e_routes.py defines several).
        self.dag_files = [p.stem for p in dag_files]
        self.home = Path(tempfile.mkdtemp(prefix="airflow-e2e-"))
        self.dep = Deployment(self.home, code_root, dag_files, extra_env)
        #: (dag_id, run_id) of every run the tests started, for the secret sweep.
        self.runs: list[tuple[str, str]] = []
        self.deferrable: dict[str, list[str]] = {}

    # ---- the deployment --------------------------------------------------------------------
    def start(self) -> None:
        """The check "deployment up (4 components, DB connections, DAGs parsed)"."""
        started = time.monotonic()
        self.dep.prepare()
        self.say(f"  metadata DB migrated ({time.monotonic() - started:.0f}s)")
        where = self.dep.imported_provider()
        self.say(f"Airflow home {self.home}; the components import the provider from {where}")
        if not where.startswith(str(self.code_root) + "/"):
            raise E2EError(f"the components import airflow_provider_stop from {where}, not {self.code_root}")
        # One `airflow connections add` per connection, side by side (each is a CLI start-up).
        connections = self.emu.connections()
        with ThreadPoolExecutor(max_workers=len(connections) + 1) as pool:
            added = [pool.submit(self.dep.add_connection, c, v) for c, v in connections.items()]
            deferrable = pool.submit(self.dep.deferrable_tasks)
            for future in added:
                future.result()
            self.deferrable = deferrable.result()
        self.say(f"  connections added ({time.monotonic() - started:.0f}s)")
        self.dep.start_all()
        self.say(f"  api-server answers ({time.monotonic() - started:.0f}s)")
        self.dep.wait_dags_parsed(self.dag_files)
        self.say(f"Deployment up at {self.dep.base_url} in {time.monotonic() - started:.0f}s")

    def stop(self, ok: bool) -> None:
        """Stop everything; a second Ctrl-C or SIGTERM does not cut the clean-up short. The logs of a
        failed run are kept in ``.e2e/failed/``."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for step in (self.dep.stop_all, self.emu.stop):
            try:
                step()
            except Exception as exc:
                self.say(f"clean-up: {type(exc).__name__}: {exc}")
        if not ok:
            keep = OUT / "failed"
            shutil.rmtree(keep, ignore_errors=True)
            for part in ("out", "logs", "cli"):
                if (self.home / part).exists():
                    shutil.copytree(self.home / part, keep / part)
            self.figure(f"Logs of the failed run: {keep}")
        shutil.rmtree(self.home, ignore_errors=True)

    # ---- what the phases share -------------------------------------------------------------
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
        """A manual run, recorded for the secret sweep."""
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
        assert re.search(rf"new_state=deferred .*ti_id={ti['id']}", api_log), (
            f"{dag_id}.{task_id} ({run_id}) never entered the deferred state"
        )
        files = self.dep.trigger_log_files(dag_id, run_id, task_id)
        assert files, f"{dag_id}.{task_id} ({run_id}) has no trigger log: it never ran in the triggerer"
        text = "\n".join(p.read_text(errors="replace") for p in files)
        assert re.search(rf"trigger {re.escape(f'{dag_id}/{run_id}/{task_id}/')}.* starting", text), (
            f"{dag_id}.{task_id} ({run_id}): its trigger log does not show it starting:\n{text[-2000:]}"
        )

    def wait_state(self, what: str, probe: Callable[[], bool], timeout: float) -> None:
        wait_for(what, lambda: probe() or None, timeout, interval=0.2)
