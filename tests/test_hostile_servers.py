"""A hostile or broken server, every service, every path: no form of a secret anywhere, the provider's
own error class, a bound on time and memory.

Cases: a credential with a control character, the key echoed in an error body, a body sent one byte a
second, a 300 MB body, wrong types, paging cycles, credentials in the URL. Paths: the sync path (an
operator that stops and waits on the worker), the async path (the trigger, rebuilt as the triggerer
builds it) and Airflow's connection test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import tracemalloc
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_stop import services
from airflow_provider_stop.hooks.errors import (
    InvalidInputError,
    MalformedResponseError,
    RequestDeadlineError,
    ResponseTooLargeError,
    StopProviderError,
)
from airflow_provider_stop.testing.base import Emulator
from airflow_provider_stop.triggers.wait import StopWaitTrigger
from tests.conftest import LogCapture, use_connection
from tests.matrix import DRIVERS, SETUP, Driver, first_event, rebuilt

#: One attempt a request, a 1 s request deadline, a 1 MiB answer cap: each case's bound is tight.
HOSTILE_HOOK: dict[str, Any] = {
    "max_attempts": 1,
    "retry_min_wait": 0.01,
    "retry_max_wait": 0.05,
    "request_timeout": 1.0,
    "max_response_bytes": 1024 * 1024,
}
#: What a path may take beyond one request deadline (set-up, the emulator, a second request).
SLACK = 1.0
#: Peak memory (tracemalloc) of one path against a 300 MB body with the 1 MiB cap.
MEMORY_BOUND = 24 * 1024 * 1024
PATHS = ("sync", "async", "test_connection")
CASES = ("control_char", "echo", "drip", "huge", "wrong_types", "paging_cycle", "url_credentials")
#: Bodies of the wrong types, cycled by the requests they answer: an object whose every field any
#: service reads has a wrong type, a list, a string, a number.
WRONG_TYPES = [
    json.dumps(
        {
            "status_code": "oops",
            "status_message": ["x"],
            "tasks": ["task", 7, None],
            "deployment_status": 7,
            "deployment_error": {"message": ["y"]},
            "status": [],
            "state": {},
            "request_info": "x",
            "collection": "x",
            "collections": {"a": 1},
            "sources": "x",
            "data": 5,
            "id": [1],
            "next_token": {"a": 1},
            "total_pages": "١٢",
            "pages": "²",
        }
    ).encode(),
    b"[1, 2, 3]",
    b'"oops"',
    b"12345678901234567890",
]
#: Per service, the answer of the wrong type that reached past its parser (taken first).
SERVICE_WRONG_TYPES: dict[str, tuple[list[bytes], dict[str, str]]] = {
    "dataforseo": (
        [
            json.dumps(
                {
                    "version": "0.1",
                    "status_code": 20000,
                    "status_message": "Ok.",
                    "tasks": [{"id": "t", "status_code": "oops", "status_message": "m", "result": None}],
                }
            ).encode()
        ],
        {},
    ),
    "datasift": ([json.dumps({"id": "s", "status": "running"}).encode()], {"X-RateLimit-Remaining": "²"}),
    "amperity": ([json.dumps({"id": "wr", "state": 7, "name": ["x"]}).encode()], {}),
    "rainforest": (
        [
            json.dumps(
                {"request_info": {"success": "yes", "message": 5}, "collection": {"status": 7}}
            ).encode()
        ],
        {},
    ),
    "feldera": ([json.dumps({"deployment_status": ["Running"], "deployment_error": 7}).encode()], {}),
}
#: The status an echoing server answers with, per service: the ones whose error paths quoted the
#: service's text (Rainforest's 402, DataSift's 429, DataForSEO's envelope error in a 200).
ECHO_STATUS = {"rainforest": 402, "datasift": 429, "dataforseo": 200}
RUNNING = {"status": "running", "state": "running"}
#: A list that pages in a cycle: (the list's route glob, the bodies it answers in turn). Services whose
#: paging the server cannot steer (Feldera's one-page list, DataSift's client-counted pages are still
#: given a repeating answer) or that have no list (DataForSEO) are left out of this case.
PAGING_CYCLES: dict[str, tuple[str, list[Any]]] = {
    "amperity": (
        "/api/workflow/runs",
        [
            {"data": [{"id": "wr-a", **RUNNING}], "next_token": "A"},
            {"data": [{"id": "wr-b", **RUNNING}], "next_token": "B"},
        ],
    ),
    "rainforest": (
        "/collections",
        [{"collections": [{"id": "c-1", **RUNNING}], "total_pages": 5, "current_page": 1}],
    ),
    "datasift": ("*/source/get", [{"sources": [{"id": "s-1", **RUNNING}], "count": 100, "pages": 5}]),
}
SERVICES = [name for name in DRIVERS if name in SETUP]


def secret_forms(secret: str, login: str | None) -> set[str]:
    """Every way the secret could be written down: raw, escaped as repr and JSON show it,
    percent-encoded, base64 alone and as HTTP Basic, with its trailing newline escaped."""
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
        repr(secret + "\n")[1:-1],
    }
    if login:
        forms.add(base64.b64encode(f"{login}:{secret}".encode()).decode())
    return forms


@dataclass
class Outcome:
    """What one path left behind: its result, its error, the texts a user or Airflow may see."""

    result: Any = None
    error: BaseException | None = None
    seconds: float = 0.0
    peak_bytes: int = 0
    texts: list[str] = field(default_factory=list)

    def everything(self, logs: LogCapture) -> str:
        parts = [*self.texts, logs.text(), json.dumps(self.result, default=str)]
        if self.error is not None:
            parts += [str(self.error), repr(self.error), repr(getattr(self.error, "__dict__", {}))]
        return "\n".join(parts)


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, Emulator]]:
    """One emulator per service for the module, started when a case first needs it."""
    started: dict[str, Emulator] = {}
    yield started
    for emu in started.values():
        emu.stop()


def run_path(drv: Driver, emu: Emulator, path: str, case: str, tid: str) -> Outcome:
    """One path against ``tid``; never raises (the outcome holds the error)."""
    outcome = Outcome()
    operator_cls = drv.cls("operators", drv.operator)
    started = time.monotonic()
    tracemalloc.start()
    try:
        if path == "test_connection":
            ok, message = import_hook(operator_cls)(**HOSTILE_HOOK).test_connection()
            outcome.result, outcome.texts = ok, [message]
        elif case == "paging_cycle":
            hook = import_hook(operator_cls)(**HOSTILE_HOOK)
            if path == "sync":
                outcome.result = [s.to_dict() for s in hook.list_targets()]
            else:
                outcome.result = asyncio.run(_awalk(hook))
        elif path == "sync":
            operator = operator_cls(
                task_id="hostile",
                **{drv.target_field: tid},
                **drv.options,
                hook_params=HOSTILE_HOOK,
                poll_interval=0.05,
                timeout=3.0,
                wait_for_completion=True,
                deferrable=False,
            )
            outcome.result = operator.execute({})
        else:
            trigger = StopWaitTrigger(
                hook_class_path=services.class_path(operator_cls.hook_class()),
                conn_id=services.service(drv.service).default_conn_id,
                target_ids=[tid],
                poll_interval=0.05,
                deadline=time.time() + 3.0,
                hook_params=HOSTILE_HOOK,
            )
            event = asyncio.run(first_event(rebuilt(trigger)))
            outcome.result, outcome.texts = event, [json.dumps(event, default=str)]
    except Exception as exc:
        outcome.error = exc
    finally:
        outcome.peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        outcome.seconds = time.monotonic() - started
    return outcome


def import_hook(operator_cls: Any) -> Any:
    return operator_cls.hook_class()


async def _awalk(hook: Any) -> list[dict[str, Any]]:
    async with hook.async_client() as client:
        walk = await hook.awalk_list(client)
    return [s.to_dict() for s in walk.statuses.values()]


def error_of(outcome: Outcome) -> tuple[str, str]:
    """(error class name, message) of whichever way the path reported its failure."""
    if outcome.error is not None:
        return type(outcome.error).__name__, str(outcome.error)
    result = outcome.result
    if isinstance(result, dict) and result.get("status") == "error":
        return str(result.get("error_class", "")).rsplit(".", 1)[-1], str(result.get("message"))
    if isinstance(result, dict) and result.get("status") == "timeout":
        return "StopTimeoutError", str(result.get("message"))
    if outcome.texts and result is False:
        return "test_connection", outcome.texts[0]
    return "", ""


def combos() -> list[Any]:
    out = []
    for svc in SERVICES:
        for case in CASES:
            for path in PATHS:
                if case == "paging_cycle" and (svc not in PAGING_CYCLES or path == "test_connection"):
                    continue
                out.append(pytest.param(svc, case, path, id=f"{svc}-{case}-{path}"))
    return out


def prepare(drv: Driver, emu: Emulator, case: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str | None]:
    """Set the case up; returns (the secret to look for, the login beside it)."""
    conn = drv.connection(emu)
    secret = str(conn["password"])
    login = conn.get("login")
    if case == "control_char":
        conn = {**conn, "password": secret + "\n"}
    elif case == "url_credentials":
        parts = urllib.parse.urlsplit(emu.url)
        conn = {**conn, "host": f"{parts.scheme}://user:{secret}@{parts.netloc}"}
    elif case == "echo":
        emu.inject("echo", status=ECHO_STATUS.get(drv.service, 400), times=10**6)
    elif case == "drip":
        emu.inject("drip", delay=0.5, times=10**6)
    elif case == "huge":
        emu.inject("huge", times=10**6)
    elif case == "wrong_types":
        first, headers = SERVICE_WRONG_TYPES.get(drv.service, ([], {}))
        emu.inject("body", status=200, bodies=first + WRONG_TYPES, headers=headers, times=10**6)
    elif case == "paging_cycle":
        route, bodies = PAGING_CYCLES[drv.service]
        emu.inject(
            "body", status=200, path=route, bodies=[json.dumps(b).encode() for b in bodies], times=10**6
        )
    use_connection(monkeypatch, services.service(drv.service).default_conn_id, conn)
    return secret, login


#: The provider's error classes each case must end in (any ``StopProviderError`` where None).
EXPECTED: dict[str, tuple[type[StopProviderError], ...] | None] = {
    "control_char": (InvalidInputError,),
    "url_credentials": (InvalidInputError,),
    "drip": (RequestDeadlineError,),
    "huge": (ResponseTooLargeError,),
    "paging_cycle": None,
    "echo": None,
    "wrong_types": (MalformedResponseError,),
}


@pytest.mark.parametrize(("service", "case", "path"), combos())
def test_hostile_server(
    emulators: dict[str, Emulator],
    service: str,
    case: str,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
) -> None:
    drv = DRIVERS[service]
    if service not in emulators:
        emulators[service] = drv.make().start()
    emu = emulators[service]
    emu.clear_faults()
    emu.reset_log()
    tid = f"hostile-{case}-{path}"
    drv.add(emu, tid)
    secret, login = prepare(drv, emu, case, monkeypatch)

    outcome = run_path(drv, emu, path, case, tid)

    text = outcome.everything(logs)
    leaked = sorted(f for f in secret_forms(secret, login) if f in text)
    assert not leaked, f"secret forms {leaked} found in what the {path} path left"
    if outcome.error is not None:
        assert isinstance(outcome.error, StopProviderError), f"not the provider's error: {outcome.error!r}"
    kind, message = error_of(outcome)
    expected = EXPECTED[case]
    if case in ("control_char", "url_credentials"):
        assert kind, f"{case}: the {path} path did not fail: {outcome.result!r}"
        assert emu.count() == 0, "a request was sent with a credential the provider should have refused"
        if case == "control_char":
            assert "password" in message, message
    elif case in ("drip", "huge") and (path != "test_connection" or kind):
        names = {c.__name__ for c in expected or ()}
        assert kind in names or any(n in message for n in names) or _said(message, case), (kind, message)
    elif case == "wrong_types" and path != "test_connection":
        assert kind, f"wrong types were accepted on the {path} path: {outcome.result!r}"
    elif case in ("echo", "paging_cycle"):
        assert kind, f"{case}: the {path} path did not fail: {outcome.result!r}"
    bound = HOSTILE_HOOK["request_timeout"] * (2 if path == "sync" else 1) + SLACK
    if case in ("drip", "huge"):
        assert outcome.seconds <= bound, f"{case} on the {path} path took {outcome.seconds:.1f}s (> {bound}s)"
    if case == "huge":
        assert outcome.peak_bytes <= MEMORY_BOUND, f"peak {outcome.peak_bytes / 2**20:.0f} MiB"


def _said(message: str, case: str) -> bool:
    """The message names the bound that was hit (a batch error quotes each target's)."""
    return ("did not finish" in message) if case == "drip" else ("max_response_bytes" in message)
