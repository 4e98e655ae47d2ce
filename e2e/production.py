"""A production-shaped Airflow deployment for ``make e2e-production``: PostgreSQL as the metadata
database, CeleryExecutor with Redis as its broker, a Celery worker running every task in its own
process, the api-server, scheduler and dag-processor, and two triggerers, in a temporary
``AIRFLOW_HOME`` on loopback (``e2e/deployment.py`` is the sqlite/LocalExecutor one it builds on).

The triggerers follow the trigger-queue recipe (``docs/rate-limits.md``, Airflow 3.2+): with
``[triggerer] queues_enabled`` a deferred task's trigger carries its task's queue; ``triggerer-stop``
serves only ``stop_provider`` (this provider's tasks), ``triggerer-default`` every other task's
``default``. The Redis also holds ``[stop_provider] rate_limit_storage`` when the deployment shares the
rate limit (``shared_limit``), so switching it is a restart of the worker and the triggerers.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from starlette.responses import Response

from airflow_provider_stop.testing.amperity import AmperityEmulator
from e2e.deployment import Component, Deployment, E2EError, free_port, wait_for
from e2e.servers import PostgresServer, RedisServer

#: The queue of this provider's tasks, and of their triggers (``queues_enabled``).
QUEUE = "stop_provider"
#: Each component's command line after ``airflow``.
COMMANDS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", "127.0.0.1"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "celery-worker": ["celery", "worker", "--queues", f"default,{QUEUE}"],
    "triggerer-stop": ["triggerer", "--queues", QUEUE],
    "triggerer-default": ["triggerer", "--queues", "default"],
}
#: The service's clients run niced: the service (the emulator, in the test's process) is on another
#: machine in production, and must not answer late because forty task processes start on the same two
#: cores (its rate limit would then count requests by when it got to them, not by when they came).
NICED = frozenset({"celery-worker", "triggerer-stop", "triggerer-default"})
#: Task processes a worker runs at once: every stop task of the fleet DAG at the same time.
WORKER_CONCURRENCY = 40


class FleetEmulator(AmperityEmulator):
    """One tenant at the documented limit, counting the stops it accepted (past the rate limit) per run."""

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        self.accepted_stops: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def _stop(self, raw_id: str, form: str) -> Response:
        response = super()._stop(raw_id, form)
        if response.status_code == 200:
            with self._count_lock:
                self.accepted_stops[raw_id] += 1
        return response


class ProductionDeployment(Deployment):
    """Airflow on PostgreSQL with CeleryExecutor (Redis) and two triggerers; see the module docstring."""

    def __init__(self, home: Path, code_root: Path, dag_files: list[Path], extra_env: dict[str, str]) -> None:
        super().__init__(home, code_root, dag_files, extra_env)
        self.starts = dict.fromkeys(COMMANDS, 0)
        self.redis = RedisServer()
        self.postgres = PostgresServer()
        #: Whether the worker and the triggerers share the rate limit in Redis (restart them to switch).
        self.shared_limit = True
        #: Each triggerer's own log-serving port (two on one machine cannot share the default).
        self.log_ports = {name: free_port() for name in COMMANDS}

    @property
    def storage_url(self) -> str:
        return f"{self.redis.url}/1"

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CELERY__BROKER_URL": f"{self.redis.url}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url.replace("+psycopg2", ""),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__CORE__PARALLELISM": "64",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
                "AIRFLOW__TRIGGERER__QUEUES_ENABLED": "True",
                # Forty task processes starting at once on two cores: the api-server answers late.
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_ports["celery-worker"]),
            }
        )
        if self.shared_limit:
            env["AIRFLOW__STOP_PROVIDER__RATE_LIMIT_STORAGE"] = self.storage_url
            # Forty task processes on two cores wait long for the CPU: a storage call given up on after
            # the default 0.5 s would be this machine's load, not Redis (docs/rate-limits.md).
            env["AIRFLOW__STOP_PROVIDER__RATE_LIMIT_STORAGE_TIMEOUT"] = "5"
        else:
            env.pop("AIRFLOW__STOP_PROVIDER__RATE_LIMIT_STORAGE", None)
        return env

    def prepare(self) -> None:
        """Redis and PostgreSQL up, then the usual: fresh home, DAG files, ``db migrate``."""
        self.redis.start()
        self.postgres.start()
        super().prepare()

    def start(self, name: str) -> Component:
        import sys

        if name not in COMMANDS:
            raise ValueError(f"unknown component {name!r}")
        argv = [sys.executable, "-m", "airflow", *COMMANDS[name]]
        if name in NICED:
            argv = ["nice", "-n", "10", *argv]
        env = self.env()
        if name == "api-server":
            argv += ["--port", str(self.port)]
        if name.startswith("triggerer"):
            env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(self.log_ports[name])
        return self.launch(name, argv, env)

    def start_all(self) -> None:
        for name in ("api-server", "scheduler", "dag-processor", "celery-worker"):
            self.start(name)
        self.start_triggerers()
        self.wait_api_up()

    def start_triggerers(self) -> None:
        """The provider's triggerer first, registered before the other starts: its job id tells whose
        trigger logs are whose."""
        before = self.triggerer_jobs()
        self.start("triggerer-stop")
        self.stop_triggerer_job = wait_for(
            "triggerer-stop to register its job",
            lambda: max(set(self.triggerer_jobs()) - set(before), default=None),
            120,
            interval=0.5,
        )
        self.start("triggerer-default")

    def restart_for_limit(self, shared: bool) -> None:
        """The worker and the triggerers again, with or without the shared rate limit."""
        self.shared_limit = shared
        for name in ("celery-worker", "triggerer-stop", "triggerer-default"):
            self.components[name].kill()
        self.start("celery-worker")
        self.start_triggerers()

    def stop_all(self) -> None:
        super().stop_all()
        self.redis.stop()
        self.postgres.stop(keep_log=self.out_dir / "postgres.log")

    # ---- the metadata database ---------------------------------------------------------------
    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        dsn = self.postgres.url.replace("postgresql+psycopg2://", "postgresql://")
        with psycopg2.connect(dsn) as con, con.cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall())

    def triggerer_jobs(self) -> list[int]:
        try:
            return [int(r[0]) for r in self.sql("SELECT id FROM job WHERE job_type = 'TriggererJob'")]
        except Exception:  # not migrated yet
            return []

    def trigger_jobs_of_run(self, dag_id: str, run_id: str) -> set[int]:
        """The triggerer jobs that ran a trigger of the run (from the trigger log files' names)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        jobs = set()
        for path in folder.glob("task_id=*/attempt=*.log.trigger.*.log"):
            job = path.name.rsplit(".", 2)[-2]
            if not job.isdigit():
                raise E2EError(f"unexpected trigger log name {path.name}")
            jobs.add(int(job))
        return jobs
