"""Stop on kill: your own operator starts a Feldera pipeline; when a user marks the task failed or clears
it, the pipeline is stopped (``StopOnKill``), whether the task waits in place or deferred."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import DAG, BaseHook, BaseOperator
from airflow.providers.common.compat.standard.triggers import TimeDeltaTrigger

from airflow_provider_stop.on_kill import StopOnKill

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

# Seconds between status checks; the demo and the tests turn it down.
POLL_INTERVAL = float(os.environ.get("STOP_EXAMPLES_POLL_INTERVAL", "10"))


def feldera_api(conn_id: str, method: str, path: str) -> Any:
    """Your own call to the Feldera REST API (https://docs.feldera.com/api)."""
    import requests

    conn = BaseHook.get_connection(conn_id)
    headers = {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
    url = f"{(conn.host or 'http://localhost:8080').rstrip('/')}/v0{path}"
    response = requests.request(method, url, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


# --8<-- [start:operator]
class RunFelderaPipeline(StopOnKill, BaseOperator):
    """Start a pipeline, let it run for ``run_for`` seconds (in place, or deferred), then stop it."""

    template_fields = ("pipeline_name", "run_for")

    def __init__(
        self,
        *,
        pipeline_name: str,
        run_for: float | str,
        deferrable: bool = False,
        feldera_conn_id: str = "feldera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_name = pipeline_name
        self.run_for = run_for
        self.deferrable = deferrable
        self.feldera_conn_id = feldera_conn_id

    def execute(self, context: Context) -> None:
        # Recorded before the start: if the task is killed from here on, the pipeline is stopped.
        self.stop_on_kill("feldera", self.pipeline_name, conn_id=self.feldera_conn_id, force=True)
        feldera_api(self.feldera_conn_id, "POST", f"/pipelines/{self.pipeline_name}/start")
        if self.deferrable:  # the trigger's on_kill stops it too (Airflow 3.3+)
            trigger = TimeDeltaTrigger(timedelta(seconds=float(self.run_for)))
            self.defer(trigger=self.stop_on_kill_trigger(trigger), method_name="finish")
        until = time.monotonic() + float(self.run_for)
        while time.monotonic() < until:
            status = feldera_api(self.feldera_conn_id, "GET", f"/pipelines/{self.pipeline_name}")
            if status["deployment_status"] in ("Stopped", "Stopping"):
                raise RuntimeError(f"{self.pipeline_name} stopped before its window ended")
            time.sleep(POLL_INTERVAL)
        self.finish(context)

    def finish(self, context: Context, event: Any = None) -> None:
        """The window is over: stop the pipeline (the provider's hook) and wait until it is stopped."""
        from airflow_provider_stop.hooks.feldera import FelderaHook

        hook = FelderaHook(self.feldera_conn_id)
        hook.stop(self.pipeline_name, force=True)
        hook.wait_until_stopped([self.pipeline_name], poll_interval=POLL_INTERVAL, deadline=time.time() + 600)
        # --8<-- [end:operator]


with DAG(
    dag_id="feldera_stop_on_kill",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"pipeline": "orders_backfill", "run_for": 60},
    tags=["example", "feldera"],
):
    # --8<-- [start:tasks]
    RunFelderaPipeline(
        task_id="run_backfill", pipeline_name="{{ params.pipeline }}", run_for="{{ params.run_for }}"
    )
    RunFelderaPipeline(
        task_id="run_backfill_deferred",
        pipeline_name="{{ params.pipeline }}_deferred",
        run_for="{{ params.run_for }}",
        deferrable=True,
    )
    # --8<-- [end:tasks]
