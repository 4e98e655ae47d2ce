"""DataForSEO On-Page: force-stop crawl tasks and read their summary.

Sources: https://docs.dataforseo.com/v3/on_page/force_stop, https://docs.dataforseo.com/v3/on_page/summary,
https://docs.dataforseo.com/v3/appendix/errors, and the official client generated from DataForSEO's
OpenAPI (PyPI ``dataforseo-client``, GitHub ``dataforseo/PythonClient``: ``api/on_page_api.py``,
``models/on_page_summary_result_info.py``).

The API answers HTTP 200 for almost everything: success and failure live in the envelope's
``status_code`` and in every task's own ``status_code`` (20000 = ok).

What force_stop answers for a task that already finished, or that is still queued, is not documented.
So an id it refuses with a task-level code is settled by a summary read: a finished task was already
stopped; a queued one (40602 "Task In Queue." or a summary without a result) counts as sent, and the
wait decides. A queued task the service keeps reporting as queued after the stop never started: with
``queued_grace`` set (the operator and the notifier set it) the wait reports it stopped, as
``in_queue`` with ``details.never_started``, instead of sitting until its deadline.
"""

from __future__ import annotations

import base64
import time
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
    AuthenticationError,
    InvalidInputError,
    MalformedResponseError,
    PaymentRequiredError,
    RateLimitedError,
    ServiceUnavailableError,
    StopProviderError,
    StopRejectedError,
    TargetNotFoundError,
)
from airflow_provider_stop.hooks.validation import (
    ascii_int,
    clip,
    optional_text,
    shown,
    validate_positive_number,
)

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Connection

OK = 20000
TASK_IN_QUEUE = 40602
#: ``raw_state`` of a task that has not started crawling (summary 40602, or 20000 without a result).
QUEUED = "in_queue"
AUTH_CODES = {40100, 40201, 40207}
PAYMENT_CODES = {40200, 40203, 40204}
RATE_LIMIT_CODES = {40202}
NOT_FOUND_CODES = {40400, 40401}
#: 40103 "Task execution failed, please try to resubmit"; 5xxxx server-side trouble.
TRANSIENT_CODES = {40103}


def code_error(code: int, message: Any, target_id: str | None = None) -> StopProviderError:
    """The named error for a DataForSEO internal status code; ``message`` is the service's text."""
    text = f"DataForSEO: {code} {clip(message)}" + (f" (crawl task {target_id!r})" if target_id else "")
    kwargs: dict[str, Any] = {"target_id": target_id, "error_code": str(code)}
    if code in AUTH_CODES:
        return AuthenticationError(text, **kwargs)
    if code in PAYMENT_CODES:
        return PaymentRequiredError(text, **kwargs)
    if code in RATE_LIMIT_CODES:
        return RateLimitedError(text + " (limit: 2000 requests a minute)", **kwargs)
    if code in NOT_FOUND_CODES:
        return TargetNotFoundError(text, **kwargs)
    if code in TRANSIENT_CODES or code >= 50000:
        return ServiceUnavailableError(text, **kwargs)
    return StopRejectedError(text, **kwargs)


def _dict(value: Any, field: str) -> dict[str, Any]:
    """An optional object of the answer: absent (null) is empty, any other type is malformed."""
    if value is None or isinstance(value, dict):
        return value or {}
    raise MalformedResponseError(f"DataForSEO: {field} must be an object, got {shown(value)}")


def status_code(value: Any, field: str) -> int:
    """A DataForSEO status code has five digits (20000 ok, 4xxxx refused, 5xxxx the server's trouble)."""
    return ascii_int(value, f"DataForSEO: {field}", minimum=10000, maximum=99999)


def envelope(response: ApiResponse) -> dict[str, Any]:
    body = response.json()
    if not isinstance(body, dict):
        raise MalformedResponseError("DataForSEO: the response is not a DataForSEO envelope (an object)")
    status_code(body.get("status_code"), "the envelope's status_code")
    tasks = body.get("tasks")
    if not isinstance(tasks if tasks is not None else [], list):
        raise MalformedResponseError(f"DataForSEO: the envelope's tasks must be a list, got {shown(tasks)}")
    return body


def tasks_of(response: ApiResponse) -> list[tuple[dict[str, Any], int]]:
    """The envelope's tasks with their status codes: each task an object, each code five digits."""
    tasks = envelope(response).get("tasks") or []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise MalformedResponseError(f"DataForSEO: tasks[{i}] must be an object, got {shown(task)}")
    return [(t, status_code(t.get("status_code"), f"tasks[{i}].status_code")) for i, t in enumerate(tasks)]


class DataForSeoHook(StopServiceHook, service="dataforseo"):
    """
    Talks to DataForSEO v3 On-Page.

    Connection: ``login`` and ``password`` are the API credentials (HTTP Basic). ``host`` defaults to
    ``https://api.dataforseo.com``; extra ``sandbox: true`` selects ``https://sandbox.dataforseo.com``.

    Waits read each task's summary (no ``status_list_requests``): no list of tasks' crawl states is
    confirmed. ``tasks_ready`` shows only tasks finished and not yet collected (20 calls a minute,
    https://docs.dataforseo.com/v3/on_page/tasks_ready), and what ``id_list``'s ``status`` says of a
    crawl is not documented, so neither can stand for a summary read.
    """

    target_noun = "crawl task"
    #: 2000 requests a minute per account: 16 in flight keeps a 1000-id wait well under it.
    max_concurrency = 16
    #: 2000 requests a minute per account (33/s), with a margin; extra ``requests_per_second`` overrides.
    requests_per_second = 30.0
    #: force_stop takes at most 1000 ids a call.
    stop_batch_size = 1000
    default_host = "https://api.dataforseo.com"
    sandbox_host = "https://sandbox.dataforseo.com"

    def __init__(
        self, conn_id: str | None = None, *, queued_grace: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(conn_id, **kwargs)
        #: Seconds a wait accepts a task still reported queued before taking it for stopped (never
        #: started); None (sensors): a queued task is not stopped, however long it waits.
        self.queued_grace = validate_positive_number(queued_grace, "queued_grace", allow_none=True)
        self._queued_since: dict[str, float] = {}

    def build_config(self, conn: Connection) -> ClientConfig:
        extra = connection_extra(conn)
        if not conn.login or not conn.password:
            raise InvalidInputError(
                f"connection {conn.conn_id!r} needs the DataForSEO API login and password (HTTP Basic)"
            )
        sandbox = str(extra.get("sandbox", "")).lower() in ("true", "1", "yes")
        base = base_url_from_connection(conn, self.sandbox_host if sandbox else self.default_host)
        token = base64.b64encode(f"{conn.login}:{conn.password}".encode()).decode()
        return ClientConfig(
            base_url=base,
            headers={"Authorization": f"Basic {token}", "User-Agent": "airflow-provider-stop"},
            verify=verify_from_extra(extra),
            secrets=(conn.password, token),
            settings={
                "account": conn.login,
                "requests_per_second": rate_from_extra(
                    extra, self.requests_per_second, f"connection {conn.conn_id!r}"
                ),
            },
        )

    # ---- errors: HTTP first, then the envelope --------------------------------------------
    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        status = response.status_code
        if status == 402:
            raise PaymentRequiredError(
                f"DataForSEO: {request.method} {self.describe(request)} -> HTTP 402 Payment Required",
                status_code=402,
            )
        if status == 404:
            raise StopRejectedError(
                f"DataForSEO: {self.describe(request)} -> HTTP 404: endpoint not found; "
                "check the connection host",
                status_code=404,
            )
        super().raise_for_response(request, response)
        try:
            body = response.json()
        except MalformedResponseError:
            return  # a stop's broken body is judged by the parser, outside the retry
        try:  # an envelope that cannot be read is judged by the parser too
            code = status_code(body.get("status_code") if isinstance(body, dict) else None, "status_code")
        except MalformedResponseError:
            return
        if code != OK:
            raise code_error(code, body.get("status_message"))

    # ---- stop -----------------------------------------------------------------------------
    def build_batch_stop_request(self, target_ids: Sequence[str], options: Mapping[str, Any]) -> ApiRequest:
        return ApiRequest("POST", "/v3/on_page/force_stop", json=[{"id": t} for t in target_ids])

    def parse_batch_stop_response(
        self, target_ids: Sequence[str], response: ApiResponse, options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        results: dict[str, StopAck | StopProviderError] = {}
        wanted = set(target_ids)
        for i, (task, code) in enumerate(tasks_of(response)):
            tid = _dict(task.get("data"), f"tasks[{i}].data").get("id") or task.get("id")
            tid = optional_text(tid, f"DataForSEO: tasks[{i}].id")
            if tid not in wanted:
                continue
            message = task.get("status_message")
            if code == OK:
                text = None if message is None else clip(message)
                results[tid] = StopAck(tid, message=text, options={"cost": task.get("cost")})
            else:
                results[tid] = code_error(code, message, tid)
        return results

    # ---- ids force_stop refused: a summary read settles them --------------------------------
    def refused_as_not_running(self, error: StopProviderError) -> bool:
        """An id refused with a task-level code (the call itself went through): finished or queued?"""
        return isinstance(error, StopRejectedError | TargetNotFoundError) and bool(error.error_code)

    def settle_refusal(
        self, error: StopProviderError, status: TargetStatus, options: Mapping[str, Any]
    ) -> StopAck | dict[str, Any]:
        """An already finished task was stopped before us; a queued one counts as sent (the wait
        decides); anything else (running, unknown id) keeps the refusal."""
        said = f"force_stop answered {error.error_code} ({error.message})"
        tid = status.target_id
        if status.stopped:
            reason = clip(status.details.get("crawl_stop_reason"))
            return self._accepted(
                StopAck(
                    tid, accepted=False, already_stopped=True, message=f"{said}; summary: finished ({reason})"
                )
            )
        if status.raw_state == QUEUED:
            return self._accepted(StopAck(tid, message=f"{said}; summary: still queued, never started"))
        raise error

    # ---- status ---------------------------------------------------------------------------
    def _after_grace(self, status: TargetStatus) -> TargetStatus:
        """A task still queued ``queued_grace`` seconds into a wait never started: stopped."""
        tid = status.target_id
        if status.raw_state != QUEUED or self.queued_grace is None:
            self._queued_since.pop(tid, None)
            return status
        waited = time.monotonic() - self._queued_since.setdefault(tid, time.monotonic())
        if waited < self.queued_grace:
            return status
        self.log.warning(
            "DataForSEO: crawl task %r is still queued %.0fs after the stop (queued_grace); it never "
            "started crawling: taking it for stopped",
            tid,
            waited,
        )
        details = {**status.details, "never_started": True, "queued_seconds": round(waited, 1)}
        return TargetStatus(tid, QUEUED, True, None, details)

    def build_status_request(self, target_id: str) -> ApiRequest:
        return ApiRequest("GET", f"/v3/on_page/summary/{quote_segment(target_id)}", target_id=target_id)

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        return self._after_grace(self._summary_status(target_id, response))

    def _summary_status(self, target_id: str, response: ApiResponse) -> TargetStatus:
        tasks = tasks_of(response)
        if not tasks:
            raise MalformedResponseError(f"DataForSEO: summary of {target_id!r} has no task")
        task, code = tasks[0]
        if code == TASK_IN_QUEUE:
            return TargetStatus(target_id, QUEUED, False, details={"cost": task.get("cost")})
        if code != OK:
            raise code_error(code, task.get("status_message"), target_id)
        result = task.get("result")
        if result is not None and not isinstance(result, list):
            raise MalformedResponseError(
                f"DataForSEO: summary of {target_id!r}: result must be a list, got {shown(result)}"
            )
        if not result:  # 20000 without a result: not crawling yet
            return TargetStatus(target_id, QUEUED, False, details={"cost": task.get("cost")})
        summary = result[0]
        if not isinstance(summary, dict):
            raise MalformedResponseError(
                f"DataForSEO: summary of {target_id!r}: result[0] must be an object, got {shown(summary)}"
            )
        progress = summary.get("crawl_progress")
        if not isinstance(progress, str):
            raise MalformedResponseError(
                f"DataForSEO: summary of {target_id!r}: crawl_progress must be a string, "
                f"got {shown(progress)}"
            )
        progress = clip(progress)
        if progress not in ("in_progress", "finished"):
            self.warn_unknown_state(target_id, "crawl_progress", progress)
        reason = summary.get("crawl_stop_reason")
        crawl_status = _dict(summary.get("crawl_status"), f"summary of {target_id!r}: crawl_status")
        domain = _dict(summary.get("domain_info"), f"summary of {target_id!r}: domain_info")
        details = {
            "crawl_stop_reason": reason,
            "pages_crawled": crawl_status.get("pages_crawled"),
            "max_crawl_pages": crawl_status.get("max_crawl_pages"),
            "crawl_end": domain.get("crawl_end"),
            "cost": task.get("cost"),
        }
        error = "crawl ended with unexpected_exception" if reason == "unexpected_exception" else None
        return TargetStatus(target_id, progress, progress == "finished", error, details)

    def build_test_request(self) -> ApiRequest:
        # Free; limited to 20 calls a minute, which a connection test never approaches.
        return ApiRequest("GET", "/v3/on_page/tasks_ready")
