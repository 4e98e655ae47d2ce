"""DataSift Managed Sources v1.6: stop a source and read its status.

Public sources: the docs (https://dev.datasift.com/docs/platform/api/rest-api/endpoints/sourcestop,
``.../sourceget``, ``.../api-rate-limiting``, ``.../http-response-codes``); the official clients:
GitHub ``datasift/datasift-python`` ``datasift/managed_sources.py`` (``ManagedSources.stop``: POST with a
JSON body, ``datasift/request.py``) and ``datasift/datasift-ruby`` ``lib/managed_source.rb``, whose
recorded traffic ``test/fixtures/cassettes/v1_6/source/source_stop.json`` shows
``POST /v1.6/source/stop`` with ``Content-Type: application/json`` answered 200, then
``GET /v1.6/source/get?id=...&page=1&per_page=20``.

Every answer publishes the account's credit budget (``X-RateLimit-Remaining``, ``-Cost``, ``-Reset``);
the hook waits for the reset rather than spend a call that would be refused with 403/429.

The stop form is not settled: the docs say PUT with a form body, the official clients send POST with
a JSON body. By default (``stop_form`` ``auto``) the hook tries the form that worked last on this host
(first the documented one), and when the answer says the form was not understood (404, 405, or 400)
it tries the other once, remembers for the process and host which one the server took, and logs it.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_stop import process_state
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
    ListWalk,
    StopAck,
    TargetStatus,
)
from airflow_provider_stop.hooks.errors import (
    InvalidInputError,
    MalformedResponseError,
    RateLimitedError,
    StopProviderError,
    StopRejectedError,
)
from airflow_provider_stop.hooks.listing import ListPager
from airflow_provider_stop.hooks.validation import answer_id, ascii_int, clip, optional_text, shown

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Connection

RUNNING_STATES = frozenset({"running", "active"})
STOPPED_STATES = frozenset({"stopped", "paused", "disabled", "deleted"})
ERROR_STATES = frozenset({"failed", "problematic"})
STOP_FORMS = ("auto", "put_form", "post_json")
#: The two forms a stop may take: documented (PUT, form body) and the official clients' (POST, JSON).
FORMS = ("put_form", "post_json")
#: Answers to a stop that may mean "this form is not understood here" (no route for the method, no
#: ``id`` read from the body): the other form is tried once.
FORM_REFUSALS = frozenset({400, 404, 405})
#: Credits a source/get, stop or start costs (recorded traffic).
DEFAULT_COST = 5
#: Sources a list page holds: 20 is the documented default, and what the official Ruby client sent.
LIST_PAGE_SIZE = 20
#: Most list pages read in one stop-all: a guard against paging that never ends.
MAX_LIST_PAGES = 10_000
#: Sources a status read asks for a page. The docs give ``per_page`` as "an integer", default 20, and
#: no maximum (https://dev.datasift.com/docs/platform/api/rest-api/endpoints/sourceget); the official
#: clients pass any positive number. Whether the server caps it is not known: the answer's
#: ``per_page`` and ``pages`` are followed, and a refusal (400) means pages of 20 from then on.
STATUS_PAGE_SIZE = 100
#: Lists (hook class, connection, scope) whose server refused ``STATUS_PAGE_SIZE``, in this process.
_refused_page_sizes: set[tuple[str, ...]] = process_state.shared("datasift refused page sizes", set)
#: The budget headers read, with the largest value each may take (``-Reset`` is epoch seconds).
BUDGET_HEADERS = {
    "x-ratelimit-remaining": 10**9,
    "x-ratelimit-cost": 10**9,
    "x-ratelimit-reset": 10**11,
    "x-ratelimit-reset-ttl": 10**7,
}


def _json(response: ApiResponse) -> Any:
    return response.json()


#: The stop form a host took, per base URL, for this process (``stop_form`` ``auto``).
_learned_forms: dict[str, str] = process_state.shared("datasift stop forms", dict)
_learned_lock = threading.Lock()


def learned_stop_form(base_url: str) -> str | None:
    with _learned_lock:
        return _learned_forms.get(base_url)


def forget_stop_forms() -> None:
    """Forget what every host took (tests; a server that changed)."""
    with _learned_lock:
        _learned_forms.clear()


class DataSiftHook(StopServiceHook, service="datasift"):
    """
    Talks to DataSift Managed Sources.

    Connection: ``login`` is the username, ``password`` the API key (sent as the raw header
    ``Authorization: username:apikey``). ``host`` defaults to ``https://api.datasift.com``; extra
    ``api_version`` (``v1.6``) and ``stop_form``: ``auto`` (default: whichever the server takes, see the
    module docstring), or exactly ``put_form`` (documented) or ``post_json`` (the official clients);
    ``requests_per_second`` paces every call of the username (the documented limit is a credit budget,
    which the hook follows from the answers' headers).
    """

    target_noun = "source"
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
        if not re.fullmatch(r"v[0-9]+(\.[0-9]+)*", version):  # ASCII digits only
            raise InvalidInputError(
                f"connection {conn.conn_id!r}: api_version must look like 'v1.6', got {version!r}"
            )
        stop_form = str(extra.get("stop_form") or "auto")
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
            # The credit budget is the service's; a pace only when the connection asks, per username.
            settings={
                "stop_form": stop_form,
                "account": conn.login,
                "requests_per_second": rate_from_extra(extra, None, f"connection {conn.conn_id!r}"),
            },
        )

    # ---- the credit budget ----------------------------------------------------------------
    def budget_header(self, response: ApiResponse, name: str) -> int | None:
        """A budget header's number; an odd one (``²``, ``-1``, 400 digits) is logged and ignored: it
        comes with every answer, a stop's too, which must not fail (and be sent again) for it."""
        value = response.header(name)
        if value is None:
            return None
        try:
            return ascii_int(value, f"DataSift: the {name} header", maximum=BUDGET_HEADERS[name])
        except MalformedResponseError as exc:
            self.log.warning("%s; ignoring it", exc)
            return None

    def observe_response(self, response: ApiResponse) -> None:
        number = functools.partial(self.budget_header, response)
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

    def after_stops(self, target_ids: Sequence[str]) -> None:
        self.log.info("DataSift: after stopping %d source(s): %s", len(target_ids), self.budget_summary())

    def after_wait(self, target_ids: Sequence[str]) -> None:
        self.log.info("DataSift: after waiting for %d source(s): %s", len(target_ids), self.budget_summary())

    # ---- errors ---------------------------------------------------------------------------
    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        if response.status_code in (403, 429):
            cost = self.budget_header(response, "x-ratelimit-cost")
            remaining = self.budget_header(response, "x-ratelimit-remaining")
            if response.status_code == 429 or (
                cost is not None and remaining is not None and cost > remaining
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
        return self._stop_request(target_id, self._first_form())

    @staticmethod
    def _stop_request(target_id: str, form: str) -> ApiRequest:
        if form == "post_json":
            return ApiRequest("POST", "/source/stop", json={"id": target_id}, target_id=target_id)
        return ApiRequest("PUT", "/source/stop", form={"id": target_id}, target_id=target_id)

    def _first_form(self) -> str:
        """The connection's form; with ``auto`` the one this host took last, else the documented one."""
        chosen = str(self.config.settings["stop_form"])
        if chosen != "auto":
            return chosen
        return learned_stop_form(self.config.base_url) or FORMS[0]

    @staticmethod
    def _form_of(request: ApiRequest) -> str:
        return "post_json" if request.method == "POST" else "put_form"

    def _negotiates(self, request: ApiRequest) -> bool:
        # _config: read only once loaded (never a blocking connection lookup inside the event loop)
        config = self._config
        return (
            request.path == "/source/stop" and config is not None and config.settings["stop_form"] == "auto"
        )

    def _learn(self, form: str, why: str) -> None:
        base = self.config.base_url
        with _learned_lock:
            previous = _learned_forms.get(base)
            _learned_forms[base] = form
        # Silent when the documented form simply works; said once when the host takes the other one.
        if previous != form and (previous is not None or form != FORMS[0]):
            self.log.warning(
                "DataSift: %s at %s; stopping sources there with %s from now on (this process)",
                why,
                self.redact(urllib.parse.urlsplit(base).netloc),
                "POST with a JSON body" if form == "post_json" else "PUT with a form body",
            )

    # ---- the stop form in ``auto``: the other form once when this one is refused as not understood
    def request_answered(
        self, request: ApiRequest, refused: tuple[ApiRequest, StopProviderError] | None
    ) -> None:
        if not self._negotiates(request):
            return
        why = self._refusal(*refused) if refused else f"{request.method} answered HTTP 2xx"
        self._learn(self._form_of(request), why)

    def alternative_request(self, request: ApiRequest, error: StopProviderError) -> ApiRequest | None:
        """The other form, when the answer may mean the form was not understood."""
        if (
            not self._negotiates(request)
            or error.status_code not in FORM_REFUSALS
            or request.target_id is None
        ):
            return None
        other = "put_form" if self._form_of(request) == "post_json" else "post_json"
        self.log.info(
            "DataSift: %s %s answered HTTP %s; trying the other stop form once",
            request.method,
            self.describe(request),
            error.status_code,
        )
        return self._stop_request(request.target_id, other)

    @staticmethod
    def _refusal(request: ApiRequest, error: StopProviderError) -> str:
        return f"{request.method} /source/stop was refused with HTTP {error.status_code}"

    def both_refused(
        self,
        first: ApiRequest,
        first_error: StopProviderError,
        second: ApiRequest,
        second_error: StopProviderError,
    ) -> StopProviderError:
        """Both forms were refused: which refusal tells the truth, and which form does the host take?
        405 says "not this method": the other form is the one. An answer outside 400/404/405 (409 not
        stoppable, 401, 429, ...) came from the stop handler: that form is the one. The same code for
        both (a 404 for an unknown source, a 400 for a source not stoppable before v1.6) settles
        nothing: the first (documented or learned) form's answer stands."""
        first_code, second_code = first_error.status_code, second_error.status_code
        if first_code == second_code:  # say both: one of them is about the source, not the form
            return type(first_error)(
                f"{first_error.message}; the other stop form ({second.method}) answered: "
                f"{second_error.message}",
                target_id=first_error.target_id,
                status_code=first_code,
                error_code=first_error.error_code,
            )
        if second_code == 405:
            self._learn(self._form_of(first), f"{second.method} /source/stop is not allowed (HTTP 405)")
            return first_error
        if first_code == 405 or second_code not in FORM_REFUSALS:
            self._learn(self._form_of(second), self._refusal(first, first_error))
            return second_error
        return first_error

    def parse_stop_response(
        self, target_id: str, response: ApiResponse, options: Mapping[str, Any]
    ) -> StopAck:
        body = response.json()  # unreadable: the base keeps the stop as sent, and the wait decides
        if not isinstance(body, dict):
            raise MalformedResponseError(f"DataSift: the stop answer is not an object: {shown(body)}")
        state = optional_text(body.get("status"), "DataSift: the stop answer's status")
        return StopAck(target_id, message=f"status {clip(state)}" if state else "stop accepted")

    def build_status_request(self, target_id: str) -> ApiRequest:
        return ApiRequest("GET", "/source/get", params={"id": target_id}, target_id=target_id)

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        return self._status(target_id, self.json_object(response, f"source {target_id!r}"))

    def _status(self, target_id: str, body: Mapping[str, Any]) -> TargetStatus:
        state = body.get("status")
        if not isinstance(state, str):
            raise MalformedResponseError(
                f"DataSift: source {target_id!r} has no status (a string), got {shown(state)}"
            )
        state = clip(state)
        if state not in RUNNING_STATES | STOPPED_STATES | ERROR_STATES:
            self.warn_unknown_state(target_id, "status", state)
        stopped = state in STOPPED_STATES | ERROR_STATES
        error = f"source is {state}" if state in ERROR_STATES else None
        details = {k: body.get(k) for k in ("name", "source_type", "created_at") if k in body}
        return TargetStatus(target_id, state, stopped, error, details)

    def list_scope(self) -> tuple[str, ...]:
        return (self.source_type or "",)

    def list_pages(self, walk: ListWalk) -> ListPager:
        """Every source, page by page, optionally of one ``source_type``; a page that repeats only
        earlier ones ends the paging with an error. Stop-all reads 20 a page (what the official Ruby
        client sent); a status read asks ``STATUS_PAGE_SIZE`` and follows the answer's ``pages``
        whatever the server made of it, and reads 20 a page when the server refuses the size (400)."""
        small = walk.for_status and self._list_key() in _refused_page_sizes
        size = STATUS_PAGE_SIZE if walk.for_status and not small else LIST_PAGE_SIZE
        page = 1
        while page <= MAX_LIST_PAGES:
            params = {"page": str(page), "per_page": str(size)}
            if self.source_type:
                params["source_type"] = self.source_type
            try:
                body = yield ApiRequest("GET", "/source/get", params=params), _json
            except StopProviderError as exc:
                if size == LIST_PAGE_SIZE or page > 1 or exc.status_code != 400:
                    raise
                self.log.warning("DataSift: per_page=%d was refused (%s); reading 20 a page", size, exc)
                _refused_page_sizes.add(self._list_key())
                size = LIST_PAGE_SIZE
                continue
            if not isinstance(body, dict) or not isinstance(body.get("sources"), list):
                raise MalformedResponseError("DataSift: the source list has no sources (a list)")
            items = [self._listed(i, s) for i, s in enumerate(body["sources"])]
            fresh = [s for s in items if s.target_id not in walk.statuses]
            if page > 1 and items and not fresh:
                raise StopRejectedError(f"DataSift: page {page} of the source list repeats earlier pages")
            pages = body.get("pages")
            pages = (
                0 if pages is None else ascii_int(pages, "DataSift: the source list's pages", maximum=10**6)
            )
            if not items or page >= pages:
                walk.add(fresh, pages_left=0)
                return
            walk.add(fresh, pages_left=pages - page)
            page += 1
        raise StopRejectedError(f"DataSift: the source list has more than {MAX_LIST_PAGES} pages")

    def _listed(self, index: int, source: Any) -> TargetStatus:
        if not isinstance(source, dict):
            raise MalformedResponseError(f"DataSift: sources[{index}] is not an object: {shown(source)}")
        return self._status(answer_id(source.get("id"), f"DataSift: sources[{index}].id"), source)

    def status_list_requests(self, count: int) -> int | None:
        """A list page costs the credits of one read by id (5, recorded), so the list is read when it
        has fewer pages than there are sources to read (``status_list_requests`` of the base)."""
        return self.expected_list_pages()

    def build_test_request(self) -> ApiRequest:
        return ApiRequest("GET", "/source/get", params={"page": "1", "per_page": "1"})
