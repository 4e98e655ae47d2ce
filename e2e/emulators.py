"""The five emulators for the end-to-end suite, in the driver's process (so it can read their state and
request logs), with a distinctive secret per connection and the demo's targets (``scripts/demo.py``).

The Feldera emulator is extended with two things only a real deployment needs: it counts *effective*
stops (a stop that started a transition, not an idempotent repeat), and it can hold a pipeline in
``Stopping`` or hold the answer to a stop until the driver lets go (restart scenarios).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import secrets
import sys
import threading
import time
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


def load_demo(code_root: Path) -> ModuleType:
    """``scripts/demo.py`` of the tree under test: its steps say which DAG stops which targets."""
    spec = importlib.util.spec_from_file_location("e2e_demo_steps", code_root / "scripts" / "demo.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {code_root / 'scripts' / 'demo.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Emulators:
    """The five emulators, their connections and their secrets."""

    feldera: E2EFelderaEmulator
    dataforseo: DataForSeoEmulator
    rainforest: RainforestEmulator
    amperity: AmperityEmulator
    datasift: DataSiftEmulator
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
        )
        for emulator in emulators.all().values():
            emulator.start()
        return emulators

    def all(self) -> dict[str, Emulator]:
        return {svc.name: getattr(self, svc.name) for svc in services.provided()}

    def stop(self) -> None:
        for emulator in self.all().values():
            emulator.stop()

    def connections(self) -> dict[str, dict[str, Any]]:
        return {f"{service}_default": emu.connection() for service, emu in self.all().items()}

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
        """Every secret a connection carries, in each form it travels (raw, Basic header, tokens)."""
        found: dict[str, str] = {}
        for service, conn in self.connections().items():
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
        return found
