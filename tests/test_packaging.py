"""Airflow discovers the provider; DAG files importing our operators pay for no HTTP or emulator code;
the sdist and wheel carry the Apache license and the security floors."""

from __future__ import annotations

import dataclasses
import email
import email.message
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from airflow_provider_stop import services
from airflow_provider_stop.get_provider_info import get_provider_info
from airflow_provider_stop.services import provided

SERVICES = [svc.name for svc in services.provided()]


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
    "airflow_provider_stop.on_kill",
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


# ---- the built distributions: the license and the security floors --------------------------------------
ROOT = Path(__file__).resolve().parents[1]
#: sha256 of the Apache License 2.0 exactly as the ASF publishes it (LICENSE-2.0.txt, md5
#: 3b83ef96387f14655fc854ddc3c6bd57): the text the SPDX id ``Apache-2.0`` names, untouched.
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
#: (distribution, extra or None, last vulnerable release, first fixed release, advisory).
SECURITY_FLOORS = [
    ("requests", None, "2.32.3", "2.32.4", "CVE-2024-47081: .netrc credentials sent to the wrong host"),
    ("starlette", "testing", "0.39.2", "0.40.0", "CVE-2024-47874: multipart/form-data DoS"),
    ("python-multipart", "testing", "0.0.17", "0.0.18", "CVE-2024-53981: multipart boundary DoS"),
]


@dataclasses.dataclass
class Built:
    wheel: Path
    sdist: Path
    #: The setuptools the distributions were built with: the lowest that ``[build-system]`` allows.
    setuptools: str


def _uv() -> str:
    uv = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if uv is None:
        pytest.skip("uv is needed to build the distributions (scripts/bootstrap.sh installs it into .venv)")
    return uv


def _pyproject() -> dict[str, Any]:
    import tomllib  # Python 3.11+: the checkout's suite runs on 3.11 (the matrix skips these tests)

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _build_requires() -> list[str]:
    return list(_pyproject()["build-system"]["requires"])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist, then the wheel from it (as ``python -m build`` does), with the **lowest**
    setuptools ``[build-system] requires`` allows, so a floor too old to build the project fails here."""
    if not (ROOT / "airflow_provider_stop").is_dir():
        pytest.skip("not a source checkout (the matrix runs a copy of the tests next to the installed wheel)")
    uv = _uv()
    out = tmp_path_factory.mktemp("dist")
    lowest = subprocess.run(
        [uv, "pip", "compile", "-", "--resolution", "lowest", "--no-header", "--no-annotate", "--quiet"],
        input="\n".join(_build_requires()),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    setuptools = next(line for line in lowest.splitlines() if line.startswith("setuptools=="))
    (out / "build-constraints.txt").write_text(setuptools + "\n")
    dist = out / "dist"
    result = subprocess.run(
        [uv, "build", "--out-dir", str(dist), "--build-constraint",
         str(out / "build-constraints.txt"), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"uv build with {setuptools} failed:\n{result.stderr[-3000:]}"
    return Built(
        wheel=next(dist.glob("*.whl")),
        sdist=next(dist.glob("*.tar.gz")),
        setuptools=setuptools.removeprefix("setuptools=="),
    )


def _wheel_member(built: Built, suffix: str) -> str:
    with zipfile.ZipFile(built.wheel) as whl:
        (name,) = [n for n in whl.namelist() if n.endswith(suffix) and ".dist-info/" in n]
        return whl.read(name).decode()


def _sdist_member(built: Built, path: str) -> str:
    with tarfile.open(built.sdist) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        member = sdist.extractfile(f"{top}/{path}")
        assert member is not None, path
        return member.read().decode()


def _metadata(built: Built) -> dict[str, email.message.Message]:
    return {
        "wheel METADATA": email.message_from_string(_wheel_member(built, ".dist-info/METADATA")),
        "sdist PKG-INFO": email.message_from_string(_sdist_member(built, "PKG-INFO")),
    }


def test_build_system_floor_is_a_setuptools_that_builds_the_spdx_license(built: Built) -> None:
    """``license = "Apache-2.0"`` (a PEP 639 SPDX expression) and ``license-files`` need setuptools 77;
    the fixture built with the lowest setuptools the floor lets in, and it is 77 or newer."""
    (setuptools,) = [Requirement(r) for r in _build_requires() if Requirement(r).name == "setuptools"]
    assert str(setuptools.specifier) == ">=77"
    assert Version(built.setuptools) >= Version("77")
    assert f"Generator: setuptools ({built.setuptools})" in _wheel_member(built, ".dist-info/WHEEL")


def test_wheel_and_sdist_ship_the_verbatim_apache_license(built: Built) -> None:
    assert _pyproject()["project"]["license-files"] == ["LICENSE"]
    shipped = {
        "LICENSE": (ROOT / "LICENSE").read_text(),
        "wheel": _wheel_member(built, ".dist-info/licenses/LICENSE"),
        "sdist": _sdist_member(built, "LICENSE"),
    }
    for where, text in shipped.items():
        assert " ".join(text.split()[:6]) == "Apache License Version 2.0, January 2004", where
        assert hashlib.sha256(text.encode()).hexdigest() == APACHE_2_0_SHA256, where


def test_metadata_declares_the_spdx_license(built: Built) -> None:
    for where, meta in _metadata(built).items():
        assert meta["License-Expression"] == "Apache-2.0", where
        assert meta.get_all("License-File") == ["LICENSE"], where
        assert meta["License"] is None, where  # the legacy free-text field is not written next to it


def _only_with(req: Requirement, extra: str | None) -> bool:
    """Whether ``req`` is required exactly with ``extra`` (``None``: always)."""
    if extra is None:
        return req.marker is None
    return req.marker is not None and req.marker.evaluate({"extra": extra}) and not req.marker.evaluate()


@pytest.mark.parametrize(("name", "extra", "vulnerable", "fixed", "advisory"), SECURITY_FLOORS)
def test_metadata_floors_exclude_the_vulnerable_releases(
    built: Built, name: str, extra: str | None, vulnerable: str, fixed: str, advisory: str
) -> None:
    for where, meta in _metadata(built).items():
        (req,) = [
            r
            for r in map(Requirement, meta.get_all("Requires-Dist") or [])
            if r.name == name and _only_with(r, extra)
        ]
        assert not req.specifier.contains(vulnerable), f"{where}: {req} lets in {vulnerable} ({advisory})"
        assert req.specifier.contains(fixed), f"{where}: {req} shuts out the fixed {fixed}"


def test_metadata_names_the_airflow_provider_classifiers_and_the_docs(built: Built) -> None:
    """PyPI lists the package as an Airflow provider, and Airflow's providers view links the docs site: it
    reads the ``Documentation`` project URL (apache/airflow issue 59576), which names the same site as
    ``mkdocs.yml`` and the provider info's ``external-doc-url``."""
    import re

    from airflow_provider_stop.get_provider_info import DOCS_URL

    site_url = re.search(r"^site_url:\s*(\S+)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    assert site_url is not None and site_url.group(1) == DOCS_URL
    (integration,) = get_provider_info()["integrations"]
    assert integration["external-doc-url"] == DOCS_URL
    for where, meta in _metadata(built).items():
        classifiers = meta.get_all("Classifier") or []
        assert "Framework :: Apache Airflow" in classifiers, where
        assert "Framework :: Apache Airflow :: Provider" in classifiers, where
        urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
        assert urls.get("Documentation") == DOCS_URL, where
