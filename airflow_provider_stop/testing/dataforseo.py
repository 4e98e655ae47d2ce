"""DataForSEO v3 On-Page emulator, faithful to https://docs.dataforseo.com/v3/on_page/force_stop,
https://docs.dataforseo.com/v3/on_page/summary, https://docs.dataforseo.com/v3/appendix/errors and
the models of the official client (PyPI ``dataforseo-client``, GitHub ``dataforseo/PythonClient``).

``task_post`` creates crawl tasks that wait in a queue, then crawl over time, ``force_stop`` stops up
to 1000 of them, ``summary`` reports ``crawl_progress`` / ``crawl_stop_reason``, ``tasks_ready``
lists finished ones. Basic auth, the envelope exactly as documented (``time`` as ``"0.0123 sec."``,
integer codes), the per-minute rate limit with ``X-RateLimit-*`` headers.

Strict by default: the documented array body only, no query parameters, no unknown fields in a
force_stop item, a wrong method is the documented 404; leniency is a setting (``lenient``,
``accept_object_body``). Every unconfirmed fact (what force_stop answers for a finished or a queued
task, what summary shows for a task that never started, whether a force-stopped queued task is ever
reported finished) is a setting.
"""

from __future__ import annotations

import base64
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

VERSION = "0.1.20240801"
MESSAGES = {
    20000: "Ok.",
    20100: "Task Created.",
    40006: "You can set no more than 100 tasks at a time.",
    40100: "You are not Authorized to Access this Resource. Your Login Information Here: "
    "https://app.dataforseo.com/login .",
    40200: "Payment Required.",
    40202: "The rate-limit per minute has been exceeded.",
    40400: "Not Found.",
    40401: "Task Not Found.",
    40403: "Results Expired.",
    40501: "Invalid Field.",
    40502: "POST Data Is Empty.",
    40503: "POST Data Is Invalid.",
    40506: "Unknown Fields in POST Data.",
    40602: "Task In Queue.",
    50000: "Internal Error.",
}


@dataclass
class DataForSeoSettings:
    login: str = "emulator@example.com"
    password: str = "emulator-password"  # noqa: S105 - the emulator's own test credential
    #: A crawl left alone finishes by itself (``limit_exceeded``) after this long.
    crawl_seconds: float = 3600.0
    #: Summary still shows ``in_progress`` this long after force_stop (unconfirmed).
    stop_delay_seconds: float = 0.2
    #: A task waits in the queue this long after task_post before it crawls.
    queue_seconds: float = 0.0
    #: Summary of a queued (never started) task: ``"40602"`` (task code 40602 "Task In Queue.", no
    #: result) or ``"empty"`` (20000 with ``result: null``). Unconfirmed.
    queued_summary: str = "40602"
    #: Task code force_stop answers for a queued task: 20000 or 40602. Unconfirmed.
    queued_stop_code: int = 20000
    #: What a force_stop does to a queued task (unconfirmed): ``"finished"`` (summary reports it
    #: finished / force_stopped after ``stop_delay_seconds``), ``"queued"`` (it is never crawled, and
    #: the summary keeps reporting it queued for ever) or ``"ignored"`` (the stop has no effect: it
    #: leaves the queue and crawls).
    queued_after_stop: str = "finished"
    #: Task code for force_stop / summary of an unknown id (40401 or 40400; unconfirmed).
    unknown_id_code: int = 40401
    #: Task code for force_stop of an already finished task: 20000 (a no-op) or an error such as
    #: 40501, 40400, 40401 or 40403 (unconfirmed).
    finished_stop_code: int = 20000
    rate_limit_per_minute: int = 2000
    #: HTTP status that accompanies 40202 (unconfirmed; the "always 200" rule suggests 200).
    rate_limit_http_status: int = 200
    #: Accept the legacy object-keyed body ``{"0": {...}}`` as well as the documented array (the
    #: legacy example client sends it; that the server accepts it is inferred).
    accept_object_body: bool = False
    #: Accept query parameters and unknown force_stop fields (none are documented) instead of refusing.
    lenient: bool = False
    pages_per_second: float = 5.0


@dataclass
class CrawlTask:
    id: str
    target: str
    max_crawl_pages: int
    tag: str | None = None
    posted_at: float = field(default_factory=time.time)
    stopped_at: float | None = None
    stop_reason_override: str | None = None
    progress_override: str | None = None
    #: force_stop reached it while it was still queued (and ``queued_after_stop`` is not "ignored").
    stopped_in_queue: bool = False


def _fmt(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S +00:00")


class DataForSeoEmulator(Emulator, service="dataforseo"):
    def __init__(self, settings: DataForSeoSettings | None = None, **overrides: Any) -> None:
        super().__init__()
        self.settings = settings or DataForSeoSettings(**overrides)
        self.tasks: dict[str, CrawlTask] = {}
        self._window = SlidingWindow(60.0)
        self._state_lock = threading.RLock()

    def connection(self) -> dict[str, Any]:
        return {
            "conn_type": self.conn_type,
            "host": self.url,
            "login": self.settings.login,
            "password": self.settings.password,
        }

    # ---- set-up without HTTP --------------------------------------------------------------
    def add_task(
        self,
        task_id: str | None = None,
        *,
        target: str = "example.com",
        max_crawl_pages: int = 1000,
        **attrs: Any,
    ) -> CrawlTask:
        task = CrawlTask(
            id=task_id or str(uuid.uuid4()), target=target, max_crawl_pages=max_crawl_pages, **attrs
        )
        with self._state_lock:
            self.tasks[task.id] = task
        return task

    def add_demo_data(self) -> None:
        for name in ("crawl-shop-example", "crawl-blog-example", "crawl-docs-example"):
            self.add_task(name, target=f"{name.split('-')[1]}.example.com")

    def progress_of(self, task_id: str) -> str:
        with self._state_lock:
            return self._state(self.tasks[task_id], time.time())[0]

    def target_state(self, target_id: str) -> str:
        return self.progress_of(target_id)

    stopped_state = "finished"
    stop_route = ("POST", "/v3/on_page/force_stop")
    targets_attr = "tasks"
    state_override_attr = "progress_override"

    def add_target(self, target_id: str) -> Any:
        return self.add_task(target_id)

    # ---- the model ------------------------------------------------------------------------
    def _state(self, task: CrawlTask, now: float) -> tuple[str, str | None, float | None, int]:
        """(crawl_progress, crawl_stop_reason, crawl_end, pages_crawled) at ``now``; a task that has
        not started is ``in_queue`` (rendered by ``summary`` as ``queued_summary`` says)."""
        s = self.settings
        if task.stopped_in_queue and task.stopped_at is not None:
            done = task.stopped_at + s.stop_delay_seconds
            if s.queued_after_stop == "finished" and now >= done:
                return task.progress_override or "finished", "force_stopped", done, 0
            return "in_queue", None, None, 0
        started = task.posted_at + s.queue_seconds
        if now < started:
            return "in_queue", None, None, 0
        natural_end = started + s.crawl_seconds
        end: float | None = None
        reason: str | None = None
        if task.stopped_at is not None and task.stopped_at + s.stop_delay_seconds < natural_end:
            if now >= task.stopped_at + s.stop_delay_seconds:
                end, reason = task.stopped_at + s.stop_delay_seconds, "force_stopped"
        elif now >= natural_end:
            end, reason = natural_end, "limit_exceeded"
        crawled_until = min(now, end) if end is not None else now
        pages = min(task.max_crawl_pages, int((crawled_until - started) * s.pages_per_second))
        progress = task.progress_override or ("finished" if end is not None else "in_progress")
        return progress, task.stop_reason_override or reason, end, pages

    def _task(
        self,
        code: int,
        path: list[str],
        data: dict[str, Any],
        result: Any,
        task_id: str | None = None,
        cost: float = 0,
    ) -> dict[str, Any]:
        return {
            "id": task_id or str(uuid.uuid4()),
            "status_code": code,
            "status_message": MESSAGES.get(code, "Error."),
            "time": "0.0042 sec.",
            "cost": cost,
            "result_count": len(result) if isinstance(result, list) else 0,
            "path": path,
            "data": data,
            "result": result,
        }

    def _envelope(self, tasks: list[dict[str, Any]], code: int = 20000, http: int = 200) -> Response:
        body = {
            "version": VERSION,
            "status_code": code,
            "status_message": MESSAGES.get(code, "Error."),
            "time": "0.0123 sec.",
            "cost": sum(t["cost"] for t in tasks),
            "tasks_count": len(tasks),
            "tasks_error": sum(1 for t in tasks if t["status_code"] >= 40000),
            "tasks": tasks,
        }
        return JSONResponse(body, status_code=http, headers=self._rate_headers())

    def error_response(self, status: int, message: str, code: str) -> Response:
        internal = {401: 40100, 402: 40200, 404: 40400, 429: 40202}.get(status, 50000)
        return self._envelope([], code=internal, http=status)

    def echo_response(self, status: int, message: str) -> Response:
        body = {"version": VERSION, "status_code": 40501, "status_message": message, "tasks": []}
        return JSONResponse(body, status_code=status)

    def _rate_headers(self) -> dict[str, str]:
        limit = self.settings.rate_limit_per_minute
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - self._window.used())),
        }

    def not_found(self, request: Request) -> Response:
        """A wrong method or path: the documented HTTP 404 "endpoint not found"."""
        return self._envelope([], code=40400, http=404)

    def _gate(self, request: Request) -> Response | None:
        """Auth, the per-minute rate limit, then no query parameters (none is documented)."""
        s = self.settings
        expected = "Basic " + base64.b64encode(f"{s.login}:{s.password}".encode()).decode()
        if request.headers.get("authorization") != expected:
            body = {
                "status_code": 40100,
                "status_message": MESSAGES[40100],
                "time": "0 sec.",
                "cost": 0,
                "tasks_count": 0,
                "tasks_error": 0,
                "tasks": [],
            }
            return JSONResponse(body, status_code=401)
        if not self._window.allow(s.rate_limit_per_minute):
            return self._envelope([], code=40202, http=s.rate_limit_http_status)
        if request.query_params and not s.lenient:
            return self._envelope([], code=40501)
        return None

    async def _items(self, request: Request) -> list[dict[str, Any]] | Response:
        try:
            body = await read_json(request)
        except ValueError:
            return self._envelope([], code=40503)
        if isinstance(body, dict) and self.settings.accept_object_body:
            body = list(body.values())
        if not body:
            return self._envelope([], code=40502)
        if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
            return self._envelope([], code=40503)
        return body

    # ---- endpoints ------------------------------------------------------------------------
    async def handle_task_post(self, request: Request) -> Response:
        if gate := self._gate(request):
            return gate
        items = await self._items(request)
        if isinstance(items, Response):
            return items
        if len(items) > 100:
            return self._envelope([], code=40006)
        tasks = []
        for item in items:
            path = ["v3", "on_page", "task_post"]
            data = {"api": "on_page", "function": "task_post", **item}
            if not isinstance(item.get("target"), str) or not isinstance(item.get("max_crawl_pages"), int):
                tasks.append(self._task(40501, path, data, None))
                continue
            task = self.add_task(
                target=item["target"], max_crawl_pages=item["max_crawl_pages"], tag=item.get("tag")
            )
            tasks.append(self._task(20100, path, data, None, task_id=task.id, cost=0.000125))
        return self._envelope(tasks)

    async def handle_force_stop(self, request: Request) -> Response:
        if gate := self._gate(request):
            return gate
        items = await self._items(request)
        if isinstance(items, Response):
            return items
        if len(items) > 1000:
            return self._envelope([], code=40503)
        if not self.settings.lenient and any(set(item) - {"id"} for item in items):
            return self._envelope([], code=40506)
        tasks = []
        now = time.time()
        path = ["v3", "on_page", "force_stop"]
        with self._state_lock:
            for item in items:
                tid = str(item.get("id") or "")
                data = {"api": "on_page", "function": "force_stop", "id": tid}
                task = self.tasks.get(tid)
                if task is None:
                    tasks.append(self._task(self.settings.unknown_id_code, path, data, None, task_id=tid))
                    continue
                progress = self._state(task, now)[0]
                if progress == "finished":
                    tasks.append(self._task(self.settings.finished_stop_code, path, data, None, task_id=tid))
                    continue
                if progress == "in_queue":
                    if self.settings.queued_after_stop != "ignored" and task.stopped_at is None:
                        task.stopped_at, task.stopped_in_queue = now, True
                    tasks.append(self._task(self.settings.queued_stop_code, path, data, None, task_id=tid))
                    continue
                if task.stopped_at is None:
                    task.stopped_at = now
                tasks.append(self._task(20000, path, data, None, task_id=tid))
        return self._envelope(tasks)

    async def handle_summary(self, request: Request) -> Response:
        if gate := self._gate(request):
            return gate
        tid = unquote(request.path_params["id"])
        path = ["v3", "on_page", "summary", tid]
        data = {"api": "on_page", "function": "summary"}
        now = time.time()
        with self._state_lock:
            task = self.tasks.get(tid)
            if task is None:
                return self._envelope(
                    [self._task(self.settings.unknown_id_code, path, data, None, task_id=tid)]
                )
            progress, reason, end, pages = self._state(task, now)
            if progress == "in_queue":
                code = 40602 if self.settings.queued_summary == "40602" else 20000
                return self._envelope([self._task(code, path, data, None, task_id=tid)])
        result = [
            {
                "crawl_progress": progress,
                "crawl_status": {
                    "max_crawl_pages": task.max_crawl_pages,
                    "pages_in_queue": 0 if progress == "finished" else 25,
                    "pages_crawled": pages,
                },
                "crawl_gateway_address": "192.0.2.10",
                "crawl_stop_reason": reason,
                "domain_info": {
                    "name": task.target,
                    "crawl_start": _fmt(task.posted_at),
                    "crawl_end": _fmt(end),
                    "extended_crawl_status": "no_errors",
                    "total_pages": pages,
                },
                "page_metrics": {"onpage_score": 88.5, "broken_links": 0},
            }
        ]
        return self._envelope([self._task(20000, path, data, result, task_id=tid)])

    async def handle_tasks_ready(self, request: Request) -> Response:
        if gate := self._gate(request):
            return gate
        now = time.time()
        with self._state_lock:
            ready = [
                {"id": t.id, "target": t.target, "date_posted": _fmt(t.posted_at), "tag": t.tag}
                for t in self.tasks.values()
                if self._state(t, now)[0] == "finished"
            ][:1000]
        data = {"api": "on_page", "function": "tasks_ready"}
        return self._envelope([self._task(20000, ["v3", "on_page", "tasks_ready"], data, ready)])

    def routes(self) -> list[Route]:
        every = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return [
            Route("/v3/on_page/task_post", self.handle_task_post, methods=["POST"]),
            Route("/v3/on_page/force_stop", self.handle_force_stop, methods=["POST"]),
            Route("/v3/on_page/summary/{id}", self.handle_summary, methods=["GET"]),
            Route("/v3/on_page/tasks_ready", self.handle_tasks_ready, methods=["GET"]),
            Route("/{path:path}", self.not_found, methods=every),
        ]
