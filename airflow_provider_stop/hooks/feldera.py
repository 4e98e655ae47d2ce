"""Feldera pipeline manager: stop a pipeline and read its deployment status.

Sources: the API reference https://docs.feldera.com/api (``openapi.json`` in the feldera/feldera
repository: ``POST /v0/pipelines/{pipeline_name}/stop``, ``GET /v0/pipelines/{pipeline_name}``,
``ErrorResponse``), the lifecycle guide https://docs.feldera.com/docs/pipelines/lifecycle, and the
manager's source in feldera/feldera: ``crates/pipeline-manager/src/api/endpoints/pipeline_management.rs``
(``post_pipeline_stop``), ``runner/error.rs`` (503 ``PipelineUnavailable``) and
``db/operations/pipeline.rs`` (a stop keeps ``deployment_error``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_stop.hooks.base import StopServiceHook
from airflow_provider_stop.hooks.connection import (
    base_url_from_connection,
    connection_extra,
    rate_from_extra,
    verify_from_extra,
)
from airflow_provider_stop.hooks.data import (
    ApiRequest,
    ApiResponse,
    ClientConfig,
    StopAck,
    TargetStatus,
    quote_segment,
)
from airflow_provider_stop.hooks.errors import (
    FeatureUnavailableError,
    MalformedResponseError,
    StopProviderError,
    StopRejectedError,
    batch_error,
)
from airflow_provider_stop.hooks.validation import answer_id, clip, shown

if TYPE_CHECKING:
    import httpx

    from airflow_provider_stop._compat import Connection

#: ``deployment_status`` values that mean the pipeline no longer runs. ``Suspended`` is normally never
#: observed (the runner goes straight to Stopping) but is terminal if it is.
STOPPED_STATES = frozenset({"Stopped", "Suspended"})
#: Every ``CombinedStatus`` of the 0.337 spec; anything else is logged as unknown and treated as running.
KNOWN_STATES = STOPPED_STATES | {
    "Provisioning",
    "Unavailable",
    "Coordination",
    "Standby",
    "AwaitingApproval",
    "Initializing",
    "Bootstrapping",
    "ConcurrentBootstrapping",
    "Synchronizing",
    "Replaying",
    "Paused",
    "Running",
    "Stopping",
}


#: The documented ways Feldera refuses a graceful stop (``force=false``) because of the pipeline's own
#: state, keyed by (HTTP status, error_code), with what the user is told. Sources: the stop operation
#: in openapi.json (405 example; "a pipeline which is in the process of suspending or stopping can only
#: be forcefully stopped"), ``runner/error.rs`` (503 ``PipelineUnavailable``), the pipeline's
#: ``/suspend`` in ``crates/adapters/src/server.rs`` (400 ``InvalidTransition`` from Standby), and
#: ``validate_deployment_desired_status_transition`` up to v0.147 (400 ``IllegalPipelineAction``).
GRACEFUL_REFUSALS: dict[tuple[int, str], tuple[str, str]] = {
    (503, "PipelineUnavailable"): (
        "unavailable",
        "The pipeline is Unavailable, so it cannot checkpoint.",
    ),
    (405, "UnsupportedPipelineAction"): (
        "no_storage",
        "The pipeline cannot checkpoint (no storage configured).",
    ),
    (400, "IllegalPipelineAction"): (
        "already_stopping",
        "A pipeline that is already stopping (or not yet running) can only be stopped forcefully.",
    ),
    (400, "InvalidTransition"): (
        "standby",
        "A pipeline in Standby cannot checkpoint.",
    ),
}


class GracefulStopRefusedError(StopRejectedError):
    """Feldera refused a graceful stop because of the pipeline's state (not a passing outage: never
    retried). ``reason`` is one of ``unavailable``, ``no_storage``, ``already_stopping``, ``standby``."""

    def __init__(self, message: str, *, reason: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason


def may_force(options: Mapping[str, Any]) -> bool:
    """The user allowed a forced stop when a graceful one cannot be done."""
    return bool(options.get("fallback_to_force")) or options.get("force_after") is not None


class FelderaHook(StopServiceHook, service="feldera"):
    """
    Talks to a Feldera pipeline manager.

    Connection: ``host`` is the manager URL (``http://localhost:8080`` when empty), ``password`` the
    API key (``apikey:…``, sent as ``Authorization: Bearer``; leave empty for a local open-source
    server), extra ``tenant`` is sent as ``Feldera-Tenant``, extra ``verify`` controls TLS checks,
    extra ``requests_per_second`` paces every call to the host (and tenant): no limit is documented.
    """

    target_noun = "pipeline"
    default_host = "http://localhost:8080"

    def build_config(self, conn: Connection) -> ClientConfig:
        extra = connection_extra(conn)
        headers: dict[str, str] = {"User-Agent": "airflow-provider-stop"}
        secrets: tuple[str, ...] = ()
        if conn.password:
            headers["Authorization"] = f"Bearer {conn.password}"
            secrets = (conn.password,)
        tenant = extra.get("tenant")
        if tenant:
            headers["Feldera-Tenant"] = str(tenant)
        base = base_url_from_connection(conn, self.default_host)
        where = f"connection {conn.conn_id!r}"
        return ClientConfig(
            base_url=base + "/v0",
            headers=headers,
            verify=verify_from_extra(extra),
            secrets=secrets,
            # No documented limit: paced only when the connection asks, per host (and tenant).
            settings={
                "account": str(tenant or ""),
                "requests_per_second": rate_from_extra(extra, None, where),
            },
        )

    # ---- requests and answers --------------------------------------------------------------
    def build_stop_request(self, target_id: str, options: Mapping[str, Any]) -> ApiRequest:
        force = bool(options.get("force", False))
        return ApiRequest(
            "POST",
            f"/pipelines/{quote_segment(target_id)}/stop",
            params={"force": "true" if force else "false"},
            target_id=target_id,
        )

    def parse_stop_response(
        self, target_id: str, response: ApiResponse, options: Mapping[str, Any]
    ) -> StopAck:
        # The 202 body is a JSON string ("Pipeline is forcefully stopping"); the spec declares none.
        try:
            body = response.json()
            message = clip(body) if isinstance(body, str) else None
        except MalformedResponseError:
            message = clip(response.text.strip()) or None
        if options.get("fallback_reason"):
            # A graceful stop Feldera refused, sent again as a forced one: say so in the result.
            message = f"{message} (graceful stop refused: {options['fallback_reason']})"
        return StopAck(target_id=target_id, message=message, options={"force": bool(options.get("force"))})

    def build_status_request(self, target_id: str) -> ApiRequest:
        return ApiRequest(
            "GET",
            f"/pipelines/{quote_segment(target_id)}",
            params={"selector": "status"},
            target_id=target_id,
        )

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        return self.status_from_body(target_id, response.json())

    def status_from_body(self, target_id: str, body: Any) -> TargetStatus:
        state = body.get("deployment_status") if isinstance(body, dict) else None
        if not isinstance(state, str):
            raise MalformedResponseError(
                f"Feldera: status of pipeline {target_id!r} has no deployment_status (a string), got "
                f"{shown(state)}",
                target_id=target_id,
            )
        state = clip(state)
        if state not in KNOWN_STATES:
            self.warn_unknown_state(target_id, "deployment_status", state)
        error = body.get("deployment_error")
        if error is not None and not isinstance(error, dict | str):
            raise MalformedResponseError(
                f"Feldera: pipeline {target_id!r}: deployment_error must be an object, got {shown(error)}",
                target_id=target_id,
            )
        error_text = None
        if isinstance(error, dict) and error:
            code, message = error.get("error_code"), error.get("message")
            error_text = f"{clip(code)}: {clip(message)}" if code else clip(message or error)
        elif error:
            error_text = clip(error)
        details = {
            key: body.get(key)
            for key in (
                "deployment_desired_status",
                "deployment_status_since",
                "deployment_resources_status",
                "storage_status",
                "deployment_error",
            )
            if key in body
        }
        return TargetStatus(target_id, state, state in STOPPED_STATES, error_text, details)

    def build_list_request(self) -> ApiRequest:
        return ApiRequest("GET", "/pipelines", params={"selector": "status"})

    def parse_list_response(self, response: ApiResponse) -> list[TargetStatus]:
        body = response.json()
        if not isinstance(body, list):
            raise MalformedResponseError("Feldera: GET /v0/pipelines did not return a list")
        return [self._listed(i, item) for i, item in enumerate(body)]

    def _listed(self, index: int, item: Any) -> TargetStatus:
        if not isinstance(item, dict):
            raise MalformedResponseError(f"Feldera: pipelines[{index}] is not an object: {shown(item)}")
        return self.status_from_body(answer_id(item.get("name"), f"Feldera: pipelines[{index}].name"), item)

    def status_list_requests(self, count: int) -> int | None:
        """``GET /v0/pipelines?selector=status`` shows every pipeline's status in one request."""
        return 1

    def build_test_request(self) -> ApiRequest:
        # /config is public; listing pipelines needs a valid key (read role), so it tests the auth.
        return ApiRequest("GET", "/pipelines", params={"selector": "status"})

    def error_details(self, response: ApiResponse) -> tuple[str, str | None]:
        message, code = super().error_details(response)
        message, code = clip(message), None if code is None else clip(code, 60)
        if code == "EnterpriseFeature":
            message += (
                " A graceful stop (force=False) needs Feldera Enterprise: set force=True "
                "(progress since the last checkpoint is lost), or fallback_to_force=True to do that "
                "automatically."
            )
        return message, code

    def fallback_options(self, error: StopProviderError, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """A graceful stop Feldera refuses becomes a forced one when the user allowed it: the
        Enterprise-only 501 with ``fallback_to_force``; a refusal because of the pipeline's state with
        ``fallback_to_force`` or ``force_after`` (an already stopping pipeline is handled in ``stop``)."""
        if options.get("force"):
            return None
        if isinstance(error, GracefulStopRefusedError):
            if error.reason != "already_stopping" and may_force(options):
                return {**options, "force": True, "fallback_reason": error.reason}
            return None
        if isinstance(error, FeatureUnavailableError) and options.get("fallback_to_force"):
            return {**options, "force": True, "fallback_reason": "enterprise_feature"}
        return None

    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        if response.status_code == 501:
            message, code = self.error_details(response)
            raise FeatureUnavailableError(
                self.redact(
                    f"Feldera: {request.method} {self.describe(request)} -> HTTP 501 {code}: {message}"
                ),
                target_id=request.target_id,
                status_code=501,
                error_code=code,
            )
        if self._is_graceful_stop(request) and response.status_code in (400, 405, 503):
            message, code = self.error_details(response)
            refusal = GRACEFUL_REFUSALS.get((response.status_code, code or ""))
            if refusal is not None:
                reason, why = refusal
                raise GracefulStopRefusedError(
                    self.redact(
                        f"Feldera: graceful stop of pipeline {request.target_id!r} refused: HTTP "
                        f"{response.status_code} {code}: {message}. {why} Set fallback_to_force=True "
                        "(or force_after=<seconds> on the operator) to stop it forcefully instead "
                        "(progress since the last checkpoint is lost), or force=True."
                    ),
                    reason=reason,
                    target_id=request.target_id,
                    status_code=response.status_code,
                    error_code=code,
                )
        super().raise_for_response(request, response)

    @staticmethod
    def _is_graceful_stop(request: ApiRequest) -> bool:
        return (
            request.method == "POST"
            and request.path.endswith("/stop")
            and request.params.get("force") == "false"
        )

    # ---- a graceful stop refused because a stop is already under way ----------------------
    def refused_as_not_running(self, error: StopProviderError) -> bool:
        return isinstance(error, GracefulStopRefusedError) and error.reason == "already_stopping"

    def settle_refusal(
        self, error: StopProviderError, status: TargetStatus, options: Mapping[str, Any]
    ) -> StopAck | dict[str, Any]:
        """Older servers refuse a graceful stop of a pipeline that is stopped or stopping (400). Stopped:
        nothing to stop. Stopping, when the user allowed a forced stop: wait on that stop. Otherwise
        (e.g. still Provisioning) a forced stop, when allowed; else the refusal, saying what to set."""
        if status.stopped:
            return super().settle_refusal(error, status, options)
        if not may_force(options):
            raise error
        if status.details.get("deployment_desired_status") == "Stopped":
            self.log.warning(
                "Feldera: pipeline %r is already stopping (%s); waiting on that stop, not a graceful one",
                status.target_id,
                status.raw_state,
            )
            return self._accepted(
                StopAck(
                    status.target_id,
                    accepted=False,
                    message=f"already stopping ({status.raw_state}); waiting on that stop",
                    options={"force": False},
                )
            )
        self.log.warning("Feldera: %s; stopping it forcefully instead", error)
        return {**options, "force": True, "fallback_reason": "already_stopping"}

    # ---- errors that were there before the stop --------------------------------------------
    def prior_errors(self, target_ids: Sequence[str]) -> dict[str, str]:
        """``deployment_error`` stays set until dismissed, and a stop keeps it
        (``set_deployment_resources_desired_status`` in ``db/operations/pipeline.rs``): the error a
        pipeline carries before the stop is not the stop's. A permanent failure of this read (an unknown
        name) is left to the stop to report; a transient one (the manager cannot answer, after the
        retries) is the stop's failure too: the stop is not sent, and the task may be retried."""
        return self._read_prior(self._map(self.get_status, list(dict.fromkeys(target_ids))))

    async def aprior_errors(self, client: httpx.AsyncClient, target_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(target_ids))
        return self._read_prior(await self._amap(lambda t: self.aget_status(client, t), ids))

    @staticmethod
    def _read_prior(results: Sequence[tuple[str, TargetStatus | StopProviderError]]) -> dict[str, str]:
        transient = {t: r for t, r in results if isinstance(r, StopProviderError) and r.retryable}
        if transient:
            raise batch_error("status check before the stop", transient, len(results))
        return {t: r.error for t, r in results if isinstance(r, TargetStatus) and r.error}
