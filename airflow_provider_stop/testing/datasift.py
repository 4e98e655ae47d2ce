"""DataSift Managed Sources v1.6 emulator.

Modelled on the docs (https://dev.datasift.com/docs/platform/api/rest-api/endpoints/sourcestop,
``.../sourceget``, ``.../http-response-codes``, ``.../api-rate-limiting``) and the traffic recorded by
the official Ruby client (GitHub ``datasift/datasift-ruby``, ``test/fixtures/cassettes/v1_6/source/``):
create, start, stop, get (one, or a page of the list), the raw ``Authorization: user:key`` header,
``{"error": ...}`` bodies, and the hourly credit budget with its ``X-Ratelimit-*`` headers, which runs
out.

Strict by default: a query parameter the docs do not list is answered 400, a method a route does not
take 405 (``wrong_method_status``), an unknown path 404, always as ``{"error": ...}``; ``lenient=True``
ignores unknown query parameters. Which stop forms the server takes is unconfirmed (the docs: PUT with
a form body; the official clients: POST with a JSON body): ``accepted_stop_forms`` accepts only one,
or both (the default), or others.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_stop.testing.base import Emulator

COSTS = {"get": 5, "stop": 5, "start": 5, "create": 25}
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
#: The documented query parameters of ``GET source/get``.
GET_PARAMS = frozenset({"id", "source_type", "page", "per_page", "search"})


@dataclass
class DataSiftSettings:
    username: str = "emulator"
    api_key: str = "emulator-api-key-0123456789abcdef"
    version: str = "v1.6"
    credits_per_hour: int = 10_000
    #: HTTP status when the credits are spent (403 or 429; unconfirmed).
    exhausted_status: int = 403
    #: Stopping an already-stopped source: 409 (seed doc), 400 (pre-v1.6) or 200 (idempotent).
    stopped_stop_status: int = 409
    unknown_message: str = 'Could not find the specified source instance "{id}"'
    #: Seconds a stopped source still reads ``running`` (recorded: 0, synchronous).
    stop_delay_seconds: float = 0.0
    #: Which stop requests are accepted: any of "PUT form", "PUT json", "POST form", "POST json".
    #: A method none of them uses is answered ``wrong_method_status``; an accepted method with a body
    #: it does not read, 400 "id is required" (the server found no id).
    accepted_stop_forms: tuple[str, ...] = ("PUT form", "POST json")
    #: The answer to a method a route does not take: 405 (documented code) or 404 (no such route).
    wrong_method_status: int = 405
    #: Ignore query parameters the docs do not list (the default refuses them with 400).
    lenient: bool = False
    #: The largest ``per_page`` served. The docs give no maximum ("an integer", default 20), so
    #: whether the server has one is unconfirmed: every plausible answer is a setting.
    max_per_page: int = 500
    #: A larger ``per_page``: ``cap`` serves ``max_per_page`` (and says so in the answer's
    #: ``per_page`` and ``pages``), ``reject`` answers 400.
    over_max_per_page: str = "cap"


@dataclass
class Source:
    id: str
    name: str
    source_type: str = "instagram"
    status: str = "stopped"
    stopped_at: float | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))
    status_override: str | None = None


class DataSiftEmulator(Emulator, service="datasift"):
    def __init__(self, settings: DataSiftSettings | None = None, **overrides: Any) -> None:
        super().__init__()
        self.settings = settings or DataSiftSettings(**overrides)
        self.sources: dict[str, Source] = {}
        self._spent = 0
        self._period_start = time.time()
        self._state_lock = threading.RLock()

    def connection(self) -> dict[str, Any]:
        return {
            "conn_type": self.conn_type,
            "host": self.url,
            "login": self.settings.username,
            "password": self.settings.api_key,
            "extra": {"api_version": self.settings.version},
        }

    # ---- set-up ---------------------------------------------------------------------------
    def add_source(self, source_id: str | None = None, *, status: str = "running", **attrs: Any) -> Source:
        source = Source(
            id=source_id or uuid.uuid4().hex, name=attrs.pop("name", "source"), status=status, **attrs
        )
        with self._state_lock:
            self.sources[source.id] = source
        return source

    def add_demo_data(self) -> None:
        self.add_source("6b77d9700a9a473a9e44ade033062d02", name="brand mentions")
        self.add_source(
            "9bb81b7b96f34bbc9880394e892bad07", name="campaign hashtags", source_type="facebook_page"
        )

    def status_of(self, source_id: str) -> str:
        with self._state_lock:
            return self._status(self.sources[source_id], time.time())

    def target_state(self, target_id: str) -> str:
        return self.status_of(target_id)

    stopped_state = "stopped"
    stop_route = ("PUT", "/v1.6/source/stop")
    targets_attr = "sources"

    def add_target(self, target_id: str) -> Any:
        return self.add_source(target_id)

    def _status(self, source: Source, now: float) -> str:
        if source.status_override:
            return source.status_override
        if source.stopped_at is not None:
            return "stopped" if now >= source.stopped_at + self.settings.stop_delay_seconds else "running"
        return source.status

    def _json(self, source: Source, now: float) -> dict[str, Any]:
        return {
            "id": source.id,
            "status": self._status(source, now),
            "source_type": source.source_type,
            "name": source.name,
            "auth": [
                {
                    "identity_id": uuid.uuid5(uuid.NAMESPACE_OID, source.id).hex,
                    "expires_at": None,
                    "parameters": {"value": "<redacted>", "refresh_token": None},
                }
            ],
            "resources": [],
            "parameters": {},
            "created_at": source.created_at,
        }

    # ---- HTTP -----------------------------------------------------------------------------
    def _headers(self, cost: int) -> dict[str, str]:
        reset = int(self._period_start + 3600)
        return {
            "X-Api-Version": self.settings.version.lstrip("v"),
            "X-Datasift-Request-Id": uuid.uuid4().hex,
            "X-Ratelimit-Limit": str(self.settings.credits_per_hour),
            "X-Ratelimit-Remaining": str(max(0, self.settings.credits_per_hour - self._spent)),
            "X-Ratelimit-Cost": str(cost),
            "X-Ratelimit-Reset": str(reset),
            "X-Ratelimit-Reset-Ttl": str(max(0, int(reset - time.time()))),
        }

    def error_response(self, status: int, message: str, code: str, cost: int = 0) -> Response:
        return JSONResponse({"error": message}, status_code=status, headers=self._headers(cost))

    def _charge(self, request: Request, action: str) -> Response | None:
        """Auth, then the credit budget: a call that cannot be paid is refused."""
        if request.headers.get("authorization") != f"{self.settings.username}:{self.settings.api_key}":
            return JSONResponse({"error": "Authorization failed"}, status_code=401)
        cost = COSTS[action]
        with self._state_lock:
            if time.time() >= int(self._period_start + 3600):  # the instant X-Ratelimit-Reset announces
                self._period_start, self._spent = time.time(), 0
            if self._spent + cost > self.settings.credits_per_hour:
                return self.error_response(
                    self.settings.exhausted_status, "API Rate Limit Exceeded", "", cost
                )
            self._spent += cost
        return None

    def reset_budget_in(self, seconds: float, remaining: int | None = None) -> None:
        """Test helper: make the current hourly period end in ``seconds``, with ``remaining`` credits."""
        with self._state_lock:
            self._period_start = time.time() + seconds - 3600
            if remaining is not None:
                self._spent = self.settings.credits_per_hour - remaining

    def _ok(self, body: Any, action: str, status: int = 200) -> Response:
        return JSONResponse(body, status_code=status, headers=self._headers(COSTS[action]))

    async def _id(self, request: Request) -> tuple[str, str]:
        """The ``id`` parameter and the form it came in (``form`` or ``json``)."""
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                return str((json.loads(raw or b"{}") or {}).get("id") or ""), "json"
            except ValueError:
                return "", "json"
        form = await request.form()
        return str(form.get("id") or request.query_params.get("id") or ""), "form"

    def _query_refused(self, request: Request, allowed: frozenset[str]) -> Response | None:
        if self.settings.lenient:
            return None
        for name in request.query_params:
            if name not in allowed:
                return self.error_response(400, f"{name} is not a valid parameter", "", 0)
        return None

    async def handle_get(self, request: Request) -> Response:
        if refused := self._charge(request, "get"):
            return refused
        if refused := self._query_refused(request, GET_PARAMS):
            return refused
        now = time.time()
        sid = request.query_params.get("id")
        with self._state_lock:
            if sid:
                source = self.sources.get(sid)
                if source is None:
                    return self.error_response(404, self.settings.unknown_message.format(id=sid), "", 5)
                return self._ok(self._json(source, now), "get")
            wanted = request.query_params.get("source_type")
            items = [
                self._json(s, now) for s in self.sources.values() if not wanted or s.source_type == wanted
            ]
        try:
            page = max(1, int(request.query_params.get("page", "1")))
            per_page = max(1, int(request.query_params.get("per_page", "20")))
        except ValueError:
            return self.error_response(400, "page and per_page must be integers", "", 5)
        if per_page > self.settings.max_per_page:
            if self.settings.over_max_per_page == "reject":
                message = f"per_page must be at most {self.settings.max_per_page}"
                return self.error_response(400, message, "", 5)
            per_page = self.settings.max_per_page
        pages = (len(items) + per_page - 1) // per_page
        chunk = items[(page - 1) * per_page : page * per_page]
        return self._ok(
            {"count": len(items), "page": page, "pages": pages, "per_page": per_page, "sources": chunk}, "get"
        )

    async def handle_stop(self, request: Request) -> Response:
        accepted = self.settings.accepted_stop_forms
        if not any(f.startswith(f"{request.method} ") for f in accepted):
            return self._wrong_method(request)  # refused by routing: nothing charged
        if refused := self._charge(request, "stop"):
            return refused
        if refused := self._query_refused(request, frozenset()):
            return refused
        sid, form = await self._id(request)
        if f"{request.method} {form}" not in accepted:
            return self.error_response(400, "id is required", "", 5)
        if not sid:
            return self.error_response(400, "id is required", "", 5)
        now = time.time()
        with self._state_lock:
            source = self.sources.get(sid)
            if source is None:
                return self.error_response(404, self.settings.unknown_message.format(id=sid), "", 5)
            if self._status(source, now) != "running" or source.stopped_at is not None:
                status = self.settings.stopped_stop_status
                if status != 200:
                    return self.error_response(
                        status, f"Unable to stop source instance '{sid}' not in a stoppable state", "", 5
                    )
            elif source.stopped_at is None:
                source.stopped_at = now
            return self._ok(self._json(source, now), "stop")

    async def handle_start(self, request: Request) -> Response:
        if refused := self._charge(request, "start"):
            return refused
        sid, _ = await self._id(request)
        with self._state_lock:
            source = self.sources.get(sid)
            if source is None:
                return self.error_response(404, self.settings.unknown_message.format(id=sid), "", 5)
            source.status, source.stopped_at = "running", None
            return self._ok(self._json(source, time.time()), "start")

    async def handle_create(self, request: Request) -> Response:
        if refused := self._charge(request, "create"):
            return refused
        body = json.loads(await request.body() or b"{}")
        source = self.add_source(
            status="stopped",
            name=str(body.get("name") or "source"),
            source_type=str(body.get("source_type") or "instagram"),
        )
        return self._ok(self._json(source, time.time()), "create", status=201)

    def _wrong_method(self, request: Request) -> Response:
        if self.settings.wrong_method_status == 404:
            return self.error_response(404, "REST API: endpoint not found", "", 0)
        return self.error_response(
            self.settings.wrong_method_status, f"Method {request.method} not allowed", "", 0
        )

    async def handle_not_found(self, request: Request) -> Response:
        return self.error_response(404, "REST API: endpoint not found", "", 0)

    def routes(self) -> list[Route]:
        v = f"/{self.settings.version}/source"
        table: list[tuple[str, Any, tuple[str, ...]]] = [
            (f"{v}/get", self.handle_get, ("GET",)),
            (f"{v}/stop", self.handle_stop, ("PUT", "POST")),
            (f"{v}/start", self.handle_start, ("PUT", "POST")),
            (f"{v}/create", self.handle_create, ("POST",)),
        ]
        routes = [
            Route(path, self._only(handler, methods), methods=ALL_METHODS) for path, handler, methods in table
        ]
        return [*routes, Route("/{path:path}", self.handle_not_found, methods=ALL_METHODS)]

    def _only(self, handler: Any, methods: tuple[str, ...]) -> Any:
        async def dispatch(request: Request) -> Response:
            if request.method not in methods:
                return self._wrong_method(request)
            return await handler(request)

        return dispatch
