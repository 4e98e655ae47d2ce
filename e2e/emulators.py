"""The five emulators for the end-to-end suite, in the driver's process (so it can read their state and
request logs), with a distinctive secret per connection and the demo's targets (``scripts/demo.py``).

The Feldera emulator is extended with two things only a real deployment needs: it counts *effective*
stops (a stop that started a transition, not an idempotent repeat), and it can hold a pipeline in
``Stopping`` or hold the answer to a stop until the driver lets go (restart scenarios).

Two connections besides the five defaults carry secrets the provider must keep out of every text:
``feldera_newline``, whose key ends in a newline (as a key read from a mounted secret file does), and
``feldera_echo``, to a second Feldera emulator that can answer with an error quoting the request's
headers (its ``Authorization``), query and body: a service that echoes the key.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_stop import services
from airflow_provider_stop.testing.amperity import AmperityEmulator
from airflow_provider_stop.testing.base import Emulator
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
from airflow_provider_stop.testing.datasift import DataSiftEmulator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from airflow_provider_stop.testing.rainforest import RainforestEmulator

#: The longest the Feldera emulator holds a stop's answer for the driver (a bound, not a sleep).
HOLD_LIMIT_SECONDS = 120.0


class E2EFelderaEmulator(FelderaEmulator):
    """Feldera with effective-stop accounting and driver-controlled holds."""

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        #: (pipeline, time) of every stop that started a transition.
        self.effective_stops: list[tuple[str, float]] = []
        #: Pipelines kept in ``Stopping`` after their stop, until ``release``.
        self.hold_stopping: set[str] = set()
        #: Pipelines whose (first) stop answer waits, after the stop took effect, until ``release``.
        self.hold_answer: dict[str, threading.Event] = {}
        #: Set when a held stop arrived; value: the client's ``host:port`` (which process sent it).
        self.stop_arrived: dict[str, tuple[threading.Event, list[str]]] = {}

    def _schedule_forced(self, pipeline: Any, now: float, step: Any) -> None:
        self.effective_stops.append((pipeline.name, now))
        super()._schedule_forced(pipeline, now, step)
        if pipeline.name in self.hold_stopping:
            pipeline.status_override = "Stopping"

    def effective(self, name: str) -> int:
        return sum(1 for n, _ in self.effective_stops if n == name)

    def release(self, name: str) -> None:
        """Let a held pipeline reach its real state and a held answer go out."""
        with self._state_lock:
            self.hold_stopping.discard(name)
            pipeline = self.pipelines.get(name)
            if pipeline is not None:
                pipeline.status_override = None
        if name in self.hold_answer:
            self.hold_answer.pop(name).set()

    def watch_stop(self, name: str, hold_answer: bool) -> tuple[threading.Event, list[str]]:
        arrived: tuple[threading.Event, list[str]] = (threading.Event(), [])
        self.stop_arrived[name] = arrived
        if hold_answer:
            self.hold_answer[name] = threading.Event()
        return arrived

    async def handle_stop(self, request: Request) -> Response:
        response = await super().handle_stop(request)
        name = request.path_params["name"]
        watched = self.stop_arrived.pop(name, None)
        if watched is not None:
            peer = request.client
            watched[1].append(f"{peer.host}:{peer.port}" if peer else "")
            watched[0].set()
            held = self.hold_answer.get(name)
            if held is not None:
                deadline = time.monotonic() + HOLD_LIMIT_SECONDS
                while not held.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
        return response


class EchoingFelderaEmulator(E2EFelderaEmulator):
    """The Feldera of ``feldera_echo``. Its ``echo`` errors start with the credentials the request
    carried, as typed and percent-encoded (as "invalid API key '…'" does), then quote the request. A
    provider shows only the start of a service's message (about 200 characters): the headers come
    too late to be shown, the credentials at the start do not."""

    def echo_response(self, status: int, message: str) -> Response:
        sent = re.search(r"'authorization': '([^']*)'", message)
        if sent:
            value = sent.group(1)
            message = f"invalid credentials {value!r} (as sent: {urllib.parse.quote(value)}); {message}"
        return super().echo_response(status, message)


def load_demo(code_root: Path) -> ModuleType:
    """``scripts/demo.py`` of the tree under test: its steps say which DAG stops which targets."""
    spec = importlib.util.spec_from_file_location("e2e_demo_steps", code_root / "scripts" / "demo.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {code_root / 'scripts' / 'demo.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def secret_forms(label: str, secret: str) -> dict[str, str]:
    """Every form ``secret`` can take in a text, by name (forms that coincide share one entry): raw,
    its stripped key and the key's token (after ``apikey:``), escaped as ``repr`` and as JSON show it (a
    key with its newline: ``KEY\\n``) and as a JSON log line shows a ``repr`` of it, percent-encoded
    (with and without the newline), base64, and the ``Bearer`` header value. Written out here, not
    taken from the provider's redactor it checks."""
    key = secret.strip()
    candidates = [
        ("raw", secret),
        ("key", key),
        ("token", key.removeprefix("apikey:")),
        ("repr", repr(secret)[1:-1]),
        ("JSON", json.dumps(secret)[1:-1]),
        # A JSON log line holding an error that quoted it with repr: KEY\\n (two backslashes, then n).
        ("repr in JSON", json.dumps(repr(secret)[1:-1])[1:-1]),
        ("percent-encoded", urllib.parse.quote(secret, safe="")),
        ("percent-encoded key", urllib.parse.quote(key, safe="")),
        ("base64 key", base64.b64encode(key.encode()).decode()),
        ("Bearer", f"Bearer {key}"),
    ]
    names: dict[str, list[str]] = {}
    for what, value in candidates:
        names.setdefault(value, []).append(what)
    return {f"{label} {' = '.join(whats)}": value for value, whats in names.items()}


@dataclass
class Emulators:
    """The five emulators, their connections and their secrets; and the hostile cases: a second Feldera
    emulator that echoes its key back, and a Feldera key with its newline."""

    feldera: E2EFelderaEmulator
    dataforseo: DataForSeoEmulator
    rainforest: RainforestEmulator
    amperity: AmperityEmulator
    datasift: DataSiftEmulator
    #: A second Feldera (its own key) for ``feldera_echo``; ``e2e/test_secrets.py`` makes it echo requests.
    feldera_echo: EchoingFelderaEmulator
    #: ``feldera_newline``'s password: a Feldera key as read from a file, its newline kept.
    newline_key: str
    extra_secrets: list[str] = field(default_factory=list)

    @classmethod
    def start(cls) -> Emulators:
        def secret(service: str) -> str:
            return f"E2E{service}SECRET{secrets.token_hex(8)}"

        emulators = cls(
            feldera=E2EFelderaEmulator(api_key=f"apikey:{secret('feldera')}"),
            dataforseo=DataForSeoEmulator(password=secret("dataforseo")),
            rainforest=RainforestEmulator(api_key=secret("rainforest")),
            amperity=AmperityEmulator(client_secret=secret("amperity")),
            datasift=DataSiftEmulator(api_key=secret("datasift")),
            feldera_echo=EchoingFelderaEmulator(api_key=f"apikey:{secret('felderaecho')}"),
            newline_key=f"apikey:{secret('felderanewline')}\n",
        )
        for emulator in [*emulators.all().values(), emulators.feldera_echo]:
            emulator.start()
        return emulators

    def all(self) -> dict[str, Emulator]:
        """The five services' emulators (the echoing one is not among them)."""
        return {svc.name: getattr(self, svc.name) for svc in services.provided()}

    def stop(self) -> None:
        for emulator in [*self.all().values(), self.feldera_echo]:
            emulator.stop()

    def hostile_connections(self) -> dict[str, dict[str, Any]]:
        """``feldera_newline`` (the main Feldera emulator, a key with its newline: refused when read) and
        ``feldera_echo`` (the echoing emulator, with its own valid key)."""
        newline = {**self.feldera.connection(), "password": self.newline_key}
        return {"feldera_newline": newline, "feldera_echo": self.feldera_echo.connection()}

    def connections(self) -> dict[str, dict[str, Any]]:
        found = {f"{service}_default": emu.connection() for service, emu in self.all().items()}
        return {**found, **self.hostile_connections(), **self.tenant_connections()}

    def tenant_connections(self) -> dict[str, dict[str, Any]]:
        """A second Feldera connection (tenant ``tenant-b`` of the same server): mapped stops over
        connection ids send each stop with its own connection's tenant header."""
        conn = self.feldera.connection()
        return {"feldera_tenant_b": {**conn, "extra": {**(conn.get("extra") or {}), "tenant": "tenant-b"}}}

    def set_stop_seconds(self, seconds: float) -> None:
        """How long every service takes from a stop to its stopped state."""
        self.feldera.settings.stop_lag_seconds = min(1.0, seconds / 4)
        self.feldera.settings.stopping_seconds = seconds - self.feldera.settings.stop_lag_seconds
        self.dataforseo.settings.stop_delay_seconds = seconds
        self.rainforest.settings.stop_delay_seconds = seconds
        self.amperity.settings.cancel_seconds = seconds
        self.datasift.settings.stop_delay_seconds = seconds

    def seed_demo(self, demo: ModuleType) -> None:
        """The demo's running targets (``scripts/demo.py``: its steps and the two left alone)."""
        demo.seed(self.feldera, self.dataforseo, self.rainforest, self.amperity, self.datasift)

    def state(self, service: str, target: str) -> str:
        return self.all()[service].target_state(target)

    def secrets(self) -> dict[str, str]:
        """Every secret a connection carries, in each form it travels (raw, Basic header, tokens); for the
        hostile connections, every form ``secret_forms`` names."""
        found: dict[str, str] = {}
        defaults = {f"{service}_default": emu.connection() for service, emu in self.all().items()}
        for service, conn in defaults.items():
            password = str(conn.get("password") or "")
            if password:
                found[f"{service} password"] = password
                if password.startswith("apikey:"):
                    found[f"{service} key"] = password.removeprefix("apikey:")
            if conn.get("login") and password:
                pair = f"{conn['login']}:{password}"
                found[f"{service} login:password"] = pair
                found[f"{service} Basic"] = base64.b64encode(pair.encode()).decode()
        for i, token in enumerate(self.amperity.tokens):
            found[f"amperity OAuth token {i}"] = token
        for conn_id, conn in self.hostile_connections().items():
            found.update(secret_forms(conn_id, str(conn["password"])))
        return found
