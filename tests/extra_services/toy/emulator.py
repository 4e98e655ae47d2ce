"""The Toy service's emulator: jobs that take ``stopping_seconds`` to stop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_provider_stop.testing.base import Emulator, unquote


@dataclass
class Job:
    id: str
    stop_at: float | None = None
    state_override: str | None = None


class ToyEmulator(Emulator, service="toy"):
    stopped_state = "stopped"
    stop_route = ("POST", "/v1/jobs/*/stop")
    targets_attr = "jobs"
    state_override_attr = "state_override"

    def __init__(self, api_key: str = "toy-key-LEAKCANARY-0006", stopping_seconds: float = 0.05) -> None:
        super().__init__()
        self.api_key = api_key
        self.stopping_seconds = stopping_seconds
        self.jobs: dict[str, Job] = {}
        self._state_lock = threading.Lock()

    def connection(self) -> dict[str, Any]:
        return {"conn_type": self.conn_type, "host": self.url, "password": self.api_key}

    def routes(self) -> list[Route]:
        return [
            Route("/v1/me", self.handle_me, methods=["GET"]),
            Route("/v1/jobs/{job_id}", self.handle_get, methods=["GET"]),
            Route("/v1/jobs/{job_id}/stop", self.handle_stop, methods=["POST"]),
        ]

    # ---- the generic driving interface ------------------------------------------------------
    def add_target(self, target_id: str) -> Job:
        with self._state_lock:
            job = self.jobs[target_id] = Job(target_id)
        return job

    def target_state(self, target_id: str) -> str:
        with self._state_lock:
            return self._state(self.jobs[target_id])

    def add_demo_data(self) -> None:
        self.add_target("nightly-export")

    # ---- the model ---------------------------------------------------------------------------
    def _state(self, job: Job) -> str:
        if job.state_override:
            return job.state_override
        if job.stop_at is None:
            return "running"
        return "stopped" if time.time() >= job.stop_at else "stopping"

    def _auth_error(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error_response(401, "invalid token", "unauthorized")
        return None

    async def handle_me(self, request: Request) -> Response:
        return self._auth_error(request) or JSONResponse({"name": "toy"})

    def _job(self, request: Request) -> Job | Response:
        """The job the path names, or the error answer (bad token, unknown id)."""
        if err := self._auth_error(request):
            return err
        job_id = unquote(request.path_params["job_id"])
        return self.jobs.get(job_id) or self.error_response(404, f"no job {job_id}", "not_found")

    async def handle_get(self, request: Request) -> Response:
        job = self._job(request)
        if isinstance(job, Response):
            return job
        with self._state_lock:
            return JSONResponse({"id": job.id, "state": self._state(job)})

    async def handle_stop(self, request: Request) -> Response:
        job = self._job(request)
        if isinstance(job, Response):
            return job
        with self._state_lock:
            already = job.stop_at is not None
            if not already:
                job.stop_at = time.time() + self.stopping_seconds
            return JSONResponse(
                {"id": job.id, "state": self._state(job)}, status_code=200 if already else 202
            )
