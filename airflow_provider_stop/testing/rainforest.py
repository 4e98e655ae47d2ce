"""Traject Data collections / batches emulator (Rainforest API and sister products).

Faithful to ``../shared/api/traject-rainforest.md``: ``api_key`` query auth, the ``request_info``
envelope, the three statuses (``idle``, ``queued``, ``running``) with configurable run times, stop,
stopall, get, list (60 requests a minute), create and start. Every unconfirmed fact is a setting.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_stop.testing.base import Emulator, SlidingWindow, read_json, unquote


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
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class RainforestEmulator(Emulator):
    service = "rainforest"
    conn_type = "rainforest"

    def __init__(self, settings: RainforestSettings | None = None, **overrides: Any) -> None:
        super().__init__()
        self.settings = settings or RainforestSettings(**overrides)
        self.collections: dict[str, Collection] = {}
        self._next_id = 100000
        self._list_window = SlidingWindow(60.0)
        self._state_lock = threading.RLock()

    @property
    def object_key(self) -> str:
        return "batch" if self.settings.resource == "batches" else "collection"

    def connection(self) -> dict[str, Any]:
        extra = {"resource": self.settings.resource, "path_prefix": self.settings.path_prefix}
        return {
            "conn_type": "rainforest",
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
        info: dict[str, Any] = {"success": True}
        if message:
            info["message"] = message
        return JSONResponse({"request_info": info, **(body or {})})

    def _auth(self, request: Request) -> Response | None:
        if request.query_params.get("api_key") != self.settings.api_key:
            return self.error_response(401, "The API Key supplied with your request is not valid.", "")
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

    async def handle_list(self, request: Request) -> Response:
        if err := self._auth(request):
            return err
        now = time.time()
        with self._state_lock:
            if not self._list_window.allow(self.settings.list_limit_per_minute):
                return self.error_response(429, "Rate limit of 60 requests per minute exceeded", "")
            wanted = request.query_params.get("status", "all")
            items = [self._json(i, now) for i in self.collections.values()]
        if wanted != "all":
            items = [i for i in items if i["status"] == wanted]
        return self._ok(None, {self.settings.resource: items})

    async def handle_create(self, request: Request) -> Response:
        if err := self._auth(request):
            return err
        body = await read_json(request) or {}
        item = self.add_collection(status="idle", name=str(body.get("name") or "unnamed"))
        return self._ok(None, {self.object_key: self._json(item, time.time())})

    def routes(self) -> list[Route]:
        base = f"{self.settings.path_prefix}/{self.settings.resource}"
        return [
            Route(f"{base}/stopall", self.handle_stopall, methods=["GET"]),
            Route(base, self.handle_list, methods=["GET"]),
            Route(base, self.handle_create, methods=["POST"]),
            Route(base + "/{id}", self.handle_get, methods=["GET"]),
            Route(base + "/{id}/stop", self.handle_stop, methods=["GET"]),
            Route(base + "/{id}/start", self.handle_start, methods=["GET"]),
        ]
