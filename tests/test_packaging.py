"""Airflow discovers the provider; DAG files importing our operators pay for no HTTP or emulator code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from airflow_provider_stop.get_provider_info import SERVICES, get_provider_info
from airflow_provider_stop.services import provided


def test_provider_info_matches_airflows_schema() -> None:
    import importlib.resources

    import jsonschema

    schema = json.loads(
        importlib.resources.files("airflow").joinpath("provider_info.schema.json").read_text()
    )
    jsonschema.validate(get_provider_info(), schema)


def test_every_module_and_class_named_in_provider_info_imports() -> None:
    from airflow.providers.common.compat.module_loading import import_string

    info = get_provider_info()
    for layer in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[layer]:
            for module in entry["python-modules"]:
                __import__(module)
    for path in info["notifications"] + [c["hook-class-name"] for c in info["connection-types"]]:
        import_string(path)


def _airflow(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    return result.stdout


def test_airflow_lists_the_provider_and_its_connection_type() -> None:
    assert "airflow-provider-stop" in _airflow("providers", "list", "--output", "json")
    info = json.loads(_airflow("providers", "get", "airflow-provider-stop", "--full", "--output", "json"))
    text = json.dumps(info)
    assert "airflow_provider_stop.hooks.feldera.FelderaHook" in text
    hooks = {
        h.get("connection_type"): h["class"]
        for h in json.loads(_airflow("providers", "hooks", "--output", "json"))
    }
    assert hooks["feldera"] == "airflow_provider_stop.hooks.feldera.FelderaHook"
    assert hooks["dataforseo"] == "airflow_provider_stop.hooks.dataforseo.DataForSeoHook"
    assert hooks["rainforest"] == "airflow_provider_stop.hooks.rainforest.RainforestHook"
    assert hooks["datasift"] == "airflow_provider_stop.hooks.datasift.DataSiftHook"


HEAVY = [
    "requests",
    "starlette",
    "uvicorn",
    "httpx",
    "tenacity",
    "airflow_provider_stop.testing",
    *(f"airflow_provider_stop.hooks.{service}" for service in SERVICES),
]
#: What a DAG file imports from this package.
DAG_PARSE_MODULES = [
    *(svc.module(layer) for svc in provided() for layer in ("operators", "sensors", "notifications")),
    "airflow_provider_stop.retry",
]
#: What a DAG file pays before it imports any provider: Airflow and its task base classes (``import
#: airflow.sdk`` would not do: there is no ``airflow.sdk`` on 2.11).
BASELINE = (
    "import airflow; "
    "from airflow.providers.common.compat.sdk import BaseNotifier, BaseOperator, BaseSensorOperator"
)


def modules_added_by(modules: list[str]) -> dict[str, list[str]]:
    """In one fresh interpreter, after the baseline: the modules each of ``modules`` added, imported in
    turn (a module a former one loaded is counted for the former)."""
    code = (
        f"import sys, json; {BASELINE}; added = {{}}\n"
        f"for name in {modules!r}:\n"
        "    before = set(sys.modules); __import__(name); added[name] = sorted(set(sys.modules) - before)\n"
        "print(json.dumps(added))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def heavy(added: list[str]) -> list[str]:
    return [m for m in added if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_dag_parse_imports_nothing_network_related() -> None:
    """Compared with Airflow's own base classes, no module a DAG file imports adds HTTP or server code.

    One interpreter imports them all, so whatever any of them loads is seen (``test_import_cost``
    checks each module alone, for a precise culprit, in the full suite)."""
    added = modules_added_by(DAG_PARSE_MODULES)
    assert set(added) == set(DAG_PARSE_MODULES)
    assert {module: heavy(mods) for module, mods in added.items() if heavy(mods)} == {}


def test_serve_prints_one_working_connection_export_per_service() -> None:
    import shlex
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_stop.testing", "serve", "--demo-data"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = sorted(proc.stdout.readline().strip() for _ in SERVICES)
        for service, line in zip(sorted(SERVICES), lines, strict=True):
            prefix = f"export AIRFLOW_CONN_{service.upper()}_DEFAULT="
            assert line.startswith(prefix), line
            conn = json.loads(shlex.split(line.removeprefix("export "))[0].split("=", 1)[1])
            assert conn["conn_type"] == service
        feldera_line = next(line for line in lines if "FELDERA" in line)
        feldera = json.loads(shlex.split(feldera_line.removeprefix("export "))[0].split("=", 1)[1])
        url = feldera["host"] + "/v0/pipelines?selector=status"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - an http URL we just printed
            names = {p["name"] for p in json.load(resp)}
        assert "orders_etl" in names
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dag_parse_leaves_the_http_libraries_loggers_alone() -> None:
    """The secret filter on urllib3/httpx loggers is installed by a hook at run time, not by a DAG import."""
    code = (
        "import logging, airflow_provider_stop.operators.rainforest, airflow_provider_stop.sensors.datasift; "
        "print(sum(len(logging.getLogger(n).filters) for n in ('urllib3.connectionpool', 'httpx')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


def test_every_optional_dropdown_labels_its_empty_choice() -> None:
    """Airflow's form shows an unlabelled ``None`` choice as the text "null"."""
    from airflow_provider_stop.get_provider_info import get_provider_info

    for conn in get_provider_info()["connection-types"]:
        for name, field in conn.get("conn-fields", {}).items():
            schema = field["schema"]
            if None in schema.get("enum", []):
                label = schema.get("values_display", {}).get("null", "")
                assert label.startswith("default"), (conn["connection-type"], name)
