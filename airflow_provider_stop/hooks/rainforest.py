"""Rainforest API (Traject Data) collections and the sister products' batches.

Facts: ``../shared/api/traject-rainforest.md``.

The API key travels as the ``api_key`` query parameter, so it is in every URL: the shared redactor
removes it from every message, and requests are described by path only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_stop.hooks.base import (
    ApiRequest,
    ApiResponse,
    ClientConfig,
    InvalidInputError,
    MalformedResponseError,
    PaymentRequiredError,
    StopAck,
    StopProviderError,
    StopRejectedError,
    StopServiceHook,
    TargetStatus,
    base_url_from_connection,
    connection_extra,
    quote_segment,
    verify_from_extra,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

STOPPED_STATES = frozenset({"idle"})
KNOWN_STATES = STOPPED_STATES | {"queued", "running"}
RESOURCES = {"collections": "collection", "batches": "batch"}
_PREFIX = re.compile(r"^(/[A-Za-z0-9_-]+)*$")
_COUNT = re.compile(r"(\d+)\s+\w+\s+stopped")


class RainforestHook(StopServiceHook):
    """
    Talks to the Traject Data collections / batches API.

    Connection: ``password`` is the API key. ``host`` defaults to ``https://api.rainforestapi.com``.
    Extras for the sister products: ``resource`` (``collections`` or ``batches``) and ``path_prefix``
    (``/live`` for SerpWow), e.g. host ``https://api.serpwow.com``, ``batches``, ``/live``.
    """

    conn_name_attr = "rainforest_conn_id"
    default_conn_name = "rainforest_default"
    conn_type = "rainforest"
    hook_name = "Rainforest"
    target_noun = "collection"
    target_param = "collection_id"
    default_host = "https://api.rainforestapi.com"

    def build_config(self, conn: Connection) -> ClientConfig:
        extra = connection_extra(conn)
        if not conn.password:
            raise InvalidInputError(f"connection {conn.conn_id!r} needs the API key in its password field")
        resource = str(extra.get("resource") or "collections")
        if resource not in RESOURCES:
            raise InvalidInputError(
                f"connection {conn.conn_id!r}: resource must be one of {sorted(RESOURCES)}, got {resource!r}"
            )
        prefix = str(extra.get("path_prefix") or "").rstrip("/")
        if not _PREFIX.fullmatch(prefix):
            raise InvalidInputError(
                f"connection {conn.conn_id!r}: path_prefix must look like '/live', got {prefix!r}"
            )
        return ClientConfig(
            base_url=base_url_from_connection(conn, self.default_host) + prefix,
            headers={"User-Agent": "airflow-provider-stop"},
            params={"api_key": conn.password},
            verify=verify_from_extra(extra),
            secrets=(conn.password,),
            settings={"resource": resource},
        )

    @property
    def resource(self) -> str:
        """``collections`` or ``batches``, from the connection."""
        return str(self.config.settings["resource"])

    @property
    def object_key(self) -> str:
        return RESOURCES[self.resource]

    def _path(self, *segments: str) -> str:
        return "/" + "/".join([self.resource, *segments])

    # ---- answers ----------------------------------------------------------------------------
    def _body(self, response: ApiResponse) -> dict[str, Any]:
        body = response.json()
        info = body.get("request_info") if isinstance(body, dict) else None
        if not isinstance(info, dict):
            raise MalformedResponseError(f"{self.hook_name}: the response has no request_info")
        return body

    def error_details(self, response: ApiResponse) -> tuple[str, str | None]:
        try:
            info = self._body(response)["request_info"]
        except MalformedResponseError:
            return super().error_details(response)
        return str(info.get("message") or f"HTTP {response.status_code}"), None

    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        if response.status_code == 402:
            message, _ = self.error_details(response)
            raise PaymentRequiredError(
                f"{self.hook_name}: {self.describe(request)} -> HTTP 402: {message}", status_code=402
            )
        super().raise_for_response(request, response)
        try:
            info = self._body(response)["request_info"]
        except MalformedResponseError:
            return
        if info.get("success") is False:
            raise StopRejectedError(
                f"{self.hook_name}: {self.describe(request)}: {info.get('message')}",
                target_id=request.target_id,
            )

    def refused_as_not_running(self, error: StopProviderError) -> bool:
        # Stopping an idle collection is an error whose status code is unconfirmed (400 likely).
        return isinstance(error, StopRejectedError) and error.status_code in (None, 400, 409, 422)

    # ---- requests ---------------------------------------------------------------------------
    def build_stop_request(self, target_id: str, options: Mapping[str, Any]) -> ApiRequest:
        return ApiRequest("GET", self._path(quote_segment(target_id), "stop"), target_id=target_id)

    def parse_stop_response(
        self, target_id: str, response: ApiResponse, options: Mapping[str, Any]
    ) -> StopAck:
        message = str(self._body(response)["request_info"].get("message") or "stopped")
        refunded = True if "refund" in message.lower() and "no refund" not in message.lower() else None
        return StopAck(target_id, message=message, options={"credits_refunded": refunded})

    def build_status_request(self, target_id: str) -> ApiRequest:
        return ApiRequest("GET", self._path(quote_segment(target_id)), target_id=target_id)

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        body = self._body(response)
        item = body.get(self.object_key)
        if not isinstance(item, dict):
            raise MalformedResponseError(
                f"{self.hook_name}: the answer for {target_id!r} has no {self.object_key}"
            )
        return self._status(target_id, item)

    def _status(self, target_id: str, item: Mapping[str, Any]) -> TargetStatus:
        state = item.get("status")
        if not isinstance(state, str):
            raise MalformedResponseError(f"{self.hook_name}: {self.object_key} {target_id!r} has no status")
        if state not in KNOWN_STATES:
            self.warn_unknown_state(target_id, "status", state)
        details = {
            k: item.get(k) for k in ("name", "last_run", "requests_total_count", "results_count") if k in item
        }
        return TargetStatus(target_id, state, state in STOPPED_STATES, None, details)

    def build_list_request(self) -> ApiRequest:
        # Limited to 60 requests a minute: used once per stop-all, never to poll.
        return ApiRequest("GET", self._path())

    def parse_list_response(self, response: ApiResponse) -> list[TargetStatus]:
        items = self._body(response).get(self.resource)
        if not isinstance(items, list):
            raise MalformedResponseError(f"{self.hook_name}: the list has no {self.resource}")
        return [self._status(str(i.get("id")), i) for i in items if isinstance(i, dict)]

    def build_test_request(self) -> ApiRequest:
        return self.build_list_request()

    # ---- stop-all: one call --------------------------------------------------------------
    def stop_all_targets(self, target_ids: Sequence[str], **options: Any) -> dict[str, StopAck]:
        """``GET /collections/stopall`` once; ``target_ids`` are those listed as queued or running."""
        response = self.send(ApiRequest("GET", self._path("stopall")))
        message = str(self._body(response)["request_info"].get("message") or "")
        match = _COUNT.search(message)
        count = int(match.group(1)) if match else None
        self.log.info(
            "%s: stopall answered %r (%d listed as queued or running)",
            self.hook_name,
            message,
            len(target_ids),
        )
        if count is not None and count != len(target_ids):
            self.log.warning(
                "%s: stopall stopped %d but %d were listed: one may have started or ended in between",
                self.hook_name,
                count,
                len(target_ids),
            )
        return {t: StopAck(t, message=message, options={"stopped_count": count}) for t in target_ids}
