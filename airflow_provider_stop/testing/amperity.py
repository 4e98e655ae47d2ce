"""Amperity workflow-run emulator, faithful to https://docs.amperity.com/api/ and its OpenAPI spec
(``amperity/amperity-docs``, ``downloads/openapi/control-plane-2024-04-01-openapi.json``).

The OAuth client-credentials token endpoint (on the tenant's host, as documented), bearer auth
(401 / 403), the required ``amperity-tenant`` and ``api-version`` headers, runs that go scheduled →
running → succeeded on their own and canceling → canceled when stopped, ``/stop`` and the legacy
``:stop``, the paginated list with its documented filters, the ``{"status", "message"}`` error body
and the 10 requests-per-second limit.

Strict by default, as the documented contract: an undocumented query parameter or value (a list
``state`` other than the documented ones, a ``view`` outside its enum, a malformed timestamp) is a
400, a wrong method a 405, a missing required header a 400 (or 401), all in the documented error
shape. A sandbox tenant (``tenant="acme-sb-12345"``) is served on the production hosts; a request
to a host named after a sandbox is refused (421), since no such host exists. Leniency is a setting
(``lenient_query``), and every unconfirmed fact is a setting too.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_stop.testing.base import Emulator, SlidingWindow, read_json, unquote

TERMINAL = ("succeeded", "failed", "canceled")
#: The list's documented ``state`` filter values (spec ``list-workflows``: Started, In progress,
#: Stopping, Stopped, Succeeded; example ``succeeded``), lower-cased, and the states each matches here.
DOCUMENTED_STATE_FILTERS = {
    "started": ("running",),
    "in progress": ("running",),
    "stopping": ("canceling",),
    "stopped": ("canceled",),
    "succeeded": ("succeeded",),
}
LIST_PARAMS = frozenset(
    {"limit", "next_token", "with_total", "created_from", "created_to", "ended_from", "ended_to"}
    | {"state", "type", "api_version"}
)
#: Shared region hosts (tenant in a header), as opposed to ``<tenant>.amperity.com``.
SHARED_HOSTS = frozenset({"app.amperity.com", "app-aws-apse2.amperity.com"})
#: A sandbox's tenant id as a host label (``socktown-sb-12345``): no such host exists. "The base URL for
#: a sandbox is the same as the base URL for production" (amperity-docs ``amperity_api/source/
#: base_url.rst``, "Base URL and sandboxes"); the sandbox id goes only in the ``amperity-tenant`` header.
SANDBOX_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?-sb-[0-9]+\.amperity\.com$")
#: The spec's defaults for the list's ``state`` and ``type`` filters (``list-workflows`` in
#: ``control-plane-2024-04-01-openapi.json``; the list page, ``endpoint_get_workflows_list.rst``, says
#: only "Optional"). A server that applied them would list only succeeded courier-group runs unless the
#: client sends both filters: ``list_defaults`` models it (unconfirmed). The spec's other defaults
#: (``created_to``, ``ended_from``, ``ended_to`` in April 2026, each equal to its example) are not
#: modelled: ``ended_*`` leave out every run without ``ended_at``, so a server applying them could list
#: no running run to any client.
SPEC_LIST_DEFAULTS = {"state": "succeeded", "type": "courier.group/run"}
CANCEL_ERROR = {
    "attribution": "customer",
    "type": "amperity.workflow.workflow.repository.core/cancel",
    "message": "Workflow manually stopped",
}
#: A failed run's error, as in the stop page's first 200 example (docs.amperity.com, "Stop workflow").
FAILURE_ERROR = {
    "attribution": "customer",
    "type": "amperity.plugin.error/invalid-credentials",
    "message": "The credential does not provide access to the given resource.",
}


@dataclass
class AmperitySettings:
    tenant: str = "acme"
    #: A token pasted from the UI (Settings → Security → API keys → Get token).
    access_token: str = "emulator-ui-token-6f1d2c9a8b7e"  # noqa: S105 - emulator credential
    client_id: str = "emulator-client"
    client_secret: str = "emulator-client-secret-8d41a7c3"  # noqa: S105 - emulator credential
    token_ttl_seconds: int = 3600
    api_version: str = "2024-04-01"
    #: Missing or unsupported ``api-version``: 400 (versioning page) or 401 (responses page).
    bad_version_status: int = 400
    #: Whether API calls accept ``X-Amperity-Tenant`` in place of ``amperity-tenant`` (inferred from
    #: third-party code; the spec names only ``amperity-tenant``). The token request's documented
    #: header is ``X-Amperity-Tenant`` and is always accepted there.
    accept_x_tenant_alias: bool = False
    #: A list ``state`` filter value the spec does not document (e.g. ``running``): ``reject`` (400),
    #: ``ignore`` (the filter is dropped) or ``match_nothing`` (an empty list). Unconfirmed.
    unknown_state_filter: str = "reject"
    #: Accept undocumented query parameters and values instead of answering 400.
    lenient_query: bool = False
    #: Whether the shared region host (``app.amperity.com``) also serves the token endpoint; the
    #: documentation shows it only on the tenant's own host (unconfirmed, so 404 by default).
    token_on_shared_host: bool = False
    scheduled_seconds: float = 0.0
    run_seconds: float = 3600.0
    #: Seconds a stopped run spends in ``canceling`` before ``canceled`` (0: canceled at once).
    cancel_seconds: float = 1.0
    #: Stop of a terminal run: 200 with the unchanged run, 400 or 409 (unconfirmed).
    terminal_stop_status: int = 200
    #: Whether a canceled run carries the "Workflow manually stopped" error object (seen once in docs).
    cancel_error: bool = True
    #: Whether a failed run carries an error object (the spec's ``error`` is optional; the stop page's
    #: first 200 example has one). Unconfirmed for every failure.
    failure_error: bool = True
    #: Wire spelling of states, e.g. ``{"canceled": "stopped", "canceling": "stopping"}`` (unconfirmed).
    state_spellings: dict[str, str] = field(default_factory=dict)
    #: Whether the legacy ``{id}:stop`` form is still routed (unconfirmed).
    legacy_colon_stop: bool = True
    unknown_id_status: int = 404
    #: Whether error bodies carry ``request_id``/``trace_id`` (prose yes, SPEC no).
    request_ids: bool = True
    #: Documented limit; above it requests get 429.
    rate_limit_per_second: int = 10
    #: ``Retry-After`` on a 429 (undocumented: none by default).
    rate_limit_retry_after: str | None = None
    #: Most runs a list page holds ("may return fewer results than the caller asked for").
    page_size: int = 100
    #: Filters the list applies when the request does not send them: ``{}`` (the list page: every
    #: filter "Optional", and the ``type`` tip lists "workflows (and workflow types)" unfiltered) or
    #: ``SPEC_LIST_DEFAULTS`` (or a part of it): the spec's defaults applied. Unconfirmed.
    list_defaults: dict[str, str] = field(default_factory=dict)
    #: What a list item holds: the spec's ``WorkflowList`` items are ``Workflow`` objects, whose
    #: ``error`` is optional; whether the list fills it (``verbose``) or shows what ``view=overview``
    #: shows (``overview``, the default: the documents' examples) is unconfirmed.
    list_view: str = "overview"


@dataclass
class Run:
    id: str
    name: str
    type: str = "amperity.orchestration.orchestration/run"
    created_at: float = field(default_factory=time.time)
    stop_at: float | None = None
    ended_at: float | None = None
    state_override: str | None = None
    #: Reported whatever happens, even after a stop (e.g. a state spelling nobody documented).
    forced_state: str | None = None


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class AmperityEmulator(Emulator, service="amperity"):
    def __init__(self, settings: AmperitySettings | None = None, **overrides: Any) -> None:
        super().__init__()
        self.settings = settings or AmperitySettings(**overrides)
        self.runs: dict[str, Run] = {}
        #: issued OAuth token -> expiry (epoch seconds)
        self.tokens: dict[str, float] = {}
        #: "slash" or "colon" for every stop received, in order.
        self.stop_forms: list[str] = []
        #: ``(Host header, path)`` of every token request received, in order.
        self.token_requests: list[tuple[str, str]] = []
        self._window = SlidingWindow(1.0)
        #: Requests answered 429 by the rate limit (not counting injected faults).
        self.rate_limited = 0
        #: Host names of requests refused because they name a sandbox (no such host exists).
        self.sandbox_hosts: list[str] = []
        self._state_lock = threading.RLock()

    def connection(self, auth: str = "client_credentials") -> dict[str, Any]:
        """The connection JSON: OAuth client credentials (default) or the UI ``token``."""
        s = self.settings
        extra = {"tenant": s.tenant, "auth_type": auth}
        if auth == "token":
            return {"conn_type": self.conn_type, "host": self.url, "password": s.access_token, "extra": extra}
        return {
            "conn_type": self.conn_type,
            "host": self.url,
            "login": s.client_id,
            "password": s.client_secret,
            "extra": extra,
        }

    # ---- set-up ---------------------------------------------------------------------------
    def add_run(
        self, run_id: str | None = None, *, state: str | None = None, name: str = "Daily", **attrs: Any
    ) -> Run:
        """A run that is scheduled/running by the clock, or pinned to ``state`` (e.g. ``failed``)."""
        if run_id is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
            run_id = f"wf-{stamp}-{secrets.randbelow(90000) + 10000}-{secrets.token_urlsafe(4)[:6]}"
        run = Run(id=run_id, name=name, state_override=state, **attrs)
        if state in TERMINAL:
            run.ended_at = time.time()
        with self._state_lock:
            self.runs[run_id] = run
        return run

    def add_demo_data(self) -> None:
        self.add_run("wf-20261123-14418-6UhqSe", name="Send audiences to Braze", type="campaign.send")
        self.add_run("wf-20261123-14419-Tz8kQa", name="Nightly stitch")

    def expire_tokens(self) -> None:
        """Every issued OAuth token is now expired (the next call with one gets 401)."""
        with self._state_lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def state_of(self, run_id: str) -> str:
        with self._state_lock:
            return self._state(self.runs[run_id], time.time())

    def target_state(self, target_id: str) -> str:
        return self.state_of(target_id)

    stopped_state = "canceled"
    stop_route = ("POST", "*/stop")
    targets_attr = "runs"
    state_override_attr = "forced_state"

    def add_target(self, target_id: str) -> Any:
        return self.add_run(target_id)

    def _state(self, run: Run, now: float) -> str:
        s = self.settings
        if run.forced_state:
            return run.forced_state
        if run.stop_at is not None:
            return "canceled" if now >= run.stop_at + s.cancel_seconds else "canceling"
        if run.state_override:
            return run.state_override
        if now < run.created_at + s.scheduled_seconds:
            return "scheduled"
        if now < run.created_at + s.scheduled_seconds + s.run_seconds:
            return "running"
        return "succeeded"

    def _json(self, run: Run, now: float, verbose: bool = True) -> dict[str, Any]:
        state = self._state(run, now)
        ended = run.ended_at
        if state == "canceled" and run.stop_at is not None:
            ended = run.stop_at + self.settings.cancel_seconds
        elif state == "succeeded" and ended is None:
            ended = run.created_at + self.settings.scheduled_seconds + self.settings.run_seconds
        body: dict[str, Any] = {
            "id": run.id,
            "type": run.type,
            "name": run.name,
            "tenant": self.settings.tenant,
            "created_at": _iso(run.created_at),
            "state": self.settings.state_spellings.get(state, state),
        }
        if ended is not None:
            body["ended_at"] = _iso(ended)
        if verbose:
            body["task_instances"] = []
            if state == "canceled" and self.settings.cancel_error:
                body["error"] = dict(CANCEL_ERROR)
            elif state == "failed" and self.settings.failure_error:
                body["error"] = dict(FAILURE_ERROR)
        return body

    # ---- HTTP -----------------------------------------------------------------------------
    def error_response(self, status: int, message: str, code: str) -> Response:
        body: dict[str, Any] = {"status": status, "message": message}
        if self.settings.request_ids:
            body["request_id"] = str(uuid.uuid4())
            body["trace_id"] = uuid.uuid4().hex
        return JSONResponse(body, status_code=status)

    def _rate_limited(self) -> Response | None:
        if self._window.allow(self.settings.rate_limit_per_second):
            return None
        with self._state_lock:
            self.rate_limited += 1
        response = self.error_response(429, "Rate limit exceeded", "")
        if self.settings.rate_limit_retry_after is not None:
            response.headers["Retry-After"] = self.settings.rate_limit_retry_after
        return response

    def _tenant(self, request: Request, alias: bool | None = None) -> str | None:
        tenant = request.headers.get("amperity-tenant")
        if tenant is None and (self.settings.accept_x_tenant_alias if alias is None else alias):
            tenant = request.headers.get("x-amperity-tenant")
        return tenant

    def _bad_query(self, request: Request, allowed: frozenset[str]) -> Response | None:
        """400 for a query parameter the operation does not document (unless ``lenient_query``)."""
        if self.settings.lenient_query:
            return None
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            return self.error_response(400, f"Unknown query parameter(s): {', '.join(unknown)}", "")
        return None

    def method_not_allowed(self, request: Request) -> Response:
        return self.error_response(405, f"Method {request.method} not allowed", "")

    def _misdirected(self, request: Request) -> Response | None:
        """A host named after a sandbox (``acme-sb-12345.amperity.com``) does not exist: a real client
        would fail on DNS. Answered 421 (Misdirected Request) and recorded in ``sandbox_hosts``."""
        host = request.headers.get("host", "").split(":")[0].lower()
        if not SANDBOX_HOST.fullmatch(host):
            return None
        with self._state_lock:
            self.sandbox_hosts.append(host)
        return self.error_response(421, f"No such host {host!r}: a sandbox uses its production host", "")

    def _guard(self, request: Request) -> Response | None:
        """Host, rate limit, api-version, bearer token, tenant: what every API call must pass."""
        if misdirected := self._misdirected(request):
            return misdirected
        if limited := self._rate_limited():
            return limited
        s = self.settings
        version = request.headers.get("api-version") or request.query_params.get("api_version")
        if version != s.api_version:
            what = "Missing api-version" if version is None else f"Unsupported API version {version!r}"
            return self.error_response(s.bad_version_status, what, "")
        auth = request.headers.get("authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        with self._state_lock:
            valid = token is not None and (
                token == s.access_token or self.tokens.get(token, 0.0) > time.time()
            )
        if not valid:
            return self.error_response(401, "Invalid authentication or expired token", "")
        tenant = self._tenant(request)
        if tenant is None:
            return self.error_response(400, "Missing amperity-tenant header", "")
        if tenant != s.tenant:
            return self.error_response(403, f"Not permitted for tenant {tenant!r}", "")
        return None

    def _lookup(self, raw_id: str) -> Run | Response:
        run = self.runs.get(unquote(raw_id))
        if run is None:
            return self.error_response(
                self.settings.unknown_id_status, f"Workflow {unquote(raw_id)!r} not found", ""
            )
        return run

    async def handle_token(self, request: Request) -> Response:
        host = request.headers.get("host", "")
        with self._state_lock:
            self.token_requests.append((host, request.url.path))
        if misdirected := self._misdirected(request):
            return misdirected
        if limited := self._rate_limited():
            return limited
        s = self.settings
        if host.split(":")[0].lower() in SHARED_HOSTS and not s.token_on_shared_host:
            return self.error_response(404, "Not found", "")
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != s.client_id or form.get("client_secret") != s.client_secret:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                status_code=401,
            )
        if self._tenant(request, alias=True) != s.tenant:  # documented: X-Amperity-Tenant
            return JSONResponse({"error": "invalid_request", "error_description": "unknown tenant"}, 400)
        token = secrets.token_urlsafe(24)
        with self._state_lock:
            self.tokens[token] = time.time() + s.token_ttl_seconds
        return JSONResponse(
            {"access_token": token, "expires_in": s.token_ttl_seconds, "token_type": "Bearer"}
        )

    def _stop(self, raw_id: str, form: str) -> Response:
        now = time.time()
        with self._state_lock:
            run = self._lookup(raw_id)
            if isinstance(run, Response):
                return run
            self.stop_forms.append(form)
            state = self._state(run, now)
            if state in TERMINAL:
                if self.settings.terminal_stop_status != 200:
                    return self.error_response(
                        self.settings.terminal_stop_status, f"Workflow is already {state}", ""
                    )
                return JSONResponse(self._json(run, now))
            if run.stop_at is None:
                run.stop_at = now
            return JSONResponse(self._json(run, now))

    async def handle_stop(self, request: Request) -> Response:
        if err := self._guard(request) or self._bad_query(request, frozenset({"api_version"})):
            return err
        return self._stop(request.path_params["id"], "slash")

    async def handle_run(self, request: Request) -> Response:
        """``GET /workflow/runs/{id}``, and the legacy ``GET|POST /workflow/runs/{id}:stop``."""
        if err := self._guard(request):
            return err
        raw_id = request.path_params["id"]
        allowed = frozenset({"api_version"} if raw_id.endswith(":stop") else {"api_version", "view"})
        if err := self._bad_query(request, allowed):
            return err
        if raw_id.endswith(":stop"):
            if not self.settings.legacy_colon_stop:
                return self.error_response(404, "Not found", "")
            return self._stop(raw_id[: -len(":stop")], "colon")
        if request.method != "GET":
            return self.method_not_allowed(request)
        view = request.query_params.get("view", "overview")
        if view not in ("overview", "verbose") and not self.settings.lenient_query:
            return self.error_response(400, f"Invalid view {view!r}: overview or verbose", "")
        with self._state_lock:
            run = self._lookup(raw_id)
            if isinstance(run, Response):
                return run
            verbose = view == "verbose"
            return JSONResponse(self._json(run, time.time(), verbose))

    async def handle_list(self, request: Request) -> Response:
        if err := self._guard(request) or self._bad_query(request, LIST_PARAMS):
            return err
        q = request.query_params
        lenient = self.settings.lenient_query
        try:
            limit = min(int(q.get("limit", "100")), self.settings.page_size)
            offset = int(base64.urlsafe_b64decode(q["next_token"]).decode()) if "next_token" in q else 0
        except ValueError:
            return self.error_response(400, "Invalid limit or next_token", "")
        if limit < 1:
            return self.error_response(400, "limit must be positive", "")
        if q.get("with_total", "false") not in ("true", "false") and not lenient:
            return self.error_response(400, "with_total must be true or false", "")
        window: dict[str, float] = {}
        for name in ("created_from", "created_to", "ended_from", "ended_to"):
            if name in q:
                parsed = parse_iso(q[name])
                if parsed is None:
                    return self.error_response(400, f"Invalid ISO-8601 timestamp for {name}: {q[name]!r}", "")
                window[name] = parsed
        now = time.time()
        with self._state_lock:
            runs = list(self.runs.values())
            verbose = self.settings.list_view == "verbose"
            items = [(r, self._json(r, now, verbose=verbose)) for r in runs]
        items = [(r, i) for r, i in items if _in_window(r.created_at, window, "created")]
        items = [
            (r, i)
            for r, i in items
            if not ({"ended_from", "ended_to"} & set(window))  # runs without ended_at are left out
            or ("ended_at" in i and _in_window(parse_iso(i["ended_at"]) or 0.0, window, "ended"))
        ]
        # A filter the request does not send is the setting's default, if any (``list_defaults``).
        filters = {**self.settings.list_defaults, **{k: q[k] for k in ("state", "type") if k in q}}
        if "state" in filters:
            wanted = normalize(filters["state"])
            if wanted in DOCUMENTED_STATE_FILTERS:
                states = DOCUMENTED_STATE_FILTERS[wanted]
                items = [(r, i) for r, i in items if self._state(r, now) in states]
            elif self.settings.unknown_state_filter == "reject" and not lenient:
                documented = "Started, In progress, Stopping, Stopped, Succeeded"
                return self.error_response(
                    400, f"Invalid state {filters['state']!r}; one of {documented}", ""
                )
            elif self.settings.unknown_state_filter == "match_nothing":
                items = []
            # "ignore": the filter is dropped
        if "type" in filters:
            items = [(r, i) for r, i in items if i["type"] == filters["type"]]
        page = [i for _, i in items[offset : offset + limit]]
        body: dict[str, Any] = {"data": page}
        if offset + limit < len(items):
            body["next_token"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        if q.get("with_total") == "true":
            body["total"] = len(items)
        return JSONResponse(body)

    async def handle_start(self, request: Request) -> Response:
        if err := self._guard(request):
            return err
        body = await read_json(request) or {}
        if not isinstance(body, dict) or not body.get("config_id"):
            return self.error_response(400, "config_id is required", "")
        run = self.add_run(name=str(body["config_id"]))
        return JSONResponse({**self._json(run, run.created_at), "state": "scheduled"}, status_code=201)

    def routes(self) -> list[Route]:
        other = ["PUT", "PATCH", "DELETE"]
        return [
            Route("/api/v0/oauth2/token", self.handle_token, methods=["POST"]),
            Route("/api/v0/oauth2/token", self.method_not_allowed, methods=["GET", *other]),
            Route("/api/workflow/runs", self.handle_list, methods=["GET"]),
            Route("/api/workflow/runs", self.handle_start, methods=["POST"]),
            Route("/api/workflow/runs", self.method_not_allowed, methods=other),
            Route("/api/workflow/runs/{id}/stop", self.handle_stop, methods=["POST"]),
            Route("/api/workflow/runs/{id}/stop", self.method_not_allowed, methods=["GET", *other]),
            Route("/api/workflow/runs/{id}", self.handle_run, methods=["GET", "POST"]),
            Route("/api/workflow/runs/{id}", self.method_not_allowed, methods=other),
        ]


_SEPARATORS = re.compile(r"[\s_-]+")
_PARTIAL = re.compile(r"^\d{4}(-\d{2})?$")


def normalize(state: str) -> str:
    return _SEPARATORS.sub(" ", state.strip().lower())


def parse_iso(value: str) -> float | None:
    """An ISO-8601 UTC timestamp, partial ones (``2026``, ``2026-04``, ``2026-04-01``) included."""
    text = value.strip()
    if _PARTIAL.fullmatch(text):
        text += "-01" if len(text) == 7 else "-01-01"
    if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not take the "Z" suffix
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _in_window(ts: float, window: dict[str, float], prefix: str) -> bool:
    """``*_from`` inclusive, ``*_to`` exclusive (spec ``list-workflows``)."""
    start, end = window.get(f"{prefix}_from"), window.get(f"{prefix}_to")
    return (start is None or ts >= start) and (end is None or ts < end)
