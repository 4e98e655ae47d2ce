"""Metrics: a real task run (``dag.test()`` in its own process, Airflow configured for StatsD) sends
the provider's counters and timers to a StatsD listener, a UDP socket in the test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_stop.testing.feldera import FelderaEmulator

RUN = textwrap.dedent(
    """
    import os
    from datetime import datetime

    conn = os.environ["AIRFLOW_CONN_FELDERA_DEFAULT"]
    from tests.conftest import FAST_RETRIES, run_dag  # (it clears AIRFLOW_CONN_* for the suite)

    os.environ["AIRFLOW_CONN_FELDERA_DEFAULT"] = conn
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

    fast = {"force": True, "deferrable": False, "poll_interval": 0.05, "hook_params": FAST_RETRIES}
    with DAG(dag_id="metrics_run", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        FelderaStopPipelineOperator(task_id="stop", pipeline_name=["m1", "m2"], **fast)
        FelderaStopPipelineOperator(task_id="late", pipeline_name="m3", timeout=0.5, **fast)
    run_dag(dag)
    """
)


@pytest.fixture
def statsd() -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    yield listener
    listener.close()


def received(listener: socket.socket) -> list[str]:
    lines: list[str] = []
    while True:
        try:
            packet = listener.recv(65536).decode()
        except TimeoutError:
            return lines
        lines += packet.splitlines()


def metric(lines: list[str], name: str) -> list[tuple[float, str]]:
    """(value, type) of each ``<prefix>.<name>:<value>|<type>`` line."""
    found = []
    for line in lines:
        stat, _, rest = line.partition(":")
        if stat.endswith(f".{name}") or stat == name:
            value, _, kind = rest.partition("|")
            found.append((float(value), kind.split("|")[0]))
    return found


def test_a_real_task_sends_the_provider_metrics(
    feldera: FelderaEmulator, statsd: socket.socket, airflow_db: str
) -> None:
    for name in ("m1", "m2", "m3"):
        feldera.add_pipeline(name)
    feldera.pipelines["m3"].status_override = "Stopping"  # never stops: the late task times out
    env: dict[str, Any] = {
        **os.environ,
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "STOP_TESTS_AIRFLOW_HOME": airflow_db,
    }
    done = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=240)
    lines = received(statsd)
    # Airflow's own metrics arrive too (which ones depends on its version: 3.0's dag.test() sends no
    # ti_successes), under the deployment's prefix: the provider goes through Airflow's client
    assert any(line.startswith("airflow.") and "stop_provider." not in line for line in lines), (
        done.stdout + done.stderr
    )[-3000:]
    assert all(line.startswith("airflow.") for line in lines if "stop_provider." in line), lines
    assert sorted(metric(lines, "stop_provider.feldera.stops_sent")) == [(1.0, "c"), (2.0, "c")], lines
    assert metric(lines, "stop_provider.feldera.timeouts") == [(1.0, "c")]
    (duration,) = metric(lines, "stop_provider.feldera.wait_duration")
    assert duration[1] == "ms" and 0 < duration[0] < 60_000
    ((per_stop, kind),) = metric(lines, "stop_provider.feldera.requests_per_stop")
    assert kind == "ms" and per_stop >= 2  # a stop and at least one status read per pipeline
    assert not metric(lines, "stop_provider.feldera.refused")  # a zero is not sent


class Recorder:
    """Airflow's stats client, recording."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def incr(self, stat: str, count: int = 1, rate: float = 1, tags: dict[str, str] | None = None) -> None:
        assert tags == {"service": stat.split(".")[1]}
        self.counts[stat] = self.counts.get(stat, 0) + count

    def timing(self, stat: str, dt: float, tags: dict[str, str] | None = None) -> None:
        pass


def test_refusals_and_escalations_are_counted(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_stop import metrics
    from airflow_provider_stop.hooks.errors import StopTimeoutError
    from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator
    from tests.conftest import FAST_RETRIES

    stats = Recorder()
    monkeypatch.setattr(metrics, "_stats", lambda: stats)
    feldera.settings.edition = "Enterprise"
    feldera.add_pipeline("slow")
    feldera.pipelines["slow"].status_override = "Stopping"
    op = FelderaStopPipelineOperator(
        task_id="stop",
        pipeline_name=["slow", "ghost"],
        deferrable=False,
        force_after=0.2,
        timeout=1.5,
        fail_on_partial_failure=False,
        poll_interval=0.05,
        hook_params=FAST_RETRIES,
    )
    with pytest.raises(StopTimeoutError):
        op.execute({})
    assert stats.counts == {
        "stop_provider.feldera.stops_sent": 1,
        "stop_provider.feldera.refused": 1,  # the unknown pipeline
        "stop_provider.feldera.escalations": 1,
        "stop_provider.feldera.timeouts": 1,
    }
