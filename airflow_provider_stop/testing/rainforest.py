"""Traject Data collections / batches emulator (Rainforest API and sister products).

Modelled on the public docs (https://docs.trajectdata.com/rainforestapi/collections-api/ : stop,
stop-all, get, list, start, create; https://docs.trajectdata.com/rainforestapi/response-codes):
``api_key`` query auth, the ``request_info`` envelope, the three statuses (``idle``, ``queued``,
``running``) with configurable run times, and the list's limit of 60 requests a minute.

Strict by default, as the documented contract: a query parameter or value the docs do not list is
answered 400, a wrong HTTP verb or path 404 (the response-codes page: "wrong path or wrong HTTP
verb"), always in the ``request_info`` shape. ``lenient=True`` ignores unknown query parameters.
Every unconfirmed fact is a setting (paging of the list, ``request_info`` on successful answers,
the status codes of refused stops, ...).

``page_size``: SerpWow's List Batches page (https://docs.trajectdata.com/serpwow/batches-api/batches/list,
the same API family and answer shape: ``page``, ``current_page``, ``total_pages``) documents it, "up to
1000", 25 a page by default. Whether the collections list takes it is not documented: the setting
``page_size_param`` serves each plausible answer (honoured, ignored, refused).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_stop.testing.base import Emulator, SlidingWindow, read_json, unquote

#: How ``GET /collections`` pages (not documented: each is a plausible answer).
#: ``none``: one answer holds everything and ``page`` is refused like any undocumented parameter;
#: ``total_pages``: ``?page=N``, the answer has ``current_page``, ``total_pages``, ``total_count``;
#: ``pages``: ``?page=N``, the answer has ``page``, ``pages``, ``count``;
#: ``next_page``: ``?page=N``, the answer has ``next_page`` (a number, or null on the last page);
#: ``silent``: pages of ``list_page_size`` with no paging field, and ``page`` is ignored.
ListPaging = Literal["none", "total_pages", "pages", "next_page", "silent"]
LIST_PAGINGS: tuple[str, ...] = ("none", "total_pages", "pages", "next_page", "silent")
#: What the list does with ``page_size``: ``honoured`` (pages of ``page_size``, at most
#: ``list_page_size``: the documented answer for batches), ``ignored`` (accepted; pages stay
#: ``default_page_size``) or ``refused`` (400, as any parameter the collections docs do not list).
PageSizeParam = Literal["honoured", "ignored", "refused"]
PAGE_SIZE_PARAMS: tuple[str, ...] = ("honoured", "ignored", "refused")
#: The largest ``page_size`` documented (SerpWow List Batches: "up to 1000"); above it: 400.
MAX_PAGE_SIZE = 1000
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
#: The list's documented query parameters and their documented values (None: any value).
LIST_PARAMS: dict[str, frozenset[str] | None] = {
    "api_key": None,
    "only_with_results": frozenset({"true", "false"}),
    "only_without_results": frozenset({"true", "false"}),
    "search_term": None,
    "search_type": frozenset({"contains", "starts_with", "ends_with", "exact"}),
    "status": frozenset({"all", "idle", "queued", "running"}),
    "created_before": None,
    "created_after": None,
    "last_run_before": None,
    "last_run_after": None,
}


@dataclass
class RainforestSettings:
    api_key: str = "emulator-api-key"
    #: ``collections`` (Rainforest, BigBox, ...) or ``batches`` (SerpWow, Scale SERP, VALUE SERP).
    resource: str = "collections"
    #: ``/live`` for SerpWow.
    path_prefix: str = ""
    queue_seconds: float = 0.2
    run_seconds: float = 3600.0
    #: Seconds a stopped collection still reports its old status (unconfirmed: immediate or not).
    stop_delay_seconds: float = 0.0
    #: HTTP status and message for stopping an idle collection (unconfirmed).
    idle_stop_status: int = 400
    idle_stop_message: str = "Collection is not queued or running"
    #: HTTP status for an unknown id (unconfirmed: 404 or 400).
    unknown_id_status: int = 404
    #: Whether a stop of a queued collection says credits were refunded (not documented).
    refund_message: bool = True
    list_limit_per_minute: int = 60
    #: How the list pages (see ``ListPaging``) and the most items a page holds, whatever ``page_size``
    #: asks (the documented largest page is 1000; 10 keeps the tests' lists short).
    list_paging: ListPaging = "none"
    list_page_size: int = 10
    #: Items a page holds when the request has no ``page_size`` (documented for batches: 25), at most
    #: ``list_page_size``.
    default_page_size: int = 25
    #: What the list does with ``page_size`` (see ``PageSizeParam``; documented for batches only).
    page_size_param: PageSizeParam = "honoured"
    #: Whether successful answers (get, list, stop, stopall) carry ``request_info`` (unconfirmed:
    #: only the SerpWow docs and third-party code show it); error answers always do.
    success_request_info: bool = True
    #: Ignore query parameters the docs do not list (the default refuses them with 400).
    lenient: bool = False
    #: The key of the object in get/stop answers; None: ``batch`` for batches (inferred from
    #: third-party code), ``collection`` otherwise.
    object_key: str | None = None


@dataclass
class Collection:
    id: str
    name: str
    status_since: float = field(default_factory=time.time)
    started_at: float | None = None
    stopped_at: float | None = None
    last_run: float | None = None
    requests_total_count: int = 100
    status_override: str | None = None


def _iso(ts: float | None) -> str | None:
    return (
        None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    )


class RainforestEmulator(Emulator, service="rainforest"):
    def __init__(self, settings: RainforestSettings | None = None, **overrides: Any) -> None:
        super().__init__()
        self.settings = settings or RainforestSettings(**overrides)
        self.collections: dict[str, Collection] = {}
        self._next_id = 100000
        self._list_window = SlidingWindow(60.0)
        self._state_lock = threading.RLock()

    @property
    def object_key(self) -> str:
        if self.settings.object_key:
            return self.settings.object_key
        return "batch" if self.settings.resource == "batches" else "collection"

    def connection(self) -> dict[str, Any]:
        extra = {"resource": self.settings.resource, "path_prefix": self.settings.path_prefix}
        return {
            "conn_type": self.conn_type,
            "host": self.url,
            "password": self.settings.api_key,
            "extra": extra,
        }

    # ---- set-up ---------------------------------------------------------------------------
    def add_collection(
        self, collection_id: str | None = None, *, status: str = "running", **attrs: Any
    ) -> Collection:
        """A collection that is ``running`` (started a queue-time ago), ``queued`` or ``idle``."""
        with self._state_lock:
            if collection_id is None:
                self._next_id += 1
                collection_id = str(self._next_id)
            now = time.time()
            item = Collection(
                id=collection_id, name=attrs.pop("name", f"collection {collection_id}"), **attrs
            )
            if status == "running":
                item.started_at = now - self.settings.queue_seconds
            elif status == "queued":
                item.started_at = now
            self.collections[collection_id] = item
        return item

    def add_demo_data(self) -> None:
        self.add_collection("200001", name="daily price check")
        self.add_collection("200002", name="competitor offers", status="queued")

    def status_of(self, collection_id: str) -> str:
        with self._state_lock:
            return self._status(self.collections[collection_id], time.time())

    def target_state(self, target_id: str) -> str:
        return self.status_of(target_id)

    stopped_state = "idle"
    stop_route = ("GET", "*/stop")
    targets_attr = "collections"

    def add_target(self, target_id: str) -> Any:
        return self.add_collection(target_id)

    def _status(self, item: Collection, now: float) -> str:
        if item.status_override:
            return item.status_override
        s = self.settings
        if item.started_at is None:
            return "idle"
        if item.stopped_at is not None and now >= item.stopped_at + s.stop_delay_seconds:
            return "idle"
        if now >= item.started_at + s.queue_seconds + s.run_seconds:
            return "idle"
        return "queued" if now < item.started_at + s.queue_seconds else "running"

    def _json(self, item: Collection, now: float) -> dict[str, Any]:
        return {
            "id": item.id,
            "name": item.name,
            "enabled": True,
            "schedule_type": "manual",
            "priority": "normal",
            "status": self._status(item, now),
            "created_at": _iso(item.status_since),
            "last_run": _iso(item.last_run),
            "requests_total_count": item.requests_total_count,
            "requests_page_count": 1,
            "credits_required": item.requests_total_count,
            "results_count": 0,
            "next_result_set_id": 1,
        }

    # ---- HTTP -----------------------------------------------------------------------------
    def error_response(self, status: int, message: str, code: str) -> Response:
        return JSONResponse({"request_info": {"success": False, "message": message}}, status_code=status)

    def _ok(self, message: str | None = None, body: dict[str, Any] | None = None) -> Response:
        if not self.settings.success_request_info:
            return JSONResponse(body or {})
        info: dict[str, Any] = {"success": True}
        if message:
            info["message"] = message
        return JSONResponse({"request_info": info, **(body or {})})

    def _auth(
        self, request: Request, allowed: dict[str, frozenset[str] | None] | None = None
    ) -> Response | None:
        """The key, then the query: undocumented parameters and values are refused (unless lenient)."""
        if request.query_params.get("api_key") != self.settings.api_key:
            return self.error_response(401, "The API Key supplied with your request is not valid.", "")
        if self.settings.lenient:
            return None
        allowed = allowed if allowed is not None else {"api_key": None}
        for name, value in request.query_params.multi_items():
            if name not in allowed:
                return self.error_response(400, f"'{name}' is not a valid parameter", "")
            values = allowed[name]
            if values is not None and value not in values:
                return self.error_response(400, f"'{value}' is not a valid value for '{name}'", "")
        return None

    def _lookup(self, request: Request) -> Collection | Response:
        cid = unquote(request.path_params["id"])
        item = self.collections.get(cid)
        if item is None:
            return self.error_response(self.settings.unknown_id_status, f"{self.object_key} not found", "")
        return item

    async def handle_get(self, request: Request) -> Response:
        if err := self._auth(request):
            return err
        with self._state_lock:
            item = self._lookup(request)
            if isinstance(item, Response):
                return item
            return self._ok(None, {self.object_key: self._json(item, time.time())})

    async def handle_stop(self, request: Request) -> Response:
        if err := self._auth(request):
            return err
        now = time.time()
        with self._state_lock:
            item = self._lookup(request)
            if isinstance(item, Response):
                return item
            status = self._status(item, now)
            if status not in ("queued", "running") or item.stopped_at is not None:
                return self.error_response(
                    self.settings.idle_stop_status, self.settings.idle_stop_message, ""
                )
            item.stopped_at = now
            item.last_run = item.started_at
            noun = self.object_key.capitalize()
            message = f"{noun} stopped"
            if status == "queued" and self.settings.refund_message:
                message += ", credits refunded"
            return self._ok(message, {self.object_key: {"id": item.id, "status": "idle"}})

    async def handle_stopall(self, request: Request) -> Response:
        if err := self._auth(request):
            return err
        now = time.time()
        with self._state_lock:
            stopped = 0
            for item in self.collections.values():
                if self._status(item, now) in ("queued", "running") and item.stopped_at is None:
                    item.stopped_at = now
                    stopped += 1
        return self._ok(f"{stopped} {self.settings.resource} stopped")

    async def handle_start(self, request: Request) -> Response:
        if err := self._auth(request):
            return err
        now = time.time()
        with self._state_lock:
            item = self._lookup(request)
            if isinstance(item, Response):
                return item
            if self._status(item, now) != "idle":
                return self.error_response(400, f"{self.object_key} is already queued or running", "")
            item.started_at, item.stopped_at = now, None
            return self._ok(
                f"{self.object_key.capitalize()} queued", {self.object_key: self._json(item, now)}
            )

    def _list_params(self) -> dict[str, frozenset[str] | None]:
        params = dict(LIST_PARAMS)
        if self.settings.list_paging not in ("none",):
            params["page"] = None
        if self.settings.page_size_param != "refused":
            params["page_size"] = None
        return params

    def _page_size(self, request: Request) -> int | Response:
        """Items a page holds for this request (``page_size`` read as the setting says)."""
        s = self.settings
        size = s.default_page_size
        raw = request.query_params.get("page_size")
        if raw is not None and s.page_size_param == "honoured":
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
                return self.error_response(400, f"'{raw}' is not a valid value for 'page_size'", "")
            size = int(raw)
        return max(1, min(size, s.list_page_size))

    async def handle_list(self, request: Request) -> Response:
        if err := self._auth(request, self._list_params()):
            return err
        s = self.settings
        page = 1
        if s.list_paging not in ("none", "silent") and "page" in request.query_params:
            raw = request.query_params["page"]
            if not raw.isdigit() or int(raw) < 1:
                return self.error_response(400, f"'{raw}' is not a valid value for 'page'", "")
            page = int(raw)
        size = self._page_size(request)
        if isinstance(size, Response):
            return size
        now = time.time()
        with self._state_lock:
            if not self._list_window.allow(s.list_limit_per_minute):
                return self.error_response(429, "Rate limit of 60 requests per minute exceeded", "")
            wanted = request.query_params.get("status", "all")
            term = request.query_params.get("search_term", "").lower()
            items = [self._json(i, now) for i in self.collections.values()]
        items = [i for i in items if wanted == "all" or i["status"] == wanted]
        items = [i for i in items if term in str(i["name"]).lower()]
        if s.list_paging == "none":
            return self._ok(None, {s.resource: items})
        pages = max(1, (len(items) + size - 1) // size)
        body: dict[str, Any] = {s.resource: items[(page - 1) * size : page * size]}
        if s.list_paging == "total_pages":
            body.update(current_page=page, total_pages=pages, total_count=len(items))
        elif s.list_paging == "pages":
            body.update(page=page, pages=pages, count=len(items))
        elif s.list_paging == "next_page":
            body["next_page"] = page + 1 if page < pages else None
        return self._ok(None, body)

    async def handle_create(self, request: Request) -> Response:
        if err := self._auth(request):
            return err
        body = await read_json(request) or {}
        item = self.add_collection(status="idle", name=str(body.get("name") or "unnamed"))
        return self._ok(None, {self.object_key: self._json(item, time.time())})

    async def handle_not_found(self, request: Request) -> Response:
        """A wrong path or a wrong HTTP verb: 404, as the response-codes page says."""
        return self.error_response(404, "The request URL or HTTP method is not valid.", "")

    def routes(self) -> list[Route]:
        base = f"{self.settings.path_prefix}/{self.settings.resource}"
        table = [
            (f"{base}/stopall", {"GET": self.handle_stopall}),
            (base, {"GET": self.handle_list, "POST": self.handle_create}),
            (base + "/{id}", {"GET": self.handle_get}),
            (base + "/{id}/stop", {"GET": self.handle_stop}),
            (base + "/{id}/start", {"GET": self.handle_start}),
        ]
        routes = [Route(path, self._by_method(handlers), methods=ALL_METHODS) for path, handlers in table]
        return [*routes, Route("/{path:path}", self.handle_not_found, methods=ALL_METHODS)]

    def _by_method(self, handlers: dict[str, Any]) -> Any:
        async def dispatch(request: Request) -> Response:
            handler = handlers.get(request.method)
            if handler is None:
                return await self.handle_not_found(request)
            return await handler(request)

        return dispatch
