"""Shared fixtures: an isolated Airflow home with a sqlite DB, emulators, and a DAG runner."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import requests.adapters

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = ROOT / "example_dags"

# Airflow reads these at import time: set them before anything imports airflow.
# A test's child process (tests/test_metrics.py) shares the session's home and DB.
_HOME = os.environ.get("STOP_TESTS_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="airflow-provider-stop-tests-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["STOP_EXAMPLES_POLL_INTERVAL"] = "0.1"
# Defer at once and fire at once (the real-deployment defaults are tested on their own, and in e2e).
os.environ["AIRFLOW__STOP_PROVIDER__WAIT_BEFORE_DEFER"] = "0"
os.environ["AIRFLOW__STOP_PROVIDER__TRIGGER_MIN_DELAY"] = "0"
for _key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
    del os.environ[_key]

from airflow.providers.common.compat.version_compat import (  # noqa: E402
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
)

from airflow_provider_stop.testing.amperity import AmperityEmulator  # noqa: E402
from airflow_provider_stop.testing.base import Emulator  # noqa: E402
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator  # noqa: E402
from airflow_provider_stop.testing.datasift import DataSiftEmulator  # noqa: E402
from airflow_provider_stop.testing.feldera import FelderaEmulator  # noqa: E402
from airflow_provider_stop.testing.rainforest import RainforestEmulator  # noqa: E402

# ---- the tests' own compat layer: what moved between Airflow 2.11 and 3.3 ---------------------------
#: Modules that are wholly part of the real-Airflow part (``pytest -m airflow``); besides these, every
#: test that uses the ``airflow_db`` fixture is.
AIRFLOW_MODULES = frozenset(
    {
        "test_packaging.py",
        "test_restarts.py",
        "test_example_dags.py",
        "test_airflow_compat.py",
        "test_task_semantics.py",
        "test_start_from_trigger.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the real-Airflow part ``airflow``: what the matrix runs on every supported Airflow."""
    for item in items:
        if item.path.name in AIRFLOW_MODULES or "airflow_db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.airflow)


def needs_airflow(version: str, why: str) -> pytest.MarkDecorator:
    """Skip a test below an Airflow minor (``"3.2"``), saying what that version lacks."""
    have = {
        "3.0": AIRFLOW_V_3_0_PLUS,
        "3.1": AIRFLOW_V_3_1_PLUS,
        "3.2": AIRFLOW_V_3_2_PLUS,
        "3.3": AIRFLOW_V_3_3_PLUS,
    }[version]
    return pytest.mark.skipif(not have, reason=f"needs Airflow {version}+: {why}")


def _dagbag_class() -> Any:
    """``DagBag`` moved to ``airflow.dag_processing.dagbag`` in 3.2."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined,unused-ignore]
    return DagBag


def dagbag(folder: str | os.PathLike[str]) -> Any:
    """A DagBag of ``folder``, as the DAG processor parses it."""
    return _dagbag_class()(dag_folder=str(folder))


def serialize_dag(dag: Any) -> dict[str, Any]:
    """The DAG as the DAG processor stores it (``DagSerialization`` from 3.2, ``SerializedDAG`` before)."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.serialization.serialized_objects import DagSerialization

        return dict(DagSerialization.to_dict(dag))
    from airflow.serialization import serialized_objects

    return dict(serialized_objects.SerializedDAG.to_dict(dag))  # type: ignore[attr-defined,unused-ignore]


def callback_trigger(callback_path: str, callback_kwargs: dict[str, Any]) -> Any:
    """The trigger the triggerer runs an ``AsyncCallback`` DeadlineAlert with (3.1: ``triggers.deadline``)."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.triggers.callback import CallbackTrigger

        return CallbackTrigger(callback_path=callback_path, callback_kwargs=callback_kwargs)
    from airflow.triggers.deadline import DeadlineCallbackTrigger  # type: ignore[import-not-found,unused-ignore]

    return DeadlineCallbackTrigger(callback_path=callback_path, callback_kwargs=callback_kwargs)


#: Hook settings that keep retry tests fast; the retry *logic* is unchanged.
FAST_RETRIES: dict[str, Any] = {
    "max_attempts": 4,
    "retry_min_wait": 0.01,
    "retry_max_wait": 0.05,
    "request_timeout": 5,
}


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated sqlite metadata DB, once per session (what ``dag.test()`` needs)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _HOME


def _serve(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> Iterator[Any]:
    """Start an emulator and point ``<service>_default`` at it for the test (``extra`` added to its
    connection's extras)."""
    from airflow_provider_stop import process_state

    # List lengths, refused page sizes, tokens, paces are remembered per connection id: a new
    # emulator behind the same id is a new service.
    process_state.reset()
    emulator.start()
    conn = emulator.connection()
    if extra:
        conn = {**conn, "extra": {**(conn.get("extra") or {}), **extra}}
    use_connection(monkeypatch, f"{emulator.service}_default", conn)
    yield emulator
    emulator.stop()


@pytest.fixture
def feldera(monkeypatch: pytest.MonkeyPatch) -> Iterator[FelderaEmulator]:
    """A Feldera emulator (open-source edition, no auth) behind ``feldera_default``."""
    yield from _serve(FelderaEmulator(), monkeypatch)


@pytest.fixture
def dfs(monkeypatch: pytest.MonkeyPatch) -> Iterator[DataForSeoEmulator]:
    """A DataForSEO emulator (stops take 0.1 s to show) behind ``dataforseo_default``, paced fast."""
    yield from _serve(DataForSeoEmulator(stop_delay_seconds=0.1), monkeypatch, requests_per_second=10_000)


@pytest.fixture
def rainforest(monkeypatch: pytest.MonkeyPatch) -> Iterator[RainforestEmulator]:
    """A Rainforest collections emulator (stops are immediate) behind ``rainforest_default``."""
    yield from _serve(RainforestEmulator(queue_seconds=0.05), monkeypatch)


@pytest.fixture
def datasift(monkeypatch: pytest.MonkeyPatch) -> Iterator[DataSiftEmulator]:
    """A DataSift emulator (synchronous stops, 10,000 credits) behind ``datasift_default``."""
    yield from _serve(DataSiftEmulator(), monkeypatch)


@pytest.fixture
def amperity(monkeypatch: pytest.MonkeyPatch) -> Iterator[AmperityEmulator]:
    """An Amperity emulator (cancels take 0.2 s) behind ``amperity_default`` with OAuth client
    credentials; its rate limit and the hook's pace are raised so tests run fast (the rate tests
    use the documented values)."""
    emulator = AmperityEmulator(cancel_seconds=0.2, rate_limit_per_second=1000)
    yield from _serve(emulator, monkeypatch, requests_per_second=500)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A throw-away Redis server on loopback (Debian's ``redis-server``, installed when missing and
    this is root: ``e2e/servers.py``); the tests that need one are skipped, saying why, without it."""
    pytest.importorskip("redis", reason="the redis client is missing: pip install '.[redis]'")
    from e2e.servers import RedisServer, ServerUnavailable

    try:
        server = RedisServer().start()
    except ServerUnavailable as exc:
        pytest.skip(f"no Redis server for the shared rate-limit tests: {exc}")
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The Redis server's URL, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


def use_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict[str, Any]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def load_example_dag(dag_id: str) -> Any:
    """Load a DAG from ``example_dags/`` the way the DAG processor does."""
    bag = dagbag(EXAMPLE_DAGS / f"{dag_id}.py")
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id!r}"
    return dag


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """``dag.test()`` for a DAG defined in a test. From Airflow 3.1 it only runs DAGs the DAG processor
    stored, so the DAG is registered in the metadata DB first; 2.11 and 3.0 serialize it themselves."""
    if AIRFLOW_V_3_1_PLUS:
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        if AIRFLOW_V_3_2_PLUS:
            from airflow.dag_processing.dagbag import sync_bag_to_db
        else:
            from airflow.models.dagbag import sync_bag_to_db  # type: ignore[no-redef,attr-defined,unused-ignore]

        DagBundlesManager().sync_bundles_to_db()
        bag = _dagbag_class()(dag_folder=os.devnull, collect_dags=False)
        bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    return {
        ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state)
        for ti in dag_run.get_task_instances()
    }


def xcom_model() -> Any:
    """The XCom table's ORM class: ``XComModel`` from 3.0, ``XCom`` on 2.11."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel

        return XComModel
    from airflow.models.xcom import XCom  # type: ignore[attr-defined,unused-ignore]

    return XCom


def xcom_value(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """The XCom a task pushed in ``dag_run``, read back from the metadata DB (``XComModel`` from 3.0,
    ``XCom`` on 2.11)."""
    from airflow.utils.session import create_session

    model = xcom_model()
    with create_session() as session:
        row = (
            session.query(model)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        if row is None:
            return None
        value = row.value
    return json.loads(value) if isinstance(value, str | bytes) else value


class LogCapture:
    """Everything logged or printed during a test: Airflow logs through structlog to stdout/stderr."""

    def __init__(self, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        self._capfd = capfd
        self._caplog = caplog
        self._seen = ""
        caplog.set_level(1)

    def text(self) -> str:
        out, err = self._capfd.readouterr()
        self._seen += out + err
        records = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in self._caplog.records)
        return self._seen + "\n" + records


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> LogCapture:
    return LogCapture(capfd, caplog)


# ---- one summary line per suite family (issue: "fault scenarios: 600 passed, 0 failed") -------------
FAMILIES = {
    "tests/test_fault_matrix.py": "fault scenarios",
    "tests/test_restarts.py": "restart scenarios",
    "tests/test_bad_input.py": "bad-input cases",
    "tests/test_secret_sweep.py": "secret checks",
    "tests/test_hostile_servers.py": "hostile-server cases",
}
_family_results: dict[str, dict[str, int]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    family = FAMILIES.get(report.nodeid.split("::", 1)[0])
    if family is None or not (report.when == "call" or report.failed):
        return
    counts = _family_results.setdefault(family, {"passed": 0, "failed": 0})
    counts["passed" if report.passed else "failed"] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for family, counts in _family_results.items():
        terminalreporter.write_line(f"{family}: {counts['passed']} passed, {counts['failed']} failed")


class ToEmulator(requests.adapters.HTTPAdapter):
    """Sends every https request to the emulator, keeping the original host in ``Host``: the emulator
    sees which host a request was meant for (real TLS hosts cannot be served on loopback)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.netloc = urllib.parse.urlsplit(url).netloc

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urllib.parse.urlsplit(request.url or "")
        request.headers["Host"] = parts.netloc
        request.url = urllib.parse.urlunsplit(("http", self.netloc, parts.path, parts.query, ""))
        return super().send(request, *args, **kwargs)
