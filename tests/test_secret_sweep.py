"""Secrets, per service and path, on success and on failure: a recognisable key (every emulator's secret
contains LEAKCANARY) never reaches a log record at DEBUG, an exception or its traceback, XCom, a rendered
template field or the serialized trigger kwargs, and never follows a redirect to another host."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_stop import services
from airflow_provider_stop.testing.base import Emulator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import LogCapture, use_connection
from tests.matrix import DRIVERS, HOOK, PATHS, Driver, run_path

CANARY = "LEAKCANARY"
_ids = itertools.count()


@pytest.fixture(scope="module", params=list(DRIVERS))
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Driver, Emulator]]:
    drv = DRIVERS[request.param]
    with drv.make() as emu:
        yield drv, emu


def secret_forms(conn: dict[str, Any]) -> list[str]:
    """The secret as it travels: raw, and inside a Basic header (base64 of login:password)."""
    password = str(conn.get("password") or "")
    forms = [CANARY]
    if conn.get("login"):
        forms.append(base64.b64encode(f"{conn['login']}:{password}".encode()).decode())
    return forms


def stored(seen: dict[str, Any], outcome: Any) -> str:
    """Everything Airflow would keep: XCom (the result), rendered fields, trigger kwargs, events."""
    task = seen.get("task")
    fields = {f: getattr(task, f, None) for f in getattr(task, "template_fields", ())}
    if task is not None and hasattr(task, "render_template_fields"):
        task.render_template_fields({"params": {}})
        fields |= {f"rendered.{f}": getattr(task, f, None) for f in task.template_fields}
    blob = {
        "xcom": None if isinstance(outcome, BaseException) else outcome,
        "fields": fields,
        "trigger_kwargs": seen.get("trigger_kwargs"),
        "events": seen.get("events"),
    }
    return json.dumps(blob, default=str)


@pytest.mark.parametrize("outcome", ["success", "failure"])
@pytest.mark.parametrize("path", PATHS)
def test_secret_never_leaks(
    served: tuple[Driver, Emulator],
    path: str,
    outcome: str,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
) -> None:
    drv, emu = served
    tid = f"sec-{drv.service}-{next(_ids)}"
    drv.add(emu, tid)
    good = drv.connection(emu)
    assert CANARY in str(good["password"])
    use_connection(monkeypatch, f"{drv.service}_default", good)
    if path == "sensor":
        drv.hook().stop(tid, **drv.options)
    conn = good if outcome == "success" else {**good, "password": f"{good['password']}-WRONG"}
    use_connection(monkeypatch, f"{drv.service}_default", conn)
    emu.reset_log()

    seen: dict[str, Any] = {}
    result: Any
    try:
        result = run_path(drv, path, tid, 5.0, seen)
    except Exception as exc:
        result = exc
    if outcome == "success":
        assert not isinstance(result, BaseException), result
        assert emu.count() > 0
    else:
        assert isinstance(result, BaseException), result  # the failure path really failed
    texts = [logs.text(), stored(seen, result)]
    if isinstance(result, BaseException):
        texts += [repr(result), "".join(traceback.format_exception(result))]
    haystack = "\n".join(texts)
    for form in secret_forms(conn):
        assert form not in haystack, f"{form[:12]}... leaked"
    for token in getattr(emu, "tokens", {}):  # Amperity's issued access tokens are secrets too
        assert token not in haystack
    for kwargs in seen.get("trigger_kwargs", []):
        assert set(kwargs) == {
            "hook_class_path",
            "conn_id",
            "target_ids",
            "poll_interval",
            "deadline",
            "hook_params",
            "resume",
            "not_before",
        }
        assert kwargs["conn_id"] == f"{drv.service}_default"
    for kwargs in seen.get("start_kwargs", []):  # a task started in the triggerer: names, plain settings
        assert set(kwargs) == {"service", "target_field", "conn_id_field", "settings", drv.target_field} | {
            services.service(drv.service).conn_id_param
        }


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_credentials_never_follow_a_redirect(
    served: tuple[Driver, Emulator], mode: str, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    drv, emu = served
    tid = f"redir-{drv.service}-{next(_ids)}"
    drv.add(emu, tid)
    use_connection(monkeypatch, f"{drv.service}_default", drv.connection(emu))
    with FelderaEmulator() as elsewhere:
        emu.inject("redirect", status=307, location=f"{elsewhere.url}/collect", times=100)
        notifier = drv.cls("notifications", drv.notifier)(
            **{drv.target_field: tid}, **drv.options, hook_params=HOOK
        )
        if mode == "sync":
            notifier.notify({})
            report = notifier.result
        else:
            report = asyncio.run(notifier.async_notify({}))
        emu.clear_faults()
        assert elsewhere.count() == 0  # nothing, credentials least of all, reached the other host
    assert "redirects are not followed" in str(report["error"])
    assert CANARY not in logs.text() + json.dumps(report)
