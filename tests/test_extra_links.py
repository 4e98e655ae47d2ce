"""Operator extra links (issue 26): each service's link URL, never a secret in one, declared by the
operators and in provider info, and pushed to XCom before the stop, so Airflow shows it on a running,
deferred or failed task."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG, BaseOperatorLink, TaskDeferred

from airflow_provider_stop import services
from airflow_provider_stop.get_provider_info import get_provider_info
from airflow_provider_stop.links.base import TARGET_PAGES_KEY, StopTargetLink, public_url
from airflow_provider_stop.links.feldera import FelderaWebConsoleLink
from airflow_provider_stop.operators.dataforseo import DataForSeoStopOnPageTasksOperator
from airflow_provider_stop.operators.feldera import (
    FelderaStopAllPipelinesOperator,
    FelderaStopPipelineOperator,
)
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import (
    AIRFLOW_V_3_0_PLUS,
    FAST_RETRIES,
    LogCapture,
    run_dag,
    serialize_dag,
    task_states,
    use_connection,
    xcom_value,
)

FELDERA_KEY = FelderaWebConsoleLink().xcom_key
FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}
SECRET = "LINKCANARY" + "z9" * 12
PROVIDED = [svc.name for svc in services.provided()]


def url_for(
    monkeypatch: pytest.MonkeyPatch, service: str, conn: dict[str, Any], targets: list[str]
) -> tuple[str | None, dict[str, str]]:
    """The link (and per-target pages) of a task stopping ``targets`` over this connection, worked out
    from the hook's config as the operator does (no request is sent)."""
    use_connection(monkeypatch, "links_test", {"conn_type": service, **conn})
    hook = services.load(service, "hook")("links_test")
    link = services.load(service, "link")()
    return link.url(hook.config, targets), link.pages(hook.config, targets)


# ---- each service's URL ----------------------------------------------------------------------
def key(**conn: Any) -> dict[str, Any]:
    """A connection with a key in its password (and ``conn``'s fields)."""
    return {"password": SECRET, **conn}


def amperity(tenant: str, host: str | None = None, **extra: Any) -> dict[str, Any]:
    """An Amperity connection with a pasted token (and the API URL, when given)."""
    return key(extra={"tenant": tenant, "auth_type": "token", **extra}, **({"host": host} if host else {}))


SERPWOW = {"resource": "batches", "path_prefix": "/live"}


@pytest.mark.parametrize(
    ("service", "conn", "targets", "expected"),
    [
        # Feldera: the web console at the manager's own URL; one pipeline: its page
        ("feldera", {"host": "https://f.example.com"}, ["etl"], "https://f.example.com/pipelines/etl/"),
        (
            "feldera",
            {"host": "f.internal", "schema": "http", "port": 80},
            ["p"],
            "http://f.internal:80/pipelines/p/",
        ),
        (
            "feldera",
            {"host": "https://gw.example.com/f/"},
            ["a b/c"],
            "https://gw.example.com/f/pipelines/a%20b%2Fc/",
        ),
        ("feldera", {"host": "https://f.example.com"}, ["a", "b"], "https://f.example.com/"),
        # DataForSEO: the account's API dashboard, whatever the API host (the sandbox too)
        ("dataforseo", key(login="me"), ["t-1"], "https://app.dataforseo.com/api-dashboard"),
        (
            "dataforseo",
            key(login="me", extra={"sandbox": True}),
            ["t-1", "t-2"],
            "https://app.dataforseo.com/api-dashboard",
        ),
        # Rainforest and its sister products: the dashboard's list of collections or batches
        ("rainforest", key(), ["C1"], "https://app.rainforestapi.com/collections"),
        (
            "rainforest",
            key(host="https://api.bigboxapi.com"),
            ["C1", "C2"],
            "https://app.bigboxapi.com/collections",
        ),
        (
            "rainforest",
            key(host="https://api.serpwow.com", extra=SERPWOW),
            ["B1"],
            "https://app.serpwow.com/batches",
        ),
        ("rainforest", key(host="https://rainforest-proxy.example.com"), ["C1"], None),
        # Amperity: the tenant's app, from the region (or the explicit API URL)
        ("amperity", amperity("acme"), ["wf-1"], "https://app.amperity.com/"),
        ("amperity", amperity("acme", region="azure"), ["wf-1", "wf-2"], "https://acme.amperity.com/"),
        ("amperity", amperity("acme-sb-123", region="azure"), ["wf-1"], "https://acme.amperity.com/"),
        (
            "amperity",
            amperity("acme", host="https://acme.amperity.com/api"),
            ["wf-1"],
            "https://acme.amperity.com/",
        ),
        # DataSift: the account's data sources page
        ("datasift", key(login="me"), ["0123456789abcdef0123456789abcdef"], "https://datasift.com/source"),
    ],
)
def test_each_services_link(
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    conn: dict[str, Any],
    targets: list[str],
    expected: str | None,
) -> None:
    url, _ = url_for(monkeypatch, service, conn, targets)
    assert url == expected


def test_several_feldera_pipelines_link_the_console_and_list_each_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, pages = url_for(monkeypatch, "feldera", {"host": "https://f.example.com"}, ["a", "b"])
    assert url == "https://f.example.com/"
    assert pages == {"a": "https://f.example.com/pipelines/a/", "b": "https://f.example.com/pipelines/b/"}


@pytest.mark.parametrize("service", [s for s in PROVIDED if s != "feldera"])
def test_services_without_a_page_per_target_list_none(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    conn = {"login": "me", "password": SECRET, "extra": {"tenant": "acme", "auth_type": "token"}}
    assert url_for(monkeypatch, service, conn, ["x", "y"])[1] == {}


# ---- never a secret --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@host.example.com:8443/a/b?api_key=k#frag", "https://host.example.com:8443/a/b"),
        ("http://[::1]:8080/pipelines/p/", "http://[::1]:8080/pipelines/p/"),
        ("javascript:alert(1)", None),
        ("https://host:notaport/", None),
        ("", None),
        (None, None),
    ],
)
def test_public_url_keeps_no_user_info_query_or_fragment(url: str | None, expected: str | None) -> None:
    assert public_url(url) == expected


@pytest.mark.parametrize("service", PROVIDED)
def test_no_link_carries_a_credential(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    """Every field that can hold a credential holds one; the API key of Rainforest goes into the
    query string of its API calls, never into the link."""
    conn = {
        "login": "login-" + SECRET,
        "password": "pw-" + SECRET,
        "extra": {"tenant": "acme", "auth_type": "token", "api_key": SECRET, "token": SECRET},
    }
    url, pages = url_for(monkeypatch, service, conn, ["one"])
    several, _ = url_for(monkeypatch, service, conn, ["one", "two"])
    text = json.dumps([url, pages, several])
    assert SECRET not in text and "login-" not in text and "pw-" not in text


# ---- declared ------------------------------------------------------------------------------
@pytest.mark.parametrize("service", PROVIDED)
def test_the_services_operators_show_its_link_and_provider_info_lists_it(service: str) -> None:
    link = services.load(service, "link")
    assert issubclass(link, StopTargetLink) and issubclass(link, BaseOperatorLink)
    assert link.service_info is services.service(service)
    for role in ("operator", "stop_all_operator"):
        if role in services.classes(service):
            assert [type(x) for x in services.load(service, role).operator_extra_links] == [link]
    assert services.class_path(link) in get_provider_info()["extra-links"]


def test_provider_info_lists_one_link_per_service_and_the_serialized_dag_names_it() -> None:
    assert len(get_provider_info()["extra-links"]) == len(PROVIDED)
    with DAG(dag_id="links_serialized", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        FelderaStopPipelineOperator(task_id="stop", pipeline_name="p")
    assert json.dumps(serialize_dag(dag)).count("Feldera web console") == 1


def test_airflow_registers_every_link_class_of_provider_info() -> None:
    """What ``airflow providers links`` lists is what Airflow imported (2.11 rebuilds links only from
    registered classes)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "links", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # the JSON is the line that starts the list; log lines before it may start with "[" too
    start = next(i for i, line in enumerate(out.splitlines()) if line.startswith(("[{", "[]")))
    listed = {row["extra_link_class_name"] for row in json.loads("\n".join(out.splitlines()[start:]))}
    assert set(get_provider_info()["extra-links"]) <= listed


def test_a_test_only_service_costs_one_link_class() -> None:
    import tests.extra_services  # noqa: F401 - registers the toy service

    link = services.load("toy", "link")
    assert [type(x) for x in services.load("toy", "operator").operator_extra_links] == [link]


def test_a_subclass_keeps_its_own_links() -> None:
    class Mine(BaseOperatorLink):
        name = "mine"

        def get_link(self, operator: Any, *, ti_key: Any) -> str:
            return "https://example.com"

    class MyStop(FelderaStopPipelineOperator):
        operator_extra_links = (Mine(),)

    class Inherited(FelderaStopPipelineOperator):
        pass

    class MyStopAgain(MyStop):
        pass

    assert [type(x) for x in MyStop.operator_extra_links] == [Mine]
    assert [type(x) for x in MyStopAgain.operator_extra_links] == [Mine]
    assert [type(x) for x in Inherited.operator_extra_links] == [FelderaWebConsoleLink]


# ---- pushed before the stop, under the key Airflow reads ---------------------------------------
class RecordingTI:
    """A task instance that records what is pushed, and how many stops the emulator had seen then."""

    def __init__(self, emulator: FelderaEmulator) -> None:
        self.emulator = emulator
        self.pushed: list[tuple[str, Any, int]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value, self.emulator.count("POST", "*/stop")))


def test_the_link_is_pushed_before_the_stop_and_there_when_the_operator_defers(
    feldera: FelderaEmulator,
) -> None:
    feldera.add_pipeline("slow")
    feldera.override_state("slow", "Stopping")  # still stopping when the operator defers
    ti = RecordingTI(feldera)
    op = FelderaStopPipelineOperator(
        task_id="stop", pipeline_name="slow", force=True, deferrable=True, **FAST
    )
    with pytest.raises(TaskDeferred):
        op.execute({"ti": ti})  # type: ignore[typeddict-item]
    assert ti.pushed[0] == (FELDERA_KEY, f"{feldera.url}/pipelines/slow/", 0)  # no stop sent yet
    assert feldera.count("POST", "*/slow/stop") == 1


def test_without_a_task_instance_nothing_is_pushed_and_the_stop_goes_on(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    op = FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", force=True, deferrable=False, **FAST)
    assert op.execute({})["p"]["stopped"]


def test_a_broken_link_never_fails_the_stop(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    def broken(self: Any, config: Any, target_ids: Any) -> str:
        raise RuntimeError("cannot build the link")

    monkeypatch.setattr(FelderaWebConsoleLink, "url", broken)
    feldera.add_pipeline("p")
    ti = RecordingTI(feldera)
    op = FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", force=True, deferrable=False, **FAST)
    assert op.execute({"ti": ti})["p"]["stopped"]  # type: ignore[typeddict-item]
    assert ti.pushed == []
    assert "No 'Feldera web console' link for this task: RuntimeError: cannot build the link" in logs.text()


# ---- under real Airflow: what the UI reads ----------------------------------------------------
def shown(dag_run: Any, task_id: str, link: BaseOperatorLink) -> str | None:
    """The link as Airflow's UI gets it: on 3.x the api-server's ``XComOperatorLink`` (the name and XCom
    key the serialized DAG keeps) reads the task's XCom; on 2.11 the webserver calls the class's own
    ``get_link``."""
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == task_id)
    if AIRFLOW_V_3_0_PLUS:
        try:  # 3.2+
            from airflow.serialization.definitions.operatorlink import XComOperatorLink
        except ImportError:  # 3.0, 3.1
            from airflow.serialization.serialized_objects import (  # type: ignore[attr-defined,no-redef,unused-ignore]
                XComOperatorLink,
            )

        value = XComOperatorLink(name=link.name, xcom_key=link.xcom_key).get_link(None, ti_key=ti.key)  # type: ignore[arg-type]
    else:
        value = link.get_link(None, ti_key=ti.key)  # type: ignore[arg-type]
    return value or None


def run(dag_id: str, make: Any) -> Any:
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        make()
    return run_dag(dag)


@pytest.mark.usefixtures("airflow_db")
def test_a_deferred_stop_shows_the_pipelines_page(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("orders_etl")
    dr = run(
        "links_deferred",
        lambda: FelderaStopPipelineOperator(
            task_id="stop", pipeline_name="orders_etl", force=True, deferrable=True, **FAST
        ),
    )
    assert task_states(dr) == {"stop": "success"}
    assert shown(dr, "stop", FelderaWebConsoleLink()) == f"{feldera.url}/pipelines/orders_etl/"


@pytest.mark.usefixtures("airflow_db")
def test_a_failed_stop_shows_the_link(feldera: FelderaEmulator) -> None:
    """The stop of an unknown pipeline fails at once: the link was pushed before it was sent."""
    dr = run(
        "links_failed",
        lambda: FelderaStopPipelineOperator(
            task_id="stop", pipeline_name="ghost", force=True, deferrable=True, retries=0, **FAST
        ),
    )
    assert task_states(dr) == {"stop": "failed"}
    assert feldera.count("POST", "*/ghost/stop") == 1
    assert shown(dr, "stop", FelderaWebConsoleLink()) == f"{feldera.url}/pipelines/ghost/"


@pytest.mark.usefixtures("airflow_db")
def test_a_timed_out_stop_all_shows_the_console_and_every_pipelines_page(feldera: FelderaEmulator) -> None:
    for name in ("nightly_a", "nightly_b"):
        feldera.add_pipeline(name)
        feldera.override_state(name, "Stopping")
    dr = run(
        "links_stop_all",
        lambda: FelderaStopAllPipelinesOperator(
            task_id="stop_all", name_pattern="nightly_*", force=True, timeout=0.5, retries=0, **FAST
        ),
    )
    assert task_states(dr) == {"stop_all": "failed"}
    assert shown(dr, "stop_all", FelderaWebConsoleLink()) == f"{feldera.url}/"
    assert xcom_value(dr, "stop_all", TARGET_PAGES_KEY) == {
        name: f"{feldera.url}/pipelines/{name}/" for name in ("nightly_a", "nightly_b")
    }


@pytest.mark.usefixtures("airflow_db")
def test_a_console_only_service_shows_its_console_on_a_failed_task(dfs: DataForSeoEmulator) -> None:
    from airflow_provider_stop.links.dataforseo import DASHBOARD_URL, DataForSeoDashboardLink

    dr = run(
        "links_dataforseo_failed",
        lambda: DataForSeoStopOnPageTasksOperator(
            task_id="stop", crawl_task_ids=["no-such-task"], fail_if_not_running=True, retries=0, **FAST
        ),
    )
    assert task_states(dr) == {"stop": "failed"}
    assert shown(dr, "stop", DataForSeoDashboardLink()) == DASHBOARD_URL
