"""The DAGs of the route table (``e2e/test_routes.py``): which stop route fires on which event.

``e2e_routes_<event>``: its task ``work`` starts four pipelines, each of which one route only stops:
``<dag>_callback`` the task's ``on_failure_callback`` (the notifier), ``<dag>_teardown`` a teardown
task, ``<dag>_deadline`` the DAG's DeadlineAlert (the notifier as its callback), ``<dag>_on_kill`` the
on-kill helper (``StopOnKill``, the operator's ``on_kill``); then it holds until the event ends it.
``e2e_routes_<event>_deferred``: ``work`` starts ``<dag>_on_kill`` and defers at once (the helper's
trigger ``on_kill``). The ``task_timeout`` DAGs time the task out (``execution_timeout`` in place, the
deferral's own timeout when deferred: Airflow applies no ``execution_timeout`` to a deferred task); the
``dagrun_timeout`` DAGs time the run out. The DeadlineAlert is ``interval`` after the run was queued, as
a user writes it, except in ``e2e_routes_clear``: Airflow 3.3.2 cannot clear a task of such a run (HTTP
500, apache/airflow#70368), so there it is after the run's logical date (the test sets it to now).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import DAG, BaseHook, BaseOperator
from airflow.providers.common.compat.standard.triggers import TimeDeltaTrigger
from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

from airflow_provider_stop.notifications.feldera import FelderaStopPipelineNotifier
from airflow_provider_stop.on_kill import StopOnKill
from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

EVENTS = ("mark_failed", "clear", "sigkill", "task_timeout", "dagrun_timeout")
#: The events a deferred task can meet (it has no process to SIGKILL).
DEFERRED_EVENTS = ("mark_failed", "clear", "task_timeout", "dagrun_timeout")
#: How long ``work`` holds: longer than any scenario, so only the event (or the test) ends it.
HOLD = 900
#: Seconds: the task's timeout, the run's timeout, and the DeadlineAlert's interval after queued_at.
TASK_TIMEOUT = 25
DAGRUN_TIMEOUT = 60
DEADLINE = 100


def start_pipeline(name: str) -> None:
    """A user's own start call (the Feldera REST API)."""
    import requests

    conn = BaseHook.get_connection("feldera_default")
    headers = {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
    url = f"{(conn.host or '').rstrip('/')}/v0/pipelines/{name}/start"
    requests.post(url, headers=headers, timeout=30).raise_for_status()


class Work(StopOnKill, BaseOperator):
    """Starts its pipelines (``on_kill`` first recorded), then holds in place or deferred."""

    def __init__(
        self,
        *,
        pipelines: list[str],
        on_kill: str,
        deferrable: bool = False,
        defer_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipelines = pipelines
        self.on_kill_pipeline = on_kill
        self.deferrable = deferrable
        self.defer_timeout = defer_timeout

    def execute(self, context: Context) -> None:
        self.stop_on_kill("feldera", self.on_kill_pipeline, force=True)
        for name in self.pipelines:
            start_pipeline(name)
        if self.deferrable:
            self.defer(
                trigger=self.stop_on_kill_trigger(TimeDeltaTrigger(timedelta(seconds=HOLD))),
                method_name="resume",
                timeout=timedelta(seconds=self.defer_timeout) if self.defer_timeout else None,
            )
        until = time.monotonic() + HOLD
        while time.monotonic() < until:
            time.sleep(0.5)

    def resume(self, context: Context, event: Any = None) -> None:
        """The hold is over."""


for event in EVENTS:
    dag_id = f"e2e_routes_{event}"
    with DAG(
        dag_id=dag_id,
        start_date=datetime(2026, 1, 1),
        schedule=None,
        catchup=False,
        default_args={"retries": 0},
        dagrun_timeout=timedelta(seconds=DAGRUN_TIMEOUT) if event == "dagrun_timeout" else None,
        deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE
            if event == "clear"
            else DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(seconds=DEADLINE),
            callback=AsyncCallback(
                FelderaStopPipelineNotifier,
                kwargs={
                    "pipeline_name": f"{dag_id}_deadline",
                    "force": True,
                    "feldera_conn_id": "feldera_default",
                },
            ),
        ),
        tags=["e2e"],
    ):
        work = Work(
            task_id="work",
            pipelines=[f"{dag_id}_{route}" for route in ("callback", "teardown", "deadline", "on_kill")],
            on_kill=f"{dag_id}_on_kill",
            on_failure_callback=FelderaStopPipelineNotifier(pipeline_name=f"{dag_id}_callback", force=True),
            execution_timeout=timedelta(seconds=TASK_TIMEOUT) if event == "task_timeout" else None,
        )
        (
            work
            >> FelderaStopPipelineOperator(
                task_id="teardown", pipeline_name=f"{dag_id}_teardown", force=True, poll_interval=1
            ).as_teardown()
        )

for event in DEFERRED_EVENTS:
    dag_id = f"e2e_routes_{event}_deferred"
    with DAG(
        dag_id=dag_id,
        start_date=datetime(2026, 1, 1),
        schedule=None,
        catchup=False,
        default_args={"retries": 0},
        dagrun_timeout=timedelta(seconds=DAGRUN_TIMEOUT) if event == "dagrun_timeout" else None,
        tags=["e2e"],
    ):
        Work(
            task_id="work",
            pipelines=[f"{dag_id}_on_kill"],
            on_kill=f"{dag_id}_on_kill",
            deferrable=True,
            defer_timeout=TASK_TIMEOUT if event == "task_timeout" else None,
        )
