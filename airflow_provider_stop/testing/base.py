"""Emulator framework: a real HTTP server on loopback per service, with request log and fault injection.

A service emulator subclasses :class:`Emulator`, lists its routes and keeps its own state. Every request
is recorded (method, raw path, query, headers) so tests can count what was sent, and faults can be
queued for the next matching requests: status codes with or without ``Retry-After``, dropped
connections (before the response or mid-body), slow answers, malformed, HTML or empty bodies; and the
answers of a hostile server: an error that echoes the request's credentials, a body sent a byte at a
time, an endless body, and bodies given verbatim (wrong types, paging cycles).

``handled`` records the requests the service itself acted on. A dropped connection, a status fault or
an HTML error page never reaches it. A slow answer does, after its delay, as on a real server whose
client gave up. A malformed or empty body does too: the service acts, and its answer is corrupted on
the way back.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An emulator's own class (``typing.Self`` needs Python 3.11).
_E = TypeVar("_E", bound="Emulator")

FaultKind = Literal[
    "status",
    "drop",
    "drop_mid_body",
    "slow",
    "malformed",
    "html",
    "empty",
    "redirect",
    "echo",
    "drip",
    "huge",
    "body",
]


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next ``times`` requests that match."""

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    times: int = 1
    method: str | None = None
    #: glob matched against the raw (still percent-encoded) path, e.g. ``*/stop``
    path: str | None = None
    #: Where a ``redirect`` fault sends the client (``status`` 301/302/307/308).
    location: str | None = None
    #: ``body``: the answers, each given verbatim, taken in turn by the matching requests (cycling).
    bodies: list[bytes] = field(default_factory=list)
    #: ``body``: extra response headers; ``huge``: how many bytes the endless body has at most.
    headers: dict[str, str] = field(default_factory=dict)
    size: int = 300 * 1024 * 1024
    served: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or fnmatch.fnmatchcase(path, self.path)
        )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # raw, percent-encoded, exactly as the client sent it
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float = field(default_factory=time.time)
    #: ``host:port`` of the client's TCP connection: distinct values = connections opened.
    client: str = ""


class Emulator:
    """Base of the service emulators: routes + state in subclasses, server and faults here."""

    #: Set from the service's registry entry by ``class XEmulator(Emulator, service="x")``.
    service: ClassVar[str]
    conn_type: ClassVar[str]

    def __init_subclass__(cls, *, service: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if service is not None:
            from airflow_provider_stop import services

            cls.service = services.service(service).name
            cls.conn_type = services.service(service).conn_type
            services.register_class(service, "emulator", cls)

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        #: Requests the service acted on (see the module docstring for which faults reach it).
        self.handled: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        #: Seconds every answer takes (a real service is not instant; lets tests see overlapping requests).
        self.latency = 0.0
        self.in_flight = 0
        #: Most requests being answered at once since the last ``reset_log`` (bounded-concurrency checks).
        self.peak_in_flight = 0

    # ---- what a service emulator provides ------------------------------------------------
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def error_response(self, status: int, message: str, code: str) -> Response:
        """The service's error body shape."""
        return JSONResponse({"message": message, "error_code": code}, status_code=status)

    def echo_response(self, status: int, message: str) -> Response:
        """An error whose message the service built from the request (``echo`` faults)."""
        return self.error_response(status, message, "Echo")

    def add_demo_data(self) -> None:
        """Create a few running targets (for ``serve --demo-data`` and the demo)."""
        raise NotImplementedError

    def connection(self) -> dict[str, Any]:
        """The Airflow connection (JSON form) that points at this emulator."""
        return {"conn_type": self.conn_type, "host": self.url}

    # ---- faults and the request log ------------------------------------------------------
    def inject(self, kind: FaultKind, **kwargs: Any) -> Fault:
        fault = Fault(kind=kind, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def target_state(self, target_id: str) -> str:
        """The target's state as the service would report it now (each emulator names its own reader)."""
        raise NotImplementedError

    # ---- the generic driving interface (shared test suites, benchmarks, demo) ---------------
    #: ``target_state`` of a stopped target.
    stopped_state: ClassVar[str]
    #: (method, raw-path glob) of the service's stop request.
    stop_route: ClassVar[tuple[str, str]]
    #: The attribute holding the targets by id, and their attribute that overrides the reported state.
    targets_attr: ClassVar[str]
    state_override_attr: ClassVar[str] = "status_override"

    def add_target(self, target_id: str) -> Any:
        """Create a running target with this id."""
        raise NotImplementedError

    def has_target(self, target_id: str) -> bool:
        """A target with this id exists."""
        return target_id in getattr(self, self.targets_attr)

    def override_state(self, target_id: str, state: str | None) -> None:
        """Make the target report ``state`` whatever happens (None: its real state again)."""
        setattr(getattr(self, self.targets_attr)[target_id], self.state_override_attr, state)

    def is_stopped(self, target_id: str) -> bool:
        return self.target_state(target_id) == self.stopped_state

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests received, optionally only one method and/or a raw-path glob."""
        return sum(
            1
            for r in list(self.requests)
            if (method is None or r.method == method.upper())
            and (path is None or fnmatch.fnmatchcase(r.path, path))
        )

    def handled_count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests the service acted on, optionally only one method and/or a raw-path glob."""
        return sum(
            1
            for r in list(self.handled)
            if (method is None or r.method == method.upper())
            and (path is None or fnmatch.fnmatchcase(r.path, path))
        )

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until no request is being answered: a request whose client gave up (a read timeout) is
        still acted on, late, and must be counted in the scenario that sent it."""
        deadline = time.monotonic() + timeout
        while self.in_flight:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def reset_log(self) -> None:
        self.requests.clear()
        self.handled.clear()
        self.peak_in_flight = 0

    # ---- ASGI ----------------------------------------------------------------------------
    def asgi(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        app = Starlette(routes=self.routes())

        async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            raw = scope.get("raw_path") or scope["path"].encode()
            path = raw.decode("latin-1").split("?", 1)[0]
            query = urllib.parse.parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            )
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            peer = scope.get("client") or ("", 0)
            record = RecordedRequest(scope["method"], path, query, headers, client=f"{peer[0]}:{peer[1]}")
            self.requests.append(record)
            # Route on the raw path so an encoded "/" in an id stays inside its segment.
            scope = {**scope, "path": path}
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                fault = self._take_fault(scope["method"], path)
                if fault is not None and fault.kind in ("malformed", "empty"):
                    self.handled.append(record)
                    await self._corrupt_answer(fault, app, scope, receive, send)
                    return
                if fault is not None and await self._apply_fault(fault, scope, receive, send):
                    return
                self.handled.append(record)
                await app(scope, receive, send)
            finally:
                self.in_flight -= 1

        return wrapper

    async def _corrupt_answer(
        self,
        fault: Fault,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Let the service act, then answer 200 with its body cut in half (malformed) or empty."""
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await app(scope, receive, capture)
        corrupted = b""
        if fault.kind == "malformed":
            corrupted = bytes(body[: len(body) // 2]) or b'{"deployment_status": "Runn'
        await Response(corrupted, status_code=200, media_type="application/json")(scope, receive, send)

    async def _apply_fault(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> bool:
        """Play a fault; True when the request is fully answered (or dropped)."""
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return False
        if fault.kind == "drop":
            _close_transport(send)
            return True
        if fault.kind == "drop_mid_body":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"400")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
            _close_transport(send)
            return True
        if fault.kind in ("drip", "huge", "body"):
            await self._stream_fault(fault, scope, send)
            return True
        if fault.kind == "echo":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            query = scope.get("query_string", b"").decode("latin-1")
            body = (await receive()).get("body", b"").decode("latin-1")
            auth = headers.get("authorization", "")
            # The credentials first: a client that shows only the start of a message must still see them.
            message = f"refused {auth!r} query={query!r} body={body!r} headers={headers}"
            await self.echo_response(fault.status, message)(scope, receive, send)
            return True
        if fault.kind == "status":
            response = self.error_response(fault.status, f"injected HTTP {fault.status}", "InjectedFault")
            if fault.retry_after is not None:
                response.headers["Retry-After"] = fault.retry_after
        elif fault.kind == "redirect":
            response = Response(b"", status_code=fault.status, headers={"Location": fault.location or "/"})
        else:  # html: a proxy's error page
            response = Response(
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
                status_code=fault.status or 502,
                media_type="text/html",
            )
        await response(scope, receive, send)
        return True

    async def _stream_fault(self, fault: Fault, scope: Scope, send: Send) -> None:
        """``drip``: a JSON body one byte every ``delay`` seconds; ``huge``: an endless body of up to
        ``size`` bytes, made as it is sent; ``body``: the next of ``bodies`` verbatim."""
        if fault.kind == "body":
            body = fault.bodies[fault.served % len(fault.bodies)] if fault.bodies else b""
            fault.served += 1
            headers = {"content-type": "application/json", **fault.headers}
            await Response(body, status_code=fault.status, headers=headers)(scope, _noop_receive, send)
            return
        raw = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        cycle = getattr(send, "__self__", None)  # uvicorn's: ``disconnected`` once the client hung up
        try:
            if fault.kind == "drip":
                for byte in b'{"message": "' + b"x" * 10_000:
                    if getattr(cycle, "disconnected", False):
                        return
                    await send({"type": "http.response.body", "body": bytes([byte]), "more_body": True})
                    await asyncio.sleep(fault.delay or 1.0)
            else:
                chunk = b"[" + b'"xxxxxxxxxxxxxxx",' * (65536 // 18)
                sent = 0
                while sent < fault.size and not getattr(cycle, "disconnected", False):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    sent += len(chunk)
            await send({"type": "http.response.body", "body": b""})
        except OSError:  # the client hung up, as it should
            return

    # ---- server lifecycle ----------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self: _E, port: int = 0) -> _E:
        """Serve on 127.0.0.1 in a background thread; returns once requests are accepted."""
        import uvicorn

        config = uvicorn.Config(
            self.asgi(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name=f"{self.service}-emulator", daemon=True)
        self._thread.start()
        started = threading.Event()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.service} emulator failed to start on port {port}")
            started.wait(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self: _E) -> _E:
        return self.start() if self.port is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SlidingWindow:
    """At most ``limit`` requests in any ``seconds``: the services' documented rate limits. The limit
    is passed per call, so a test may change an emulator's setting while it runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()

    def allow(self, limit: int) -> bool:
        """Count one request, or return False (and count nothing) when the window is full."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if len(self._times) >= limit:
                return False
            self._times.append(now)
            return True

    def used(self) -> int:
        with self._lock:
            self._expire(time.monotonic())
            return len(self._times)


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}


def _close_transport(send: Send) -> None:
    """Drop the TCP connection under uvicorn, as a crashing server or a proxy reset would."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # pragma: no cover - only uvicorn's protocols are supported
        raise RuntimeError("cannot drop the connection: not served by uvicorn")
    transport.close()
    if cycle is not None and hasattr(cycle, "response_complete"):
        cycle.response_complete = True


def json_body(request_body: bytes) -> Any:
    return json.loads(request_body) if request_body else None


async def read_json(request: Request) -> Any:
    return json_body(await request.body())


def unquote(value: str) -> str:
    """Decode a path parameter taken from the raw path."""
    return urllib.parse.unquote(value)
