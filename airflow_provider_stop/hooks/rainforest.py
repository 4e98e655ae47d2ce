"""Rainforest API (Traject Data) collections and the sister products' batches.

Public sources: the Traject Data docs, e.g. https://docs.trajectdata.com/rainforestapi/collections-api/collections/stop,
.../collections/stop-all, .../collections/get, .../collections/list and
https://docs.trajectdata.com/rainforestapi/response-codes (SerpWow: https://docs.trajectdata.com/serpwow/batches-api/);
the SerpWow client (GitHub ``serpwow/google-search-results-python``, ``serpwow/google_search_results.py``).

The API key travels as the ``api_key`` query parameter, so it is in every URL: the shared redactor
removes it from every message, and requests are described by path only.

List reads ask ``page_size=1000``: SerpWow's List Batches page
(https://docs.trajectdata.com/serpwow/batches-api/batches/list, the same family and answer shape:
``current_page``, ``total_pages``) documents it up to 1000, 25 a page by default. A server that refuses
it (400) is read with its default pages instead, remembered per connection for the process.
"""

from __future__ import annotations

import hashlib
import math
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_stop import process_state
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
    ListWalk,
    StopAck,
    TargetStatus,
    quote_segment,
)
from airflow_provider_stop.hooks.errors import (
    InvalidInputError,
    MalformedResponseError,
    PaymentRequiredError,
    PermanentStopError,
    StopProviderError,
    StopRejectedError,
)
from airflow_provider_stop.hooks.listing import ListPager
from airflow_provider_stop.hooks.shared_limit import RateLimit, host_of
from airflow_provider_stop.hooks.validation import answer_id, ascii_int, clip, optional_text, shown

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Connection

STOPPED_STATES = frozenset({"idle"})
KNOWN_STATES = STOPPED_STATES | {"queued", "running"}
RESOURCES = {"collections": "collection", "batches": "batch"}
_PREFIX = re.compile(r"^(/[A-Za-z0-9_-]+)*$")
_COUNT = re.compile(r"(?<![0-9])([0-9]{1,9})\s+\w+\s+stopped", re.ASCII)
#: The list endpoint's documented limit (docs.trajectdata.com/rainforestapi/collections-api/collections/list).
LIST_REQUESTS_PER_MINUTE = 60.0
#: An account holds at most 10,000 collections (collections-api/limits): even at ten a page, more pages
#: than this means the paging loops.
MAX_LIST_PAGES = 1000
#: A page number or count above this is no paging but a malformed answer.
MAX_PAGE_NUMBER = 10**6
#: The largest page a list read asks for (``page_size``: "up to 1000", 25 by default, on SerpWow's
#: List Batches page): 10,000 collections are 10 list requests, not 400 (10 s, not 7 min, at 60 a
#: minute).
LIST_PAGE_SIZE = 1000
#: Statuses of a list read that refuses ``page_size`` (asked again without it): a 400 (or 422) as the
#: response-codes page gives for an invalid request; None: a 2xx with ``request_info.success: false``.
_PAGE_SIZE_REFUSALS = frozenset({400, 422, None})
#: Lists (hook class, connection) whose server refused ``page_size``, in this process.
_refused_page_sizes: set[tuple[str, ...]] = process_state.shared("rainforest refused page sizes", set)
#: Answer fields that may carry the paging of ``GET /collections`` (the paging contract is not documented).
_CURRENT_PAGE_FIELDS = ("current_page", "page")
_TOTAL_PAGES_FIELDS = ("total_pages", "page_count", "pages")


class ListPagingError(PermanentStopError):
    """The list's paging cannot be followed (the service repeats a page, or pages without end): a
    stop-all that went on would silently miss collections."""


class RainforestHook(StopServiceHook, service="rainforest"):
    """
    Talks to the Traject Data collections / batches API.

    Connection: ``password`` is the API key. ``host`` defaults to ``https://api.rainforestapi.com``.
    Extras for the sister products: ``resource`` (``collections`` or ``batches``) and ``path_prefix``
    (``/live`` for SerpWow), e.g. host ``https://api.serpwow.com``, ``batches``, ``/live``;
    ``list_requests_per_minute`` (default 60, the documented limit of the list endpoint). List reads
    ask ``page_size=1000`` (documented for the family's batches), or the server's default pages of 25
    once it refused that.
    """

    target_noun = "collection"
    default_host = "https://api.rainforestapi.com"
    #: A status read takes at most this many list pages (3,000 collections at ``page_size=1000``, 75 in
    #: the default pages): at the documented 60 list requests a minute, a read then spends at most 3 s
    #: of the minute's list budget (stop-all shares it).
    max_status_list_pages = 3

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
        per_minute = extra.get("list_requests_per_minute", LIST_REQUESTS_PER_MINUTE)
        try:
            list_rate = float(per_minute)
        except (TypeError, ValueError):
            list_rate = math.nan
        if isinstance(per_minute, bool) or not 0 < list_rate < math.inf:
            raise InvalidInputError(
                f"connection {conn.conn_id!r}: list_requests_per_minute must be a positive number, "
                f"got {per_minute!r}"
            )
        return ClientConfig(
            base_url=base_url_from_connection(conn, self.default_host) + prefix,
            headers={"User-Agent": "airflow-provider-stop"},
            params={"api_key": conn.password},
            verify=verify_from_extra(extra),
            secrets=(conn.password,),
            settings={
                "resource": resource,
                "list_requests_per_minute": list_rate,
                "account": hashlib.sha256(conn.password.encode()).hexdigest()[:16],
            },
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

    def rate_limit(self, request: ApiRequest) -> RateLimit | None:
        """The list is limited to 60 requests a minute per account: every list request is paced (stop-all
        reads it page by page), and shared across processes with ``rate_limit_storage``; other calls
        have no documented limit. The account is a digest of the key: the key is in no pacer or
        storage key."""
        config = self._config
        if config is None or request.method != "GET" or request.path != self._path():
            return None
        per_second = float(config.settings["list_requests_per_minute"]) / 60.0
        account = config.settings["account"]
        return RateLimit(self.conn_type, host_of(config.base_url), account, per_second, "list")

    # ---- answers ----------------------------------------------------------------------------
    def _body(self, response: ApiResponse) -> dict[str, Any]:
        """The answer's JSON object. ``request_info`` is optional: only the SerpWow docs and third-party
        code show it on successful reads, so an answer is judged by the object it must carry."""
        return self.json_object(response, "the request")

    def _info(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """``request_info`` (optional): an object whose ``message`` is text."""
        info = body.get("request_info")
        if info is None:
            return {}
        if not isinstance(info, Mapping):
            raise MalformedResponseError(f"{self.hook_name}: request_info must be an object: {shown(info)}")
        optional_text(info.get("message"), f"{self.hook_name}: request_info.message")
        return info

    def error_details(self, response: ApiResponse) -> tuple[str, str | None]:
        try:
            info = self._info(self._body(response))
        except MalformedResponseError:
            return super().error_details(response)
        if not info.get("message"):
            return super().error_details(response)
        return clip(info["message"]), None

    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        if response.status_code == 402:
            message, _ = self.error_details(response)
            raise PaymentRequiredError(
                f"{self.hook_name}: {self.describe(request)} -> HTTP 402: {message}", status_code=402
            )
        super().raise_for_response(request, response)
        try:
            info = self._info(self._body(response))
        except MalformedResponseError:
            return
        if info.get("success") is False:
            raise StopRejectedError(
                f"{self.hook_name}: {self.describe(request)}: {clip(info.get('message'))}",
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
        message = clip(self._info(self._body(response)).get("message") or "stopped")
        refunded = True if "refund" in message.lower() and "no refund" not in message.lower() else None
        return StopAck(target_id, message=message, options={"credits_refunded": refunded})

    def build_status_request(self, target_id: str) -> ApiRequest:
        return ApiRequest("GET", self._path(quote_segment(target_id)), target_id=target_id)

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        body = self._body(response)
        # ``batch`` for the batches products is inferred (third-party code): ``collection`` is read too
        item = next(
            (body[k] for k in (self.object_key, *RESOURCES.values()) if isinstance(body.get(k), dict)), None
        )
        if not isinstance(item, dict):
            raise MalformedResponseError(
                f"{self.hook_name}: the answer for {target_id!r} has no {self.object_key}"
            )
        return self._status(target_id, item)

    def _status(self, target_id: str, item: Mapping[str, Any]) -> TargetStatus:
        state = item.get("status")
        if not isinstance(state, str):
            raise MalformedResponseError(
                f"{self.hook_name}: {self.object_key} {target_id!r} has no status (a string), "
                f"got {shown(state)}"
            )
        state = clip(state)
        if state not in KNOWN_STATES:
            self.warn_unknown_state(target_id, "status", state)
        details = {
            k: item.get(k) for k in ("name", "last_run", "requests_total_count", "results_count") if k in item
        }
        return TargetStatus(target_id, state, state in STOPPED_STATES, None, details)

    def build_list_request(self, page: int | None = None, page_size: int | None = None) -> ApiRequest:
        """Page 1 carries no ``page``; later pages ask ``page=N``; ``page_size`` when given (the same
        on every page, so the pages' numbering holds)."""
        params = {"page": str(page)} if page and page > 1 else {}
        if page_size:
            params["page_size"] = str(page_size)
        return ApiRequest("GET", self._path(), params=params)

    def parse_list_response(self, response: ApiResponse) -> list[TargetStatus]:
        return self._page_items(self._body(response))

    def _page_items(self, body: Mapping[str, Any]) -> list[TargetStatus]:
        items = body.get(self.resource)
        if not isinstance(items, list):
            raise MalformedResponseError(f"{self.hook_name}: the list has no {self.resource} (a list)")
        return [self._listed(n, i) for n, i in enumerate(items)]

    def _listed(self, index: int, item: Any) -> TargetStatus:
        where = f"{self.hook_name}: {self.resource}[{index}]"
        if not isinstance(item, dict):
            raise MalformedResponseError(f"{where} is not an object: {shown(item)}")
        return self._status(answer_id(item.get("id"), f"{where}.id"), item)

    def next_page(self, body: Mapping[str, Any], page: int) -> int | None:
        """The page after ``page``, or None. The list's paging is not documented: a ``next_page``
        (number or URL), or a page count (``total_pages``/``page_count``/``pages``) with the current
        page (``current_page``/``page``) is followed; an answer with none of them is the whole list."""
        if "next_page" in body:
            value = body["next_page"]
            if isinstance(value, str) and ("/" in value or "?" in value):
                value = self._page_in_url(value)
            return None if value in (None, False, "", 0) else self._page_number(value, "next_page")
        total = self._page_field(body, _TOTAL_PAGES_FIELDS)
        if total is None:
            return None
        current = self._page_field(body, _CURRENT_PAGE_FIELDS) or page
        return current + 1 if current < total else None

    def _page_number(self, value: Any, name: str) -> int:
        return ascii_int(value, f"{self.hook_name}: the list's {name}", maximum=MAX_PAGE_NUMBER)

    def _page_field(self, body: Mapping[str, Any], fields: Sequence[str]) -> int | None:
        """The first of ``fields`` the answer has (null: as if absent), a page number or count."""
        name = next((f for f in fields if body.get(f) is not None), None)
        return None if name is None else self._page_number(body[name], name)

    def _page_in_url(self, url: str) -> str | None:
        """``page`` of a next-page URL (None: the URL names no page)."""
        try:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        except ValueError:
            raise MalformedResponseError(
                f"{self.hook_name}: the list's next_page is no URL: {shown(url)}"
            ) from None
        return query["page"][0] if query.get("page") else None

    def list_pages(self, walk: ListWalk) -> ListPager:
        """Every collection, page by page, ``LIST_PAGE_SIZE`` a page where the server takes
        ``page_size`` (stop-all and status reads alike: a status read's few pages then show up to 1000
        collections each). A refusal of the first page (400, 422, or ``success: false``) is read again
        without it, in the server's default pages, and remembered for the connection: it costs one
        list request a process. A page that repeats only what was already read, or paging that does
        not advance, is an error: a stop-all must not silently miss what lies beyond (a status read
        reads the rest by id)."""
        size = None if self._list_key() in _refused_page_sizes else LIST_PAGE_SIZE
        page = 1
        for _ in range(MAX_LIST_PAGES):
            try:
                body = yield self.build_list_request(page, size), self._body
            except StopRejectedError as exc:
                if size is None or page > 1 or exc.status_code not in _PAGE_SIZE_REFUSALS:
                    raise
                self.log.warning(
                    "%s: page_size=%d was refused (%s); reading the %s list in its default pages",
                    self.hook_name,
                    size,
                    exc,
                    self.resource,
                )
                _refused_page_sizes.add(self._list_key())
                size = None
                continue
            items = self._page_items(body)
            fresh = [s for s in items if s.target_id not in walk.statuses]
            if page > 1 and items and not fresh:
                raise ListPagingError(
                    f"{self.hook_name}: page {page} of the {self.resource} list repeats earlier pages "
                    f"(the service ignored 'page'); cannot read the whole list"
                )
            following = self.next_page(body, page)
            if following is None or not items:
                walk.add(fresh, pages_left=0)
                return
            walk.add(fresh, pages_left=self._pages_left(body, page))
            if following <= page:
                raise ListPagingError(
                    f"{self.hook_name}: the {self.resource} list names page {following} after page {page}"
                )
            self.log.debug("%s: reading page %d of the %s list", self.hook_name, following, self.resource)
            page = following
        raise ListPagingError(
            f"{self.hook_name}: the {self.resource} list has more than {MAX_LIST_PAGES} pages"
        )

    def _pages_left(self, body: Mapping[str, Any], page: int) -> int | None:
        """Pages after ``page`` when the answer counts them (``next_page`` alone does not)."""
        total = self._page_field(body, _TOTAL_PAGES_FIELDS)
        current = self._page_field(body, _CURRENT_PAGE_FIELDS) or page
        return max(0, total - current) if total is not None else None

    def status_list_requests(self, count: int) -> int | None:
        """A status read of the list costs its pages, each paced to the list's 60 requests a minute
        (reads by id have no documented limit). The list is read when it has fewer pages than there
        are ids; a read takes at most ``max_status_list_pages`` pages and reads the ids not shown by
        then by id (with the ids spread over the pages, that too costs fewer requests exactly when
        the pages are fewer than the ids). Pages of 1000 make the list the cheaper read for far more
        waits: 10,000 collections are 10 pages, not 400."""
        return self.expected_list_pages()

    def build_test_request(self) -> ApiRequest:
        return self.build_list_request()

    # ---- stop-all: one call, only when nothing was filtered -------------------------------
    def stop_all_targets(
        self, target_ids: Sequence[str], *, filtered: bool = True, **options: Any
    ) -> dict[str, StopAck]:
        """Unfiltered: ``GET /collections/stopall`` once (it stops every queued or running collection
        of the account, and takes no filter). Filtered: each match by id, so nothing else is stopped."""
        if filtered:
            self.log.info(
                "%s: the list was filtered: stopping the %d match(es) one by one, not with stopall",
                self.hook_name,
                len(target_ids),
            )
            return self.stop_many(target_ids, **options)
        response = self.send(ApiRequest("GET", self._path("stopall")))
        try:
            said = str(self._info(self._body(response)).get("message") or "")
        except MalformedResponseError:
            said = ""
        match = _COUNT.search(said)  # at most 9 ASCII digits: "²" or 400 digits never reach int()
        count = int(match.group(1)) if match else None
        message = clip(said)
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
