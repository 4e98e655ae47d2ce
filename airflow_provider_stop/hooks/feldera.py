"""Feldera pipeline manager: stop a pipeline and read its deployment status (``../shared/api/feldera.md``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_stop.hooks.base import (
    ApiRequest,
    ApiResponse,
    ClientConfig,
    FeatureUnavailableError,
    MalformedResponseError,
    StopAck,
    StopProviderError,
    StopServiceHook,
    TargetStatus,
    base_url_from_connection,
    connection_extra,
    quote_segment,
    verify_from_extra,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

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


class FelderaHook(StopServiceHook):
    """
    Talks to a Feldera pipeline manager.

    Connection: ``host`` is the manager URL (``http://localhost:8080`` when empty), ``password`` the
    API key (``apikey:…``, sent as ``Authorization: Bearer``; leave empty for a local open-source
    server), extra ``tenant`` is sent as ``Feldera-Tenant``, extra ``verify`` controls TLS checks.
    """

    conn_name_attr = "feldera_conn_id"
    default_conn_name = "feldera_default"
    conn_type = "feldera"
    hook_name = "Feldera"
    target_noun = "pipeline"
    target_param = "pipeline_name"
    default_host = "http://localhost:8080"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "Pipeline manager URL", "password": "API key"},
            "placeholders": {"host": "http://localhost:8080", "password": "apikey:… (empty: no auth)"},
        }

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
        return ClientConfig(
            base_url=base + "/v0", headers=headers, verify=verify_from_extra(extra), secrets=secrets
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
            message = body if isinstance(body, str) else None
        except MalformedResponseError:
            message = response.text.strip()[:200] or None
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
        if not isinstance(body, dict) or not isinstance(body.get("deployment_status"), str):
            raise MalformedResponseError(
                f"Feldera: status of pipeline {target_id!r} has no deployment_status", target_id=target_id
            )
        state = body["deployment_status"]
        if state not in KNOWN_STATES:
            self.warn_unknown_state(target_id, "deployment_status", state)
        error = body.get("deployment_error")
        error_text = None
        if error:
            if isinstance(error, dict):
                code = error.get("error_code")
                error_text = f"{code}: {error.get('message')}" if code else str(error.get("message") or error)
            else:
                error_text = str(error)
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
        return [self.status_from_body(str(item.get("name")), item) for item in body if isinstance(item, dict)]

    def build_test_request(self) -> ApiRequest:
        # /config is public; listing pipelines needs a valid key (read role), so it tests the auth.
        return ApiRequest("GET", "/pipelines", params={"selector": "status"})

    def error_details(self, response: ApiResponse) -> tuple[str, str | None]:
        message, code = super().error_details(response)
        if code == "EnterpriseFeature":
            message += (
                " A graceful stop (force=False) needs Feldera Enterprise: set force=True "
                "(progress since the last checkpoint is lost), or fallback_to_force=True to do that "
                "automatically."
            )
        return message, code

    def fallback_options(self, error: StopProviderError, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """A graceful stop refused as Enterprise-only becomes a forced one when the user allowed it."""
        if (
            isinstance(error, FeatureUnavailableError)
            and options.get("fallback_to_force")
            and not options.get("force")
        ):
            return {**options, "force": True}
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
        super().raise_for_response(request, response)
