"""The Toy service's hook: endpoints, auth and state mapping, as plain functions of data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_stop.hooks.base import StopServiceHook
from airflow_provider_stop.hooks.connection import (
    base_url_from_connection,
    connection_extra,
    verify_from_extra,
)
from airflow_provider_stop.hooks.data import (
    ApiRequest,
    ApiResponse,
    ClientConfig,
    TargetStatus,
    quote_segment,
)
from airflow_provider_stop.hooks.errors import InvalidInputError, MalformedResponseError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

RUNNING = frozenset({"running", "stopping"})
STOPPED = frozenset({"stopped"})


class ToyHook(StopServiceHook, service="toy"):
    """Talks to a Toy server: ``host`` is its URL, ``password`` the bearer token."""

    target_noun = "job"

    def build_config(self, conn: Connection) -> ClientConfig:
        if not conn.password:
            raise InvalidInputError(f"connection {conn.conn_id!r} needs the Toy token in the password")
        return ClientConfig(
            base_url=base_url_from_connection(conn, None) + "/v1",
            headers={"Authorization": f"Bearer {conn.password}"},
            verify=verify_from_extra(connection_extra(conn)),
            secrets=(conn.password,),
        )

    def build_stop_request(self, target_id: str, options: Mapping[str, Any]) -> ApiRequest:
        return ApiRequest("POST", f"/jobs/{quote_segment(target_id)}/stop", target_id=target_id)

    def build_status_request(self, target_id: str) -> ApiRequest:
        return ApiRequest("GET", f"/jobs/{quote_segment(target_id)}", target_id=target_id)

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        state = self.json_object(response, f"job {target_id!r}").get("state")
        if not isinstance(state, str):
            raise MalformedResponseError(f"Toy: job {target_id!r} has no state", target_id=target_id)
        if state not in RUNNING | STOPPED:
            self.warn_unknown_state(target_id, "state", state)
        return TargetStatus(target_id, state, state in STOPPED)

    def build_test_request(self) -> ApiRequest:
        return ApiRequest("GET", "/me")
