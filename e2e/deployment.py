"""A real Airflow deployment in a temporary ``AIRFLOW_HOME``: api-server, scheduler, dag-processor and
triggerer as separate processes (LocalExecutor, sqlite, loopback only), plus a small REST v2 client.

Airflow 3 runs LocalExecutor on sqlite (``airflow standalone`` does the same), which is what a new user
tries first, and what issue 13 was reported on. Every component runs in its own process group, so that
stopping it (or SIGKILLing it in a restart scenario) also ends the workers and trigger runners it started.
Connections go into the metadata database with ``airflow connections add``; no component ever sees an
``AIRFLOW_CONN_*`` variable.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Task-instance states after which nothing more happens without a retry.
TI_FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}
RUN_FINISHED = {"success", "failed"}


class E2EError(AssertionError):
    """A check of the end-to-end suite failed (the message says which DAG, task and why)."""


def q(value: str) -> str:
    """A path segment (run ids hold ``+`` and ``:``)."""
    return urllib.parse.quote(value, safe="")


def free_port() -> int:
    """A free loopback port (bound then released: the api-server takes it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except (httpx.HTTPError, OSError) as exc:  # a component still starting or restarting
            last_error = exc
        if time.monotonic() > deadline:
            extra = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise E2EError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(f"    | {line}" for line in text[-lines:])


@dataclass
class Component:
    """One Airflow component process (and its process group)."""

    name: str
    log: Path
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Signal the whole group; after ``timeout`` (or at once for SIGKILL) make sure it is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=timeout if sig != signal.SIGKILL else 10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Workers and trigger runners left in the group (a SIGTERMed parent may leave them) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Deployment:
    """Airflow in ``home``, importing the provider from ``code_root`` (PYTHONPATH), DAGs copied in."""

    def __init__(
        self,
        home: Path,
        code_root: Path,
        dag_files: Iterable[Path],
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.code_root = code_root
        self.dag_files = list(dag_files)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.out_dir = home / "out"  # each component's stdout/stderr, one file per start
        self.cli_dir = home / "cli"  # output of our own CLI calls (connections add, db migrate)
        self.components: dict[str, Component] = {}
        self.starts: dict[str, int] = dict.fromkeys(COMPONENTS, 0)
        self.extra_env = dict(extra_env or {})
        self._client: httpx.Client | None = None

    # ---- environment -----------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment of every component: nothing inherited from the caller's AIRFLOW_* settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
        if not hasattr(self, "_secrets"):
            from cryptography.fernet import Fernet

            self._secrets = {
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            }
        env.update(self._secrets)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONPATH": str(self.code_root),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                # Airflow's default: the scheduled nightly_teardown must not run before the suite wants it.
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                # Fast enough for a test, slow enough for two cores.
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                # A SIGKILLed triggerer's triggers are taken over by the next one after this long.
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                # The example DAGs read this (seconds between status checks).
                "STOP_EXAMPLES_POLL_INTERVAL": "1",
            }
        )
        env.update(self.extra_env)
        leaked = [k for k in env if k.startswith("AIRFLOW_CONN_")]
        if leaked:  # the point of the suite: connections come from the metadata DB only
            raise E2EError(f"connection variables in the deployment's environment: {leaked}")
        return env

    # ---- set-up ----------------------------------------------------------------------------
    def cli(self, *args: str, name: str, timeout: float = 300.0, check: bool = True) -> str:
        """Run ``airflow <args>`` with the deployment's environment; output kept in ``cli/<name>.log``."""
        self.cli_dir.mkdir(parents=True, exist_ok=True)
        log = self.cli_dir / f"{name}.log"
        try:
            result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
                [sys.executable, "-m", "airflow", *args],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=self.home,
            )
        except subprocess.TimeoutExpired as exc:
            raise E2EError(f"`airflow {args[0]} {args[1] if len(args) > 1 else ''}` timed out") from exc
        log.write_text(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise E2EError(f"`airflow {' '.join(args[:2])}` exited {result.returncode}:\n{tail(log)}")
        return result.stdout

    def prepare(self) -> None:
        """Fresh home, DAG files copied in, metadata DB migrated."""
        shutil.rmtree(self.home, ignore_errors=True)
        (self.home / "dags").mkdir(parents=True)
        self.out_dir.mkdir()
        for path in self.dag_files:
            shutil.copy2(path, self.home / "dags" / path.name)
        self.cli("db", "migrate", name="db-migrate")

    def imported_provider(self) -> str:
        """Where the components import ``airflow_provider_stop`` from (before/after runs check this)."""
        result = subprocess.run(
            [sys.executable, "-c", "import airflow_provider_stop as m; print(m.__file__)"],
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
            cwd=self.home,
        )
        return result.stdout.strip()

    def deferrable_tasks(self) -> dict[str, list[str]]:
        """Per DAG, the tasks built with ``deferrable=True`` that wait and start on a worker (read from the
        DAG files; a task with ``start_from_trigger`` is deferred by the scheduler, not by a worker)."""
        code = (
            "import json\n"
            "from airflow.dag_processing.dagbag import DagBag\n"
            f"bag = DagBag(dag_folder={str(self.home / 'dags')!r})\n"
            "print(json.dumps({d: [t.task_id for t in dag.tasks if getattr(t, 'deferrable', False)\n"
            "    and getattr(t, 'wait_for_completion', True)\n"
            "    and not getattr(t, 'start_from_trigger', False)]\n"
            "    for d, dag in bag.dags.items()}))\n"
        )
        result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-c", code], env=self.env(), capture_output=True, text=True, cwd=self.home
        )
        if result.returncode != 0:
            raise E2EError(f"cannot read the DAG files: {result.stderr[-2000:]}")
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    def add_connection(self, conn_id: str, conn: dict[str, Any]) -> None:
        """Store a connection in the metadata DB, as a user does (``airflow connections add``)."""
        self.cli("connections", "add", conn_id, "--conn-json", json.dumps(conn), name=f"conn-{conn_id}")

    # ---- processes -------------------------------------------------------------------------
    def start(self, name: str) -> Component:
        if name not in COMPONENTS:
            raise ValueError(f"unknown component {name!r}")
        argv = [sys.executable, "-m", "airflow", name]
        if name == "api-server":
            argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        return self.launch(name, argv, self.env())

    def launch(self, name: str, argv: list[str], env: dict[str, str]) -> Component:
        """Start one component in its own session, its output in ``<name>.<nth start>.log``."""
        self.starts[name] += 1
        log = self.out_dir / f"{name}.{self.starts[name]}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )
        component = Component(name, log, process)
        self.components[name] = component
        return component

    def start_all(self) -> None:
        for name in COMPONENTS:
            self.start(name)
        self.wait_api_up()

    def wait_api_up(self, timeout: float = 120.0) -> None:
        def healthy() -> bool:
            api = self.components["api-server"]
            if not api.alive():
                raise E2EError(f"the api-server exited {api.process.returncode}:\n{tail(api.log)}")
            return self.client.get("/api/v2/monitor/health").status_code == 200

        wait_for("the api-server to answer /api/v2/monitor/health", healthy, timeout)

    def restart(self, name: str, sig: int = signal.SIGTERM) -> Component:
        self.components[name].kill(sig)
        component = self.start(name)
        if name == "api-server":
            self.wait_api_up()
        return component

    def check_alive(self) -> None:
        for component in self.components.values():
            if not component.alive():
                raise E2EError(
                    f"{component.name} exited {component.process.returncode}:\n{tail(component.log)}"
                )

    def stop_all(self) -> None:
        """Stop every component (also on failure or Ctrl-C); what does not stop in time is killed."""
        for component in reversed(list(self.components.values())):
            with contextlib.suppress(Exception):
                component.kill(signal.SIGTERM, timeout=20)
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- REST API v2 -----------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=30.0)
        return self._client

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(3):
            response = self.client.request(method, f"/api/v2{path}", **kwargs)
            # sqlite allows one writer: under load a request can lose the lock (a 500 "Database
            # error"); our own calls are idempotent, so ask again (bounded) rather than fail the check.
            if not (response.status_code == 500 and "Database error" in response.text):
                break
        if response.status_code >= 400:
            raise E2EError(f"{method} /api/v2{path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def token(self) -> str:
        """A JWT for the UI and API (all users are admins; the same as the UI's auto-login)."""
        response = self.client.get("/auth/token")
        response.raise_for_status()
        return str(response.json()["access_token"])

    def wait_dags_parsed(self, dag_files: Iterable[str], timeout: float = 180.0) -> None:
        """Until every DAG file (named without ``.py``) has its DAGs in the database."""
        wanted = set(dag_files)

        def parsed() -> bool:
            errors = self.api("GET", "/importErrors")["import_errors"]
            if errors:
                raise E2EError("DAG import errors:\n" + "\n".join(e["stack_trace"] for e in errors))
            dags = self.api("GET", "/dags", params={"limit": 100})["dags"]
            return wanted <= {Path(d["fileloc"]).stem for d in dags}

        wait_for(f"the dag-processor to parse {sorted(wanted)}", parsed, timeout, interval=1.0)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{q(run_id)}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.api("GET", f"/dags/{dag_id}/dagRuns/{q(run_id)}/taskInstances", params={"limit": 100})
        return list(data["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        mapped = f"/{map_index}" if map_index >= 0 else ""
        return dict(self.api("GET", f"/dags/{dag_id}/dagRuns/{q(run_id)}/taskInstances/{task_id}{mapped}"))

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The task's log as the UI shows it (worker and triggerer parts), one line per entry."""
        path = f"/dags/{dag_id}/dagRuns/{q(run_id)}/taskInstances/{task_id}/logs/{try_number}"
        params = {"full_content": "true", **({"map_index": str(map_index)} if map_index >= 0 else {})}
        data = self.api("GET", path, params=params, headers={"Accept": "application/json"})
        content = data.get("content") if isinstance(data, dict) else data
        if isinstance(content, str):
            return content
        return "\n".join(json.dumps(entry, default=str) for entry in content or [])

    def xcom_entries(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> list[dict[str, Any]]:
        base = f"/dags/{dag_id}/dagRuns/{q(run_id)}/taskInstances/{task_id}/xcomEntries"
        mapped = {"map_index": str(map_index)} if map_index >= 0 else {}
        entries = []
        for entry in self.api("GET", base, params=mapped)["xcom_entries"]:
            params = {"deserialize": "true", **mapped}
            entries.append(self.api("GET", f"{base}/{entry['key']}", params=params))
        return entries

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Until the run finishes; checks on the way that no component died."""

        def finished() -> str | None:
            self.check_alive()
            state = self.run_state(dag_id, run_id)
            return state if state in RUN_FINISHED else None

        return wait_for(f"{dag_id} run {run_id} to finish", finished, timeout, interval=0.5)

    def wait_ti_state(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            self.check_alive()
            ti = self.task_instance(dag_id, run_id, task_id)
            return ti if ti["state"] in states else None

        return wait_for(f"{dag_id}.{task_id} ({run_id}) to be {sorted(states)}", reached, timeout, 0.2)

    def trigger_row(self, ti_id: str) -> tuple[str, int | None] | None:
        """The task's trigger as the triggerer reads it from the metadata DB: (decrypted kwargs as JSON
        text, the triggerer job id holding it). The REST API does not show trigger kwargs."""
        from cryptography.fernet import Fernet

        with sqlite3.connect(self.home / "airflow.db", timeout=30) as con:
            row = con.execute(
                "SELECT t.kwargs, t.triggerer_id FROM trigger t "
                "JOIN task_instance ti ON ti.trigger_id = t.id "
                "WHERE ti.id = ?",
                (ti_id.replace("-", ""),),
            ).fetchone()
        if row is None:
            return None
        raw = str(row[0])
        if not raw.startswith("{"):
            raw = Fernet(self.env()["AIRFLOW__CORE__FERNET_KEY"].encode()).decrypt(raw.encode()).decode()
        return raw, row[1]

    def trigger_log_files(self, dag_id: str, run_id: str, task_id: str) -> list[Path]:
        """The triggerer's log files for this task instance (``attempt=N.log.trigger.<job>.log``)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(folder.glob("attempt=*.log.trigger.*.log"))
