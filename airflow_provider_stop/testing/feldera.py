"""Feldera pipeline-manager emulator (API v0, spec 0.337).

Modelled on the public contract: https://docs.feldera.com/api (``openapi.json`` in the feldera/feldera
repository), https://docs.feldera.com/docs/pipelines/lifecycle, and the manager's source
(feldera/feldera ``crates/pipeline-manager/src/api/endpoints/pipeline_management.rs``,
``runner/error.rs``, ``db/operations/pipeline.rs``).

Enough of the API for the official ``feldera`` SDK to create, compile, start, pause and stop a
pipeline, with the real paths, JSON shapes, error bodies and status sequences. A pipeline's status
is computed from a timeline of scheduled ``(deployment_status, desired)`` steps, so transitions take
a configurable time without any background task. Strict by default: bad query values, wrong methods
and unknown paths are refused as the real server refuses them. Every unconfirmed fact is a setting.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, Route

from airflow_provider_stop.testing.base import Emulator, read_json, unquote

EDITIONS = ("Open source", "Enterprise")
#: How a graceful stop of a pipeline without storage is answered (which servers do which is unconfirmed):
#: "refuse": 405 UnsupportedPipelineAction, the spec's example (a pre-check, as up to v0.147);
#: "fail": 202, the checkpoint fails and the pipeline is forcefully stopped with ``deployment_error``
#: set (current source, python/tests/platform/test_checkpoint_suspend.py::test_suspend_failure_enterprise);
#: "clean": 202, then Stopped without an error (the failure masked, as before v0.320).
NO_STORAGE_ANSWERS = ("refuse", "fail", "clean")
#: How a graceful stop of a pipeline already stopping (or not provisioned) is answered:
#: "refuse": 400 IllegalPipelineAction "Cannot suspend a pipeline which is stopping." (the spec: such a
#: pipeline "can only be forcefully stopped"; v0.97-v0.147 ``validate_deployment_desired_status_transition``);
#: "accept": 202, the current source stops a pipeline that is not provisioned forcefully, and a
#: suspending one answers "Pipeline is suspending" again.
WHILE_STOPPING_ANSWERS = ("refuse", "accept")
#: The deployment_status a pipeline can be put in directly, with the desired status it has then.
DIRECT_STATES = {
    "Running": "Running",
    "Paused": "Paused",
    "Unavailable": "Running",
    "Standby": "Standby",
    "Provisioning": "Running",
    "Stopping": "Stopped",
    "Stopped": "Stopped",
}


@dataclass
class FelderaSettings:
    """Knobs for what the public sources leave unconfirmed (one per plausible answer), and for test speed."""

    edition: str = "Open source"
    version: str = "0.337.0"
    #: None: no auth (the local open-source default). Otherwise the one valid ``apikey:…`` key.
    api_key: str | None = None
    compile_seconds: float = 0.05
    provision_seconds: float = 0.05
    initialize_seconds: float = 0.05
    #: (Running, Stopped) after a forced stop, before the runner acts.
    stop_lag_seconds: float = 0.05
    #: (Stopping, Stopped) before Stopped.
    stopping_seconds: float = 0.3
    #: Enterprise graceful stop: desired stays Running this long after the 202, then (Running, Suspended).
    desired_lag_seconds: float = 0.05
    #: Enterprise graceful stop: checkpointing time in (Running, Suspended).
    suspend_seconds: float = 0.3
    #: Pre-v0.330 servers send 503 without Retry-After.
    retry_after_on_503: bool = True
    #: Emit (Suspended, Suspended) for this long before Stopping (normally never observed).
    suspended_seconds: float = 0.0
    #: See ``NO_STORAGE_ANSWERS``; the default is the documented answer.
    no_storage_graceful_stop: str = "refuse"
    #: See ``WHILE_STOPPING_ANSWERS``; the default is the documented answer.
    graceful_stop_while_stopping: str = "refuse"
    #: A method a path does not take: actix's macro routes fall through to its default 404 with an
    #: empty body (inferred from the source: no default service is registered); 405 is the alternative.
    wrong_method_status: int = 404


def _now_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), tz=timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


@dataclass
class Step:
    at: float
    status: str
    desired: str
    error: dict[str, Any] | None = None


@dataclass
class EmulatedPipeline:
    name: str
    program_code: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    program_config: dict[str, Any] = field(default_factory=dict)
    runtime_config: dict[str, Any] = field(default_factory=dict)
    udf_rust: str = ""
    udf_toml: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: float = field(default_factory=time.time)
    version: int = 1
    program_version: int = 1
    compiled_at: float = 0.0
    timeline: list[Step] = field(default_factory=list)
    deployment_id: str | None = None
    storage_status: str = "Cleared"
    #: A graceful stop hangs in Stopping until forced (feldera/feldera#5697).
    stuck_in_stopping: bool = False
    #: A graceful stop ends Stopped with this ``deployment_error`` (a failed checkpoint).
    graceful_stop_error: dict[str, Any] | None = None
    #: False: no storage configured, so a graceful stop cannot checkpoint (``no_storage_graceful_stop``).
    storage: bool = True
    #: Report this raw ``deployment_status`` instead (tolerant-parsing tests).
    status_override: str | None = None
    forced_stop_pending: bool = False

    def current(self, now: float) -> Step:
        step = self.timeline[0]
        for candidate in self.timeline:
            if candidate.at <= now:
                step = candidate
        return step

    def schedule(self, now: float, steps: list[tuple[float, str, str, dict[str, Any] | None]]) -> None:
        """Replace the future with ``steps`` (offsets from now)."""
        self.timeline = [s for s in self.timeline if s.at <= now]
        self.timeline += [
            Step(now + offset, status, desired, error) for offset, status, desired, error in steps
        ]


class FelderaEmulator(Emulator, service="feldera"):
    def __init__(self, settings: FelderaSettings | None = None, **overrides: Any) -> None:
        super().__init__()
        self.settings = settings or FelderaSettings(**overrides)
        if self.settings.edition not in EDITIONS:
            raise ValueError(f"edition must be one of {EDITIONS}")
        if self.settings.no_storage_graceful_stop not in NO_STORAGE_ANSWERS:
            raise ValueError(f"no_storage_graceful_stop must be one of {NO_STORAGE_ANSWERS}")
        if self.settings.graceful_stop_while_stopping not in WHILE_STOPPING_ANSWERS:
            raise ValueError(f"graceful_stop_while_stopping must be one of {WHILE_STOPPING_ANSWERS}")
        if self.settings.wrong_method_status not in (404, 405):
            raise ValueError("wrong_method_status must be 404 or 405")
        self.pipelines: dict[str, EmulatedPipeline] = {}
        self._state_lock = threading.RLock()
        self._known_routes: list[Route] = []

    def connection(self) -> dict[str, Any]:
        conn: dict[str, Any] = {"conn_type": self.conn_type, "host": self.url}
        if self.settings.api_key:
            conn["password"] = self.settings.api_key
        return conn

    # ---- direct set-up for tests and the demo (no HTTP) --------------------------------------
    def add_pipeline(
        self,
        name: str,
        *,
        running: bool = True,
        paused: bool = False,
        state: str | None = None,
        error: dict[str, Any] | None = None,
        **attrs: Any,
    ) -> EmulatedPipeline:
        """A compiled pipeline, already Running (or Paused, or Stopped), or in ``state`` (one of
        ``DIRECT_STATES``; a Stopping one reaches Stopped after ``stopping_seconds``). ``error`` is a
        ``deployment_error`` it already carries (a pipeline that stopped, or is stopping, because of it)."""
        now = time.time()
        pipeline = EmulatedPipeline(name=name, compiled_at=now - 1, **attrs)
        if state is None:
            state = ("Paused" if paused else "Running") if running or paused else "Stopped"
        if state not in DIRECT_STATES:
            raise ValueError(f"state must be one of {sorted(DIRECT_STATES)}")
        pipeline.timeline = [Step(now, state, DIRECT_STATES[state], error)]
        if state == "Stopping":
            pipeline.forced_stop_pending = True
            pipeline.timeline.append(Step(now + self.settings.stopping_seconds, "Stopped", "Stopped", error))
        if state != "Stopped":
            pipeline.deployment_id = str(uuid.uuid4())
            pipeline.storage_status = "InUse"
        with self._state_lock:
            self.pipelines[name] = pipeline
        return pipeline

    def add_demo_data(self) -> None:
        for name in ("orders_etl", "clickstream", "nightly_fraud_scores"):
            self.add_pipeline(name)

    def status_of(self, name: str) -> str:
        with self._state_lock:
            return self.pipelines[name].current(time.time()).status

    def target_state(self, target_id: str) -> str:
        return self.status_of(target_id)

    stopped_state = "Stopped"
    stop_route = ("POST", "*/stop")
    targets_attr = "pipelines"

    def add_target(self, target_id: str) -> Any:
        return self.add_pipeline(target_id)

    # ---- helpers ---------------------------------------------------------------------------
    def error_response(
        self, status: int, message: str, code: str, details: dict[str, Any] | None = None
    ) -> Response:
        headers = {}
        if status == 503 and self.settings.retry_after_on_503:
            headers["Retry-After"] = "5"
        return JSONResponse(
            {"message": message, "error_code": code, "details": details or {}},
            status_code=status,
            headers=headers,
        )

    def _auth_error(self, request: Request) -> Response | None:
        key = self.settings.api_key
        if key is None:
            return None
        header = request.headers.get("authorization")
        if not header:
            return PlainTextResponse("Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if header != f"Bearer {key}":
            return JSONResponse(
                {"message": "Unauthorized API key", "error_code": "AuthenticationFailed"}, status_code=401
            )
        return None

    def _unknown(self, name: str) -> Response:
        return self.error_response(
            404, f"Unknown pipeline name '{name}'", "UnknownPipelineName", {"pipeline_name": name}
        )

    def _compile_status(self, pipeline: EmulatedPipeline, now: float) -> str:
        elapsed = now - pipeline.compiled_at
        if elapsed < self.settings.compile_seconds / 2:
            return "CompilingSql"
        if elapsed < self.settings.compile_seconds:
            return "CompilingRust"
        return "Success"

    def pipeline_json(self, pipeline: EmulatedPipeline, selector: str) -> dict[str, Any]:
        now = time.time()
        step = pipeline.current(now)
        status = pipeline.status_override or step.status
        resources = status if status in ("Stopped", "Provisioning", "Stopping") else "Provisioned"
        runtime = None if resources != "Provisioned" else status
        since = _now_iso(step.at)
        body: dict[str, Any] = {
            "id": pipeline.id,
            "name": pipeline.name,
            "description": pipeline.description,
            "tags": pipeline.tags,
            "created_at": _now_iso(pipeline.created_at),
            "version": pipeline.version,
            "platform_version": "v0",
            "program_config": pipeline.program_config
            or {"profile": "optimized", "cache": True, "runtime_version": None},
            "program_version": pipeline.program_version,
            "program_status": self._compile_status(pipeline, now),
            "program_status_since": _now_iso(pipeline.compiled_at),
            "deployment_error": step.error,
            "refresh_version": pipeline.version,
            "storage_status": pipeline.storage_status,
            "storage_status_details": None,
            "deployment_id": pipeline.deployment_id if status != "Stopped" else None,
            "deployment_initial": None,
            "deployment_status": status,
            "deployment_status_since": since,
            "deployment_desired_status": step.desired,
            "deployment_desired_status_since": since,
            "deployment_resources_status": resources,
            "deployment_resources_status_details": None,
            "deployment_resources_status_since": since,
            "deployment_resources_desired_status": "Stopped" if step.desired == "Stopped" else "Provisioned",
            "deployment_resources_desired_status_since": since,
            "deployment_runtime_status": runtime,
            "deployment_runtime_status_details": None,
            "deployment_runtime_status_since": since if runtime else None,
            "deployment_runtime_desired_status": None if step.desired == "Stopped" else step.desired,
            "deployment_runtime_desired_status_since": since if runtime else None,
            "bootstrap_policy": None,
            "silent_bootstrap": False,
            "concurrent_bootstrap": False,
        }
        if selector == "all":
            body.update(
                {
                    "program_code": pipeline.program_code,
                    "program_info": {"schema": {"inputs": [], "outputs": []}}
                    if body["program_status"] == "Success"
                    else None,
                    "program_error": {
                        "sql_compilation": None,
                        "rust_compilation": None,
                        "system_error": None,
                    },
                    "runtime_config": pipeline.runtime_config,
                    "udf_rust": pipeline.udf_rust,
                    "udf_toml": pipeline.udf_toml,
                }
            )
        elif selector == "status_with_connectors":
            body["connectors"] = None
        return body

    @staticmethod
    def _bool_query(request: Request, name: str, default: bool) -> bool | Response:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if raw not in ("true", "false"):
            return PlainTextResponse(
                f"Query deserialize error: {name}: provided string was not `true` or `false`", status_code=400
            )
        return raw == "true"

    @staticmethod
    def _selector(request: Request) -> str | Response:
        selector = request.query_params.get("selector", "all")
        if selector not in ("all", "status", "status_with_connectors"):
            return PlainTextResponse(
                f"Query deserialize error: unknown variant `{selector}`, expected one of `all`, `status`, "
                "`status_with_connectors`",
                status_code=400,
            )
        return selector

    # ---- endpoints -------------------------------------------------------------------------
    async def handle_get_config(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        return JSONResponse(
            {
                "edition": self.settings.edition,
                "version": self.settings.version,
                "revision": "emulator",
                "runtime_revision": "emulator",
                "changelog_url": "https://docs.feldera.com/changelog",
                "build_source": "source",
                "posthog": "",
                "conceptualhq": "",
                "product_fruits": "",
                "build_info": {
                    "build_timestamp": _now_iso(),
                    "build_cpu": "x86_64",
                    "build_os": "linux",
                    "cargo_dependencies": "",
                    "cargo_features": "",
                    "cargo_debug": "false",
                    "cargo_opt_level": "3",
                    "cargo_target_triple": "x86_64-unknown-linux-gnu",
                    "rustc_version": "emulated",
                },
                "license_validity": None,
                "update_info": None,
                "unstable_features": None,
            }
        )

    async def handle_list_pipelines(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        selector = self._selector(request)
        if isinstance(selector, Response):
            return selector
        with self._state_lock:
            return JSONResponse([self.pipeline_json(p, selector) for p in self.pipelines.values()])

    async def handle_get_pipeline(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        name = unquote(request.path_params["name"])
        selector = self._selector(request)
        if isinstance(selector, Response):
            return selector
        with self._state_lock:
            pipeline = self.pipelines.get(name)
            if pipeline is None:
                return self._unknown(name)
            return JSONResponse(self.pipeline_json(pipeline, selector))

    async def handle_put_pipeline(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        name = unquote(request.path_params["name"])
        body = await read_json(request) or {}
        with self._state_lock:
            existing = self.pipelines.get(name)
            if existing is not None and existing.current(time.time()).status != "Stopped":
                return self.error_response(
                    400, "Cannot update a pipeline while it is deployed", "CannotUpdateNonShutdownPipeline"
                )
            pipeline = self._upsert(name, body, existing)
            return JSONResponse(self.pipeline_json(pipeline, "all"), status_code=200 if existing else 201)

    async def handle_post_pipelines(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        body = await read_json(request) or {}
        name = str(body.get("name") or "")
        with self._state_lock:
            if name in self.pipelines:
                return self.error_response(409, f"Duplicate name '{name}'", "DuplicateName")
            pipeline = self._upsert(name, body, None)
            return JSONResponse(self.pipeline_json(pipeline, "all"), status_code=201)

    def _upsert(self, name: str, body: dict[str, Any], existing: EmulatedPipeline | None) -> EmulatedPipeline:
        now = time.time()
        pipeline = existing or EmulatedPipeline(name=name, timeline=[Step(now, "Stopped", "Stopped")])
        pipeline.program_code = body.get("program_code", pipeline.program_code) or ""
        pipeline.description = body.get("description") or ""
        pipeline.tags = list(body.get("tags") or [])
        pipeline.program_config = dict(body.get("program_config") or {})
        pipeline.runtime_config = dict(body.get("runtime_config") or {})
        pipeline.udf_rust = body.get("udf_rust") or ""
        pipeline.udf_toml = body.get("udf_toml") or ""
        if existing is not None:
            pipeline.version += 1
            pipeline.program_version += 1
        pipeline.compiled_at = now
        self.pipelines[name] = pipeline
        return pipeline

    async def handle_delete_pipeline(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        name = unquote(request.path_params["name"])
        with self._state_lock:
            if name not in self.pipelines:
                return self._unknown(name)
            del self.pipelines[name]
        return Response(status_code=200)

    async def handle_start(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        name = unquote(request.path_params["name"])
        initial = request.query_params.get("initial", "running")
        if initial not in ("running", "paused", "standby"):
            return self.error_response(
                405, f"Unsupported initial state '{initial}'", "UnsupportedPipelineAction"
            )
        target = initial.capitalize()
        s = self.settings
        with self._state_lock:
            pipeline = self.pipelines.get(name)
            if pipeline is None:
                return self._unknown(name)
            now = time.time()
            step = pipeline.current(now)
            if step.status == "Stopping":
                return self.error_response(
                    400,
                    "Deployment resources status (current: 'Stopping', desired: 'Stopped') cannot have "
                    "desired changed to 'Provisioned'. Cannot restart the pipeline while it is stopping. "
                    "Wait until it is stopped before starting the pipeline again.",
                    "IllegalPipelineAction",
                    {
                        "status": "Stopping",
                        "current_desired_status": "Stopped",
                        "new_desired_status": "Provisioned",
                    },
                )
            pipeline.forced_stop_pending = False
            if step.status == "Stopped":
                pipeline.deployment_id = str(uuid.uuid4())
                pipeline.storage_status = "InUse"
                pipeline.schedule(
                    now,
                    [
                        (0.0, "Provisioning", target, None),
                        (s.provision_seconds, "Initializing", target, None),
                        (s.provision_seconds + s.initialize_seconds, target, target, None),
                    ],
                )
            else:
                pipeline.schedule(now, [(0.0, target, target, None)])
        return JSONResponse("Pipeline is starting", status_code=202)

    async def handle_pause(self, request: Request) -> Response:
        return await self._runtime_action(request, "Paused", "Pipeline is pausing")

    async def handle_resume(self, request: Request) -> Response:
        return await self._runtime_action(request, "Running", "Pipeline is resuming")

    async def _runtime_action(self, request: Request, target: str, message: str) -> Response:
        if err := self._auth_error(request):
            return err
        name = unquote(request.path_params["name"])
        with self._state_lock:
            pipeline = self.pipelines.get(name)
            if pipeline is None:
                return self._unknown(name)
            now = time.time()
            if pipeline.current(now).status not in ("Running", "Paused"):
                return self.error_response(
                    503, "Pipeline is not deployed", "PipelineInteractionNotDeployed", {"pipeline_name": name}
                )
            pipeline.schedule(now, [(0.0, target, target, None)])
        return JSONResponse(message, status_code=202)

    async def handle_stop(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        force = self._bool_query(request, "force", False)
        if isinstance(force, Response):
            return force
        name = unquote(request.path_params["name"])
        s = self.settings
        if not force and s.edition == "Open source":
            # Answered before any lookup: even an unknown name gets 501 (the community-edition branch of
            # post_pipeline_stop in crates/pipeline-manager/src/api/endpoints/pipeline_management.rs).
            return self.error_response(
                501,
                "Cannot use enterprise-only feature (stop?force=false) in Feldera community edition.",
                "EnterpriseFeature",
                {"feature": "stop?force=false"},
            )
        with self._state_lock:
            pipeline = self.pipelines.get(name)
            if pipeline is None:
                return self._unknown(name)
            now = time.time()
            step = pipeline.current(now)
            provisioned = step.status not in ("Stopped", "Provisioning", "Stopping")
            if not force:
                refusal = self._graceful_refusal(pipeline, step, provisioned)
                if refusal is not None:
                    return refusal
            if not force and provisioned:
                # Forwarded to the pipeline's /suspend, which is idempotent (crates/adapters/src/server.rs).
                if step.desired not in ("Suspended", "Stopped"):
                    self._schedule_graceful(pipeline, now, step)
                return JSONResponse("Pipeline is suspending", status_code=202)
            # Forced (or graceful of a pipeline that is not provisioned, on current servers):
            # always legal, idempotent once a forced stop is under way.
            if step.status != "Stopped" and not pipeline.forced_stop_pending:
                self._schedule_forced(pipeline, now, step)
        return JSONResponse("Pipeline is forcefully stopping", status_code=202)

    def _graceful_refusal(self, pipeline: EmulatedPipeline, step: Step, provisioned: bool) -> Response | None:
        """The documented ways Feldera refuses ``/stop?force=false`` (Enterprise), or None."""
        s = self.settings
        name = pipeline.name
        legacy_refusal = (step.desired == "Stopped", step.status == "Provisioning")
        if any(legacy_refusal) and s.graceful_stop_while_stopping == "refuse":
            hint = (
                "Cannot suspend a pipeline which is stopping."
                if legacy_refusal[0]
                else "Cannot suspend a pipeline which is not initializing, running, paused or unavailable."
            )
            return self.error_response(
                400,
                f"Deployment status (current: '{step.status}', desired: '{step.desired}') cannot have "
                f"desired changed to 'Suspended'. {hint}",
                "IllegalPipelineAction",
                {
                    "pipeline_status": step.status,
                    "current_desired_status": step.desired,
                    "new_desired_status": "Suspended",
                    "hint": hint,
                },
            )
        if not provisioned:
            return None
        if step.desired == "Standby":
            return self.error_response(
                400, "Cannot execute suspend transition starting from Standby", "InvalidTransition"
            )
        if step.status == "Unavailable":
            # runner/interaction.rs: a provisioned pipeline whose runtime status is Unavailable.
            return self.error_response(
                503,
                "Unable to interact with pipeline because its status is currently 'unavailable' "
                f'pipeline-id=N/A pipeline-name="{name}"',
                "PipelineUnavailable",
                {"pipeline_name": name},
            )
        if not pipeline.storage and step.desired not in ("Suspended", "Stopped"):
            if s.no_storage_graceful_stop == "refuse":
                reason = (
                    "this pipeline does not support the suspend action for the following reason(s):\n"
                    "    - Storage must be configured"
                )
                return self.error_response(
                    405,
                    f"Unsupported pipeline action 'suspend': {reason}",
                    "UnsupportedPipelineAction",
                    {"action": "suspend", "reason": reason},
                )
            if s.no_storage_graceful_stop == "fail" and pipeline.graceful_stop_error is None:
                pipeline.graceful_stop_error = {
                    "message": "Pipeline failed to suspend: storage must be configured (StorageRequired)",
                    "error_code": "SuspendError",
                    "details": {},
                }
        return None

    def _schedule_forced(self, pipeline: EmulatedPipeline, now: float, step: Step) -> None:
        s = self.settings
        pipeline.stuck_in_stopping = False
        pipeline.forced_stop_pending = True
        error = step.error
        if step.status == "Stopping":
            pipeline.schedule(
                now, [(0.0, "Stopping", "Stopped", error), (s.stopping_seconds, "Stopped", "Stopped", error)]
            )
            return
        pipeline.schedule(
            now,
            [
                (0.0, step.status, "Stopped", error),
                (s.stop_lag_seconds, "Stopping", "Stopped", error),
                (s.stop_lag_seconds + s.stopping_seconds, "Stopped", "Stopped", error),
            ],
        )

    def _schedule_graceful(self, pipeline: EmulatedPipeline, now: float, step: Step) -> None:
        s = self.settings
        t = s.desired_lag_seconds
        steps: list[tuple[float, str, str, dict[str, Any] | None]] = [
            (0.0, step.status, step.desired, None),
            (t, step.status, "Suspended", None),
        ]
        t += s.suspend_seconds
        if s.suspended_seconds > 0:
            steps.append((t, "Suspended", "Suspended", None))
            t += s.suspended_seconds
        error = pipeline.graceful_stop_error
        steps.append((t, "Stopping", "Stopped", error))
        if not pipeline.stuck_in_stopping:
            steps.append((t + s.stopping_seconds, "Stopped", "Stopped", error))
        pipeline.schedule(now, steps)

    async def handle_dismiss_error(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        name = unquote(request.path_params["name"])
        with self._state_lock:
            pipeline = self.pipelines.get(name)
            if pipeline is None:
                return self._unknown(name)
            for step in pipeline.timeline:
                step.error = None
        return JSONResponse("Error dismissed", status_code=200)

    async def handle_clear(self, request: Request) -> Response:
        if err := self._auth_error(request):
            return err
        name = unquote(request.path_params["name"])
        with self._state_lock:
            pipeline = self.pipelines.get(name)
            if pipeline is None:
                return self._unknown(name)
            pipeline.storage_status = "Cleared"
        return JSONResponse("Storage is clearing", status_code=202)

    async def handle_healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "healthy"})

    async def handle_unrouted(self, request: Request) -> Response:
        """An unknown path, or a method its path does not take (see ``wrong_method_status``)."""
        if any(route.matches(request.scope)[0] == Match.PARTIAL for route in self._known_routes):
            return Response(status_code=self.settings.wrong_method_status)
        return Response(status_code=404)

    def routes(self) -> list[Route]:
        p = "/v0/pipelines/{name}"
        self._known_routes = [
            Route("/v0/config", self.handle_get_config, methods=["GET"]),
            Route("/v0/cluster_healthz", self.handle_healthz, methods=["GET"]),
            Route("/v0/pipelines", self.handle_list_pipelines, methods=["GET"]),
            Route("/v0/pipelines", self.handle_post_pipelines, methods=["POST"]),
            Route(p, self.handle_get_pipeline, methods=["GET"]),
            Route(p, self.handle_put_pipeline, methods=["PUT"]),
            Route(p, self.handle_delete_pipeline, methods=["DELETE"]),
            Route(p + "/start", self.handle_start, methods=["POST"]),
            Route(p + "/pause", self.handle_pause, methods=["POST"]),
            Route(p + "/resume", self.handle_resume, methods=["POST"]),
            Route(p + "/stop", self.handle_stop, methods=["POST"]),
            Route(p + "/dismiss_error", self.handle_dismiss_error, methods=["POST"]),
            Route(p + "/clear", self.handle_clear, methods=["POST"]),
        ]
        everything = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return [*self._known_routes, Route("/{rest:path}", self.handle_unrouted, methods=everything)]
