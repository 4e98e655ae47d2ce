"""DataSift Managed Sources v1.6: stop a source and read its status (``../shared/api/datasift.md``).

Every answer publishes the account's credit budget (``X-RateLimit-Remaining``, ``-Cost``, ``-Reset``);
the hook waits for the reset rather than spend a call that would be refused with 403/429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_stop.hooks.base import (
    ApiRequest,
    ApiResponse,
    ClientConfig,
    InvalidInputError,
    MalformedResponseError,
    RateLimitedError,
    StopAck,
    StopProviderError,
    StopRejectedError,
    StopServiceHook,
    TargetStatus,
    base_url_from_connection,
    connection_extra,
    verify_from_extra,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

RUNNING_STATES = frozenset({"running", "active"})
STOPPED_STATES = frozenset({"stopped", "paused", "disabled", "deleted"})
ERROR_STATES = frozenset({"failed", "problematic"})
STOP_FORMS = ("put_form", "post_json")
#: Credits a source/get, stop or start costs (recorded traffic).
DEFAULT_COST = 5


class DataSiftHook(StopServiceHook):
    """
    Talks to DataSift Managed Sources.

    Connection: ``login`` is the username, ``password`` the API key (sent as the raw header
    ``Authorization: username:apikey``). ``host`` defaults to ``https://api.datasift.com``; extra
    ``api_version`` (``v1.6``) and ``stop_form``: ``put_form`` (documented) or ``post_json`` (what the
    official clients sent).
    """

    conn_name_attr = "datasift_conn_id"
    default_conn_name = "datasift_default"
    conn_type = "datasift"
    hook_name = "DataSift"
    target_noun = "source"
    target_param = "source_id"
    default_host = "https://api.datasift.com"

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        source_type: str | None = None,
        max_budget_wait: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id, **kwargs)
        #: Longest wait for the budget to reset inside one task; beyond it the task's retries take over.
        self.max_budget_wait = max_budget_wait
        #: Only sources of this type are listed (stop-all).
        self.source_type = source_type
        self._budget_lock = threading.Lock()
        self.remaining: int | None = None
        self.cost: int = DEFAULT_COST
        self.reset_at: float | None = None

    def build_config(self, conn: Connection) -> ClientConfig:
        extra = connection_extra(conn)
        if not conn.login or not conn.password:
            raise InvalidInputError(
                f"connection {conn.conn_id!r} needs the DataSift username (login) and API key"
            )
        version = str(extra.get("api_version") or "v1.6")
        if not version.startswith("v") or not version[1:].replace(".", "").isdigit():
            raise InvalidInputError(
                f"connection {conn.conn_id!r}: api_version must look like 'v1.6', got {version!r}"
            )
        stop_form = str(extra.get("stop_form") or "put_form")
        if stop_form not in STOP_FORMS:
            raise InvalidInputError(
                f"connection {conn.conn_id!r}: stop_form must be one of {STOP_FORMS}, got {stop_form!r}"
            )
        header = f"{conn.login}:{conn.password}"
        return ClientConfig(
            base_url=f"{base_url_from_connection(conn, self.default_host)}/{version}",
            headers={"Authorization": header, "User-Agent": "airflow-provider-stop"},
            verify=verify_from_extra(extra),
            secrets=(conn.password, header),
            settings={"stop_form": stop_form},
        )

    # ---- the credit budget ----------------------------------------------------------------
    def observe_response(self, response: ApiResponse) -> None:
        def number(name: str) -> int | None:
            value = response.header(name)
            return int(value) if value and value.strip().isdigit() else None

        with self._budget_lock:
            if (remaining := number("x-ratelimit-remaining")) is not None:
                self.remaining = remaining
            if (cost := number("x-ratelimit-cost")) is not None:
                self.cost = cost
            if (reset := number("x-ratelimit-reset")) is not None:
                self.reset_at = float(reset)
            elif (ttl := number("x-ratelimit-reset-ttl")) is not None:
                self.reset_at = time.time() + ttl

    def budget_wait(self, request: ApiRequest) -> float:
        with self._budget_lock:
            if self.remaining is None or self.reset_at is None or self.remaining >= self.cost:
                return 0.0
            # The header has one-second resolution: wake a second late rather than a moment early.
            wait = self.reset_at + 1.0 - time.time()
            if wait <= 0:
                self.remaining = None  # a new period: the next answer tells the new budget
                return 0.0
        if wait > self.max_budget_wait:
            raise RateLimitedError(
                f"DataSift: {self.remaining} credits left, a call costs {self.cost}, the budget resets in "
                f"{wait:.0f}s",
                retry_after=wait,
            )
        self.log.warning(
            "DataSift: %s credits left and a call costs %s: waiting %.0fs for the budget to reset",
            self.remaining,
            self.cost,
            wait,
        )
        return wait

    def budget_summary(self) -> str:
        return (
            f"{self.remaining} credits left (a call costs {self.cost})" if self.remaining is not None else ""
        )

    def stop_many(self, target_ids: Sequence[str], **kwargs: Any) -> dict[str, StopAck]:
        try:
            return super().stop_many(target_ids, **kwargs)
        finally:
            self.log.info("DataSift: after stopping %d source(s): %s", len(target_ids), self.budget_summary())

    def wait_until_stopped(
        self, target_ids: Sequence[str], *, poll_interval: float, deadline: float
    ) -> dict[str, TargetStatus]:
        try:
            return super().wait_until_stopped(target_ids, poll_interval=poll_interval, deadline=deadline)
        finally:
            self.log.info(
                "DataSift: after waiting for %d source(s): %s", len(target_ids), self.budget_summary()
            )

    # ---- errors ---------------------------------------------------------------------------
    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        if response.status_code in (403, 429):
            cost, remaining = response.header("x-ratelimit-cost"), response.header("x-ratelimit-remaining")
            if response.status_code == 429 or (
                cost and remaining and cost.isdigit() and remaining.isdigit() and int(cost) > int(remaining)
            ):
                message, _ = self.error_details(response)
                wait = (self.reset_at - time.time()) if self.reset_at else None
                raise RateLimitedError(
                    f"DataSift: {self.describe(request)} -> HTTP {response.status_code}: {message}",
                    retry_after=max(0.0, wait) if wait is not None else None,
                    status_code=response.status_code,
                )
        super().raise_for_response(request, response)

    def refused_as_not_running(self, error: StopProviderError) -> bool:
        # 409 "not in a stoppable state" (seed doc; 400 before v1.6): a GET decides.
        return isinstance(error, StopRejectedError) and error.status_code in (400, 409)

    # ---- requests and answers -------------------------------------------------------------
    def build_stop_request(self, target_id: str, options: Mapping[str, Any]) -> ApiRequest:
        if self.config.settings["stop_form"] == "post_json":
            return ApiRequest("POST", "/source/stop", json={"id": target_id}, target_id=target_id)
        return ApiRequest("PUT", "/source/stop", form={"id": target_id}, target_id=target_id)

    def parse_stop_response(
        self, target_id: str, response: ApiResponse, options: Mapping[str, Any]
    ) -> StopAck:
        body = response.json()  # unreadable: the base keeps the stop as sent, and the wait decides
        state = body.get("status") if isinstance(body, dict) else None
        return StopAck(target_id, message=f"status {state}" if state else "stop accepted")

    def build_status_request(self, target_id: str) -> ApiRequest:
        return ApiRequest("GET", "/source/get", params={"id": target_id}, target_id=target_id)

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        return self._status(target_id, self.json_object(response, f"source {target_id!r}"))

    def _status(self, target_id: str, body: Mapping[str, Any]) -> TargetStatus:
        state = body.get("status")
        if not isinstance(state, str):
            raise MalformedResponseError(f"DataSift: source {target_id!r} has no status")
        if state not in RUNNING_STATES | STOPPED_STATES | ERROR_STATES:
            self.warn_unknown_state(target_id, "status", state)
        stopped = state in STOPPED_STATES | ERROR_STATES
        error = f"source is {state}" if state in ERROR_STATES else None
        details = {k: body.get(k) for k in ("name", "source_type", "created_at") if k in body}
        return TargetStatus(target_id, state, stopped, error, details)

    def list_targets(self) -> list[TargetStatus]:
        """Every source, page by page (``per_page`` 100), optionally of one ``source_type``."""
        statuses: list[TargetStatus] = []
        page = 1
        while True:
            params = {"page": str(page), "per_page": "100"}
            if self.source_type:
                params["source_type"] = self.source_type
            body = self.send(ApiRequest("GET", "/source/get", params=params), lambda r: r.json())
            if not isinstance(body, dict) or not isinstance(body.get("sources"), list):
                raise MalformedResponseError("DataSift: the source list has no sources")
            statuses += [self._status(str(s.get("id")), s) for s in body["sources"] if isinstance(s, dict)]
            if page >= int(body.get("pages") or 0):
                return statuses
            page += 1

    def build_test_request(self) -> ApiRequest:
        return ApiRequest("GET", "/source/get", params={"page": "1", "per_page": "1"})
