"""``StopServiceHook``: the contract a service hook fills in, and the generic stop / status / wait
machinery built on it.

The pieces the hook uses live in modules named for them: ``errors`` (the error hierarchy), ``data``
(status, acks, requests and responses as plain data), ``validation``, ``transport`` (``HttpTransport``,
which sends requests, and redaction, pacing, shared clients, retry settings), ``waiting`` and
``connection`` (reading an Airflow connection). Every name this module defined before is still
importable from here: stored trigger events name errors by ``airflow_provider_stop.hooks.base.<Error>``.

Nothing heavy is imported at module level.
"""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow_provider_stop._compat import BaseHook
from airflow_provider_stop.hooks import bounds
from airflow_provider_stop.hooks.connection import (
    base_url_from_connection,
    check_credentials,
    connection_extra,
    extra_read_ahead,
    rate_from_extra,
    shared_lookup,
    verify_from_extra,
    warn_if_insecure,
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
    AuthenticationError,
    BatchStopError,
    FeatureUnavailableError,
    InvalidInputError,
    MalformedResponseError,
    PaymentRequiredError,
    PermanentBatchStopError,
    PermanentStopError,
    RateLimitedError,
    RequestDeadlineError,
    ResponseTooLargeError,
    ServiceUnavailableError,
    StopFailedError,
    StopProviderError,
    StopRejectedError,
    StopTimeoutError,
    TargetNotFoundError,
    TargetNotRunningError,
    TransientBatchStopError,
    TransientStopError,
    _rebuild_error,
    batch_error,
)
from airflow_provider_stop.hooks.redaction import credential_values, url_without_userinfo
from airflow_provider_stop.hooks.transport import (
    REDACTED,
    SHARED_POOL_SIZE,
    HttpTransport,
    RatePacer,
    Redactor,
    RetrySettings,
    _async_clients,
    _client_slots,
    _HttpLibraryRedaction,
    _mask_with_airflow,
    _pacers,
    _pacers_lock,
    _SharedClient,
    http_log_redaction,
    parse_retry_after,
    request_slots,
    shared_async_client,
    shared_pacer,
)
from airflow_provider_stop.hooks.validation import (
    _CONTROL_CHARS,
    MAX_TARGET_ID_LENGTH,
    RENDERED_NONE,
    clip,
    normalize_target_ids,
    validate_positive_number,
    validate_target_id,
)
from airflow_provider_stop.hooks.waiting import WaitProgress, timeout_message

if TYPE_CHECKING:
    import httpx
    import requests

    from airflow_provider_stop._compat import Connection
    from airflow_provider_stop.triggers.board import StatusBoard

__all__ = [
    "MAX_TARGET_ID_LENGTH",
    "REDACTED",
    "RENDERED_NONE",
    "SHARED_POOL_SIZE",
    "SYNC_ASYNC_PAIRS",
    "_CONTROL_CHARS",
    "ApiRequest",
    "ApiResponse",
    "AuthenticationError",
    "BatchStopError",
    "ClientConfig",
    "FeatureUnavailableError",
    "HttpTransport",
    "InvalidInputError",
    "ListPager",
    "ListWalk",
    "MalformedResponseError",
    "PaymentRequiredError",
    "PermanentBatchStopError",
    "PermanentStopError",
    "RateLimitedError",
    "RatePacer",
    "Redactor",
    "RequestDeadlineError",
    "ResponseTooLargeError",
    "RetrySettings",
    "ServiceUnavailableError",
    "StopAck",
    "StopFailedError",
    "StopProviderError",
    "StopRejectedError",
    "StopServiceHook",
    "StopTimeoutError",
    "TargetNotFoundError",
    "TargetNotRunningError",
    "TargetStatus",
    "TransientBatchStopError",
    "TransientStopError",
    "WaitProgress",
    "_HttpLibraryRedaction",
    "_SharedClient",
    "_async_clients",
    "_client_slots",
    "_mask_with_airflow",
    "_pacers",
    "_pacers_lock",
    "_rebuild_error",
    "base_url_from_connection",
    "batch_error",
    "connection_extra",
    "http_log_redaction",
    "normalize_target_ids",
    "parse_retry_after",
    "quote_segment",
    "rate_from_extra",
    "request_slots",
    "shared_async_client",
    "shared_pacer",
    "timeout_message",
    "validate_positive_number",
    "validate_target_id",
    "verify_from_extra",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: HTTP statuses of a list read that mean the server does not offer the list: read each id instead.
LIST_UNAVAILABLE = frozenset({400, 404, 405, 501})
#: A list read, page by page: yields each page's request with the parser for its answer (run inside
#: the retry), is sent the parsed answer, and records what the page shows in its ``ListWalk``.
ListPager = Generator[tuple[ApiRequest, Callable[[ApiResponse], Any]], Any, None]
#: Pages a list had when last read whole, per hook class, connection and list scope (this process):
#: what ``status_list_requests`` of a paged list expects a read to cost.
_list_pages_seen: dict[tuple[str, ...], tuple[int, float]] = {}
#: A remembered length older than this is forgotten: a list that was long once is tried again.
LIST_SIZE_TTL = 600.0
#: The most pages and targets one list read takes (a service that pages on forever is malformed).
MAX_LIST_PAGES = 10_000
MAX_LIST_ITEMS = 1_000_000


def forget_list_sizes() -> None:
    """Forget how long every list was (tests: a new emulator behind the same connection id)."""
    _list_pages_seen.clear()


#: Sync/async twins: a service hook overrides both or neither (``StopServiceHook``'s contract).
SYNC_ASYNC_PAIRS: tuple[tuple[str, str], ...] = (
    ("stop", "astop"),
    ("stop_many", "astop_many"),
    ("get_status", "aget_status"),
    ("get_statuses", "aget_statuses"),
    ("read_statuses", "aread_statuses"),
    ("list_statuses", "alist_statuses"),
    ("walk_list", "awalk_list"),
    ("wait_until_stopped", "await_until_stopped"),
    ("send", "asend"),
    ("request_auth", "arequest_auth"),
    ("prior_errors", "aprior_errors"),
    ("_stop_chunk", "_astop_chunk"),
    ("_stop_in_chunks", "_astop_in_chunks"),
    ("_send_once", "_asend_once"),
    ("_exchange", "_aexchange"),
    ("_map", "_amap"),
)


class StopServiceHook(HttpTransport, BaseHook):
    """
    A service's connection, auth and API, and the generic stop / status / wait machinery.

    A service hook is declared ``class XHook(StopServiceHook, service="x")``: its connection
    attributes (``conn_name_attr``, ``default_conn_name``, ``conn_type``, ``hook_name``) and
    ``target_param`` come from the service's entry in ``airflow_provider_stop.services``. It then
    describes the API as plain functions of data (no I/O), shared by the sync path (``requests``, on
    the worker) and the async path (``httpx``, in the triggerer and in DeadlineAlert notifiers).

    **Must** implement (the base raises ``NotImplementedError``):

    - ``build_config(conn)``: base URL, auth headers or params, the secrets to redact, settings.
    - ``build_status_request(id)`` and ``parse_status_response(id, response)`` -> ``TargetStatus``
      (an undocumented state is logged with ``warn_unknown_state`` and never taken for stopped).
    - ``build_test_request()``: a cheap authenticated call for Airflow's "Test" button.
    - Either ``build_stop_request(id, options)`` (one id a call), or ``stop_batch_size`` with
      ``build_batch_stop_request(ids, options)`` and ``parse_batch_stop_response(...)`` (many ids).

    **May** override (plain data, or hooks the base calls at a defined point):

    - ``target_noun``, ``max_concurrency``, ``requests_per_second``, ``stop_batch_size``.
    - ``parse_stop_response``; ``build_list_request`` / ``parse_list_response`` or ``list_targets``
      (services that can list, for stop-all); ``stop_all_targets`` to use a service-wide stop call,
      only when not ``filtered``.
    - ``list_pages(walk)``: a paged list as one generator (yields each page's request and parser, is
      sent the answer), shared by stop-all and status reads, sync and async (``walk_list``).
    - ``status_list_requests(count)`` (and, for a list that is not ``list_pages``, ``list_statuses`` /
      ``alist_statuses``): a service whose list shows many targets' states in fewer requests than one
      read each says what a list read costs (``expected_list_pages``), and waits read the list
      instead; a target the list does not show, or whose listed status ``use_listed_status`` rejects,
      is still read by id. ``max_status_list_pages`` bounds a status read of a rate-limited list.
    - ``error_details`` (the error body's shape) and ``raise_for_response``: extend it for the
      service's own error signals and end with ``super().raise_for_response(...)``.
    - ``refused_as_not_running``, ``fallback_options``, ``validate_target`` (call ``super()``).
    - ``request_auth`` / ``arequest_auth`` and ``invalidate_auth`` (credentials got at run time),
      ``observe_response`` and ``budget_wait`` (rate budgets), ``prior_errors`` / ``aprior_errors``.

    A method that has an async twin (``SYNC_ASYNC_PAIRS``: ``stop``/``astop``,
    ``stop_many``/``astop_many``, ``get_status``/``aget_status``, ``wait_until_stopped``/
    ``await_until_stopped``, ``send``/``asend``, ...) is overridden together with its twin or not at
    all: otherwise the deferred path silently behaves differently (``tests/test_hook_contract.py``).

    **Must not** override: ``config`` / ``aconfig``, ``get_conn``, ``async_client``, the
    transports (``_exchange``, ``_aexchange``, ``_send_once``, ``_asend_once``), ``describe``,
    ``get_statuses`` / ``aget_statuses``, ``read_statuses`` / ``aread_statuses`` (the triggerer's
    status board reads through them), ``walk_list`` / ``awalk_list`` and the batch helpers (``_map``,
    ``_amap``, ``_collect``): they carry the rules every service shares (timeouts, no redirects,
    retries, redaction, pacing, bounded concurrency, one error naming every failed target). Never put
    a secret in a message; pass every text through ``self.redact``.
    """

    #: Set from the service's registry entry by ``class XHook(StopServiceHook, service="x")``.
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    #: Noun used in messages, e.g. "pipeline".
    target_noun: ClassVar[str] = "target"
    #: The operator parameter that names targets, used in error messages.
    target_param: ClassVar[str] = "target_id"
    #: Most requests in flight at once for one hook (bounded concurrency for batches).
    max_concurrency: ClassVar[int] = 8
    #: Services whose stop call takes many ids set this; ``stop_many`` then sends chunks this size.
    stop_batch_size: ClassVar[int | None] = None
    #: A documented request rate; every request of the process to one account is paced to it.
    requests_per_second: ClassVar[float | None] = None
    #: Most list pages one status read may take (None: the list's own length): a service whose list
    #: is more tightly limited than its reads by id bounds it; the ids not yet shown are read by id.
    max_status_list_pages: ClassVar[int | None] = None
    #: Extras of the connection that hold credentials (checked like the login and password).
    credential_extras: ClassVar[tuple[str, ...]] = ()
    #: Set by the trigger while its wait reads through a shared status board (``triggers.board``).
    status_board: StatusBoard | None = None

    def __init_subclass__(cls, *, service: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if service is not None:
            from airflow_provider_stop import services
            from airflow_provider_stop.forms import install_form_methods

            entry = services.service(service)
            install_form_methods(cls, service)  # the connection form for Airflow before 3.2
            cls.conn_name_attr = entry.conn_id_param
            cls.default_conn_name = entry.default_conn_id
            cls.conn_type = entry.conn_type
            cls.hook_name = entry.display_name
            cls.target_param = entry.target_param

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        retry_min_wait: float = 1.0,
        retry_max_wait: float = 60.0,
        retry_max_elapsed: float = 300.0,
        max_response_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        if not isinstance(self.conn_id, str) or not self.conn_id.strip():
            raise InvalidInputError(f"{self.conn_name_attr} must be a non-empty string, got {conn_id!r}")
        #: The whole request's deadline in seconds (connect, send, headers and body), not a socket read's.
        self.timeout = validate_positive_number(timeout, "timeout") or 30.0
        if max_response_bytes is not None and (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise InvalidInputError(
                f"max_response_bytes must be a positive whole number, got {max_response_bytes!r}"
            )
        #: The largest answer read; past it the provider's ``ResponseTooLargeError``.
        self.max_response_bytes = max_response_bytes or bounds.max_response_bytes()
        self.retry = RetrySettings(max_attempts, retry_min_wait, retry_max_wait, retry_max_elapsed)
        self._config: ClientConfig | None = None
        self._config_lock = threading.Lock()
        self._session: requests.Session | None = None
        self.redact = Redactor()

    # ---- what a service hook describes -------------------------------------------------------
    def build_config(self, conn: Connection) -> ClientConfig:
        """Base URL, auth headers/params and the secrets to redact, from the connection."""
        raise NotImplementedError

    def build_stop_request(self, target_id: str, options: Mapping[str, Any]) -> ApiRequest:
        raise NotImplementedError

    def parse_stop_response(
        self, target_id: str, response: ApiResponse, options: Mapping[str, Any]
    ) -> StopAck:
        """Read a 2xx stop answer (errors were raised by ``raise_for_response``)."""
        return StopAck(
            target_id=target_id, message=response.text.strip()[:200] or None, options=dict(options)
        )

    def build_batch_stop_request(self, target_ids: Sequence[str], options: Mapping[str, Any]) -> ApiRequest:
        """One stop call for many ids (services with ``stop_batch_size``)."""
        raise NotImplementedError

    def parse_batch_stop_response(
        self, target_ids: Sequence[str], response: ApiResponse, options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        """Per id: an ack, or the error the service reported for that id alone."""
        raise NotImplementedError

    def build_status_request(self, target_id: str) -> ApiRequest:
        raise NotImplementedError

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        raise NotImplementedError

    def build_list_request(self) -> ApiRequest:
        raise NotImplementedError(f"{type(self).__name__} cannot list {self.target_noun}s")

    def parse_list_response(self, response: ApiResponse) -> list[TargetStatus]:
        raise NotImplementedError(f"{type(self).__name__} cannot list {self.target_noun}s")

    def build_test_request(self) -> ApiRequest:
        """A cheap authenticated call for ``test_connection``."""
        raise NotImplementedError

    def error_details(self, response: ApiResponse) -> tuple[str, str | None]:
        """(message, error_code) from an error body; services override for their shape."""
        try:
            body = response.json()
        except MalformedResponseError:
            text = response.text.strip()
            if text.startswith("<") or not text:
                return f"HTTP {response.status_code} (non-JSON body)", None
            return clip(text, 300), None
        if isinstance(body, dict):
            message = (
                body.get("message")
                or body.get("error")
                or body.get("status_message")
                or json.dumps(body)[:300]
            )
            code = body.get("error_code") or body.get("code") or body.get("status_code")
            return clip(str(message), 300), clip(str(code), 60) if code is not None else None
        return clip(str(body), 300), None

    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        """Map an HTTP status to a named error. 2xx returns; everything else raises."""
        status = response.status_code
        if 200 <= status < 300:
            return
        # A credential request's answer may hold the credential itself: its body is never quoted.
        message, code = (
            self.error_details(response) if request.authenticate else ("(a credential request's body)", None)
        )
        what = f"{request.method} {self.describe(request)}"
        kwargs: dict[str, Any] = {"target_id": request.target_id, "status_code": status, "error_code": code}
        text = self.redact(
            f"{self.hook_name}: {what} -> HTTP {status}" + (f" {code}" if code else "") + f": {message}"
        )
        if 300 <= status < 400:
            location = self.redact(clip(response.header("location") or "?"))
            raise StopRejectedError(
                f"{text}. The service redirected to {location}; redirects are not followed so that "
                "credentials never leave the configured host. Point the connection at the final URL.",
                **kwargs,
            )
        if status in (401, 403):
            raise AuthenticationError(
                f"{text}. Check the credentials of connection {self.conn_id!r}.", **kwargs
            )
        if status == 404:
            raise TargetNotFoundError(text, **kwargs)
        retry_after = parse_retry_after(response.header("retry-after"))
        if status == 429:
            raise RateLimitedError(text, retry_after=retry_after, **kwargs)
        if status in (408, 502, 503, 504) or (status >= 500 and status != 501):
            raise ServiceUnavailableError(text, retry_after=retry_after, **kwargs)
        raise StopRejectedError(text, **kwargs)

    def budget_wait(self, request: ApiRequest) -> float:
        """Seconds to wait before sending. Paces services with a documented request rate (the
        ``requests_per_second`` class attribute or connection setting) across the whole process."""
        config = self._config
        rate = (config.settings if config else {}).get("requests_per_second", self.requests_per_second)
        if not rate:
            return 0.0
        account = str(config.settings.get("account", "")) if config else ""
        key = (type(self).__name__, config.base_url if config else "", account)
        return shared_pacer(key, float(rate)).reserve()

    # ---- credentials obtained at run time (e.g. OAuth) -------------------------------------
    def request_auth(self) -> Mapping[str, str]:
        """Headers that authenticate one request when they cannot be fixed in ``build_config``."""
        return {}

    async def arequest_auth(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        return self.request_auth()

    def invalidate_auth(self) -> bool:
        """After a 401: drop a cached credential and return True to send the request once more."""
        return False

    def observe_response(self, response: ApiResponse) -> None:
        """Read bookkeeping headers (e.g. a rate-limit budget) from every answer."""

    def describe(self, request: ApiRequest) -> str:
        """The request's path as the server sees it (no host, no query: nothing secret)."""
        base = request.base_url or (self._config.base_url if self._config else "")
        prefix = urllib.parse.urlsplit(base).path.rstrip("/")
        return self.redact(prefix + request.path)

    # ---- connection ------------------------------------------------------------------------
    def _read_connection(self, conn: Connection) -> ClientConfig:
        """Check the connection's credentials (before any is used), then build and adopt the config."""
        check_credentials(conn, self.credential_extras)
        return self._adopt_config(self.build_config(conn))

    def _adopt_config(self, config: ClientConfig) -> ClientConfig:
        """Use ``config``, hiding every credential it sends in every form."""
        self.redact = Redactor(
            [*config.secrets, *credential_values(config.headers.items()), *self._secret_params(config)]
        )
        self.redact.register_with_airflow()
        warn_if_insecure(self.conn_id, config, self.credential_urls(config))
        self._config = config
        return config

    @staticmethod
    def _secret_params(config: ClientConfig) -> list[str]:
        """Query parameters that carry a key (Rainforest's ``api_key``)."""
        return [v for k, v in config.params.items() if "key" in k.lower() or "token" in k.lower()]

    def credential_urls(self, config: ClientConfig) -> tuple[str, ...]:
        """Other URLs the hook sends credentials to (an OAuth token endpoint), for the plain-http check."""
        return ()

    @property
    def config(self) -> ClientConfig:
        if self._config is None:
            # One connection lookup per hook even when a batch's threads all start at once: Airflow 3's
            # task-to-supervisor channel (get_connection, mask_secret) is not safe to use from threads.
            with self._config_lock:
                if self._config is None:
                    self._read_connection(self.get_connection(self.conn_id))
        assert self._config is not None
        return self._config

    async def aconfig(self) -> ClientConfig:
        if self._config is None:
            from airflow_provider_stop._compat import async_connection_extra, get_async_connection

            # Both reads mask secrets without blocking the event loop on a synchronous supervisor call
            # (and work on Airflow versions whose BaseHook has no aget_connection).
            async def lookup() -> tuple[Connection, dict[str, Any]]:
                conn = await get_async_connection(self.conn_id, hook=self)
                return conn, await async_connection_extra(conn)

            conn, extra = await shared_lookup(self.conn_id, lookup)
            with extra_read_ahead(conn, extra):
                self._read_connection(conn)
        assert self._config is not None
        return self._config

    # ---- reading answers -------------------------------------------------------------------
    def json_object(self, response: ApiResponse, what: str) -> dict[str, Any]:
        """The answer's JSON object; anything else (a list, a string) is a malformed answer."""
        body = response.json()
        if not isinstance(body, dict):
            raise MalformedResponseError(f"{self.hook_name}: the answer for {what} is not an object")
        return body

    def warn_unknown_state(self, target_id: str, field_name: str, state: Any) -> None:
        """A state spelling nobody documented: logged, and never taken for stopped."""
        self.log.warning(
            "%s: %s %r reports unknown %s %r; treating it as running",
            self.hook_name,
            self.target_noun,
            target_id,
            field_name,
            state,
        )

    # ---- operations ------------------------------------------------------------------------
    def validate_target(self, target_id: Any) -> str:
        """Reject bad ids before any request; services may add their own rules."""
        return validate_target_id(target_id, self.target_param)

    def refused_as_not_running(self, error: StopProviderError) -> bool:
        """True when the service refused the stop because the target is not running; a GET then decides."""
        return False

    def _not_running(
        self, error: StopProviderError, status: TargetStatus, fail_if_not_running: bool
    ) -> StopAck:
        """A refused stop of a target that is in fact stopped is success (unless asked to fail)."""
        if not status.stopped:
            raise error
        if fail_if_not_running:
            self._check_running(status)
        self.log.info(
            "%s: %s %r is already %s; nothing to stop",
            self.hook_name,
            self.target_noun,
            status.target_id,
            status.raw_state,
        )
        return StopAck(status.target_id, accepted=False, already_stopped=True, message=error.message)

    def fallback_options(self, error: StopProviderError, options: Mapping[str, Any]) -> dict[str, Any] | None:
        """Options to retry a refused stop with (e.g. a forced stop), or None to raise the error."""
        return None

    def prior_errors(self, target_ids: Sequence[str]) -> dict[str, str]:
        """Errors targets already report before a stop, for services whose status keeps an earlier
        error across a stop (so it is not taken for the stop's own); default: none, and no request."""
        return {}

    async def aprior_errors(self, client: httpx.AsyncClient, target_ids: Sequence[str]) -> dict[str, str]:
        return self.prior_errors(target_ids)

    def stop(self, target_id: str, *, fail_if_not_running: bool = False, **options: Any) -> StopAck:
        """Ask the service to stop one target."""
        target_id = self.validate_target(target_id)
        if fail_if_not_running:
            self._check_running(self.get_status(target_id))
        if self.stop_batch_size:
            return self._one_of(target_id, self._stop_chunk([target_id], options))
        try:
            response = self.send(self.build_stop_request(target_id, options))
        except StopProviderError as exc:
            if self.refused_as_not_running(exc):
                return self._not_running(exc, self.get_status(target_id), fail_if_not_running)
            options = self._fallback_or_raise(exc, options)
            response = self.send(self.build_stop_request(target_id, options))
        return self._accepted(self._read_ack(target_id, response, options))

    async def astop(
        self, client: httpx.AsyncClient, target_id: str, *, fail_if_not_running: bool = False, **options: Any
    ) -> StopAck:
        target_id = self.validate_target(target_id)
        if fail_if_not_running:
            self._check_running(await self.aget_status(client, target_id))
        if self.stop_batch_size:
            return self._one_of(target_id, await self._astop_chunk(client, [target_id], options))
        try:
            response = await self.asend(client, self.build_stop_request(target_id, options))
        except StopProviderError as exc:
            if self.refused_as_not_running(exc):
                return self._not_running(exc, await self.aget_status(client, target_id), fail_if_not_running)
            options = self._fallback_or_raise(exc, options)
            response = await self.asend(client, self.build_stop_request(target_id, options))
        return self._accepted(self._read_ack(target_id, response, options))

    def _read_ack(self, target_id: str, response: ApiResponse, options: Mapping[str, Any]) -> StopAck:
        """A 2xx stop answer that cannot be read still means the stop was sent: never send it again;
        the wait tells whether it took."""
        try:
            return self.redact.value(self.parse_stop_response(target_id, response, options))
        except MalformedResponseError as exc:
            return StopAck(
                target_id,
                message=self.redact(f"stop sent; its answer was unreadable ({exc})"),
                options=dict(options),
            )

    # ---- batch stop calls (services with stop_batch_size) ----------------------------------
    @staticmethod
    def _one_of(target_id: str, results: Mapping[str, StopAck | StopProviderError]) -> StopAck:
        result = results[target_id]
        if isinstance(result, StopProviderError):
            raise result
        return result

    def _chunk_results(
        self, chunk: Sequence[str], response: ApiResponse, options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        try:
            results = self.parse_batch_stop_response(chunk, response, options)
            results = {
                t: self.redact.error(r) if isinstance(r, StopProviderError) else self.redact.value(r)
                for t, r in results.items()
            }
        except MalformedResponseError as exc:  # sent and answered 2xx: the wait tells whether it took
            message = self.redact(f"stop sent; its answer was unreadable ({exc})")
            results = {tid: StopAck(tid, message=message, options=dict(options)) for tid in chunk}
        for tid in chunk:
            result = results.get(tid)
            if result is None:
                results[tid] = MalformedResponseError(
                    f"{self.hook_name}: the stop answer does not mention {self.target_noun} {tid!r}",
                    target_id=tid,
                )
            elif isinstance(result, StopAck):
                self._accepted(result)
        return results

    def _stop_chunk(
        self, chunk: Sequence[str], options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        """One batch stop call. A failure of the call itself is the failure of every id in it."""
        try:
            response = self.send(self.build_batch_stop_request(chunk, options))
        except StopProviderError as exc:
            return dict.fromkeys(chunk, exc)
        return self._chunk_results(chunk, response, options)

    async def _astop_chunk(
        self, client: httpx.AsyncClient, chunk: Sequence[str], options: Mapping[str, Any]
    ) -> dict[str, StopAck | StopProviderError]:
        try:
            response = await self.asend(client, self.build_batch_stop_request(chunk, options))
        except StopProviderError as exc:
            return dict.fromkeys(chunk, exc)
        return self._chunk_results(chunk, response, options)

    def _chunks(self, target_ids: Sequence[str]) -> list[list[str]]:
        size = self.stop_batch_size or 1
        ids = [self.validate_target(t) for t in dict.fromkeys(target_ids)]
        return [ids[i : i + size] for i in range(0, len(ids), size)]

    def _stop_in_chunks(
        self, target_ids: Sequence[str], options: Mapping[str, Any]
    ) -> list[tuple[str, StopAck | StopProviderError]]:
        chunks = self._chunks(target_ids)
        merged: dict[str, StopAck | StopProviderError] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(chunks)))) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self._stop_chunk, chunk, options)
                for chunk in chunks
            ]
            for future in futures:
                merged.update(future.result())
        return [(t, merged[t]) for chunk in chunks for t in chunk]

    async def _astop_in_chunks(
        self, client: httpx.AsyncClient, target_ids: Sequence[str], options: Mapping[str, Any]
    ) -> list[tuple[str, StopAck | StopProviderError]]:
        chunks = self._chunks(target_ids)
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def bounded(chunk: list[str]) -> dict[str, StopAck | StopProviderError]:
            async with semaphore:
                return await self._astop_chunk(client, chunk, options)

        merged: dict[str, StopAck | StopProviderError] = {}
        for part in await asyncio.gather(*(bounded(c) for c in chunks)):
            merged.update(part)
        return [(t, merged[t]) for chunk in chunks for t in chunk]

    def _fallback_or_raise(self, exc: StopProviderError, options: Mapping[str, Any]) -> dict[str, Any]:
        alternative = self.fallback_options(exc, options)
        if alternative is None:
            raise exc
        self.log.warning("%s: %s; retrying the stop with %s", self.hook_name, exc, alternative)
        return alternative

    def _accepted(self, ack: StopAck) -> StopAck:
        verdict = "answered: nothing to stop" if ack.already_stopped else "accepted"
        self.log.info(
            "%s: stop of %s %r %s: %s", self.hook_name, self.target_noun, ack.target_id, verdict, ack.message
        )
        return ack

    def _check_running(self, status: TargetStatus) -> None:
        if status.stopped:
            raise TargetNotRunningError(
                f"{self.hook_name}: {self.target_noun} {status.target_id!r} is not running "
                f"(state {status.raw_state!r}) and fail_if_not_running=True",
                target_id=status.target_id,
            )

    def get_status(self, target_id: str) -> TargetStatus:
        target_id = self.validate_target(target_id)
        return self.send(
            self.build_status_request(target_id),
            lambda r: self.redact.value(self.parse_status_response(target_id, r)),
        )

    async def aget_status(self, client: httpx.AsyncClient, target_id: str) -> TargetStatus:
        target_id = self.validate_target(target_id)
        return await self.asend(
            client,
            self.build_status_request(target_id),
            lambda r: self.redact.value(self.parse_status_response(target_id, r)),
        )

    def list_targets(self) -> list[TargetStatus]:
        """Every target the service lists, with its status (for stop-all): the whole list."""
        return list(self.walk_list().statuses.values())

    def stop_all_targets(
        self, target_ids: Sequence[str], *, filtered: bool = True, **options: Any
    ) -> dict[str, StopAck]:
        """Stop everything ``running_targets`` listed, each by id. A service with a service-wide stop
        call may override this to use it, but only when ``filtered`` is False: a filter (a name
        pattern, a list filter) must never widen into a stop of everything on the server."""
        return self.stop_many(target_ids, **options)

    def running_targets(self, name_pattern: str | None = None) -> list[str]:
        """Ids of listed targets that are not stopped, optionally whose id or name matches a glob such as
        ``nightly_*``."""

        def matches(status: TargetStatus) -> bool:
            names = (status.target_id, status.details.get("name"))
            return any(isinstance(n, str) and fnmatch.fnmatchcase(n, name_pattern or "*") for n in names)

        return [status.target_id for status in self.list_targets() if not status.stopped and matches(status)]

    # ---- batches: every target is tried, then one error names all that failed --------------
    def _map(
        self, fn: Callable[[str], T], target_ids: Sequence[str]
    ) -> list[tuple[str, T | StopProviderError]]:
        """Apply ``fn`` to every id with bounded concurrency; errors are returned, not raised."""

        def safe(tid: str) -> T | StopProviderError:
            try:
                return fn(tid)
            except StopProviderError as exc:
                return exc

        if len(target_ids) <= 1:
            return [(t, safe(t)) for t in target_ids]
        workers = min(self.max_concurrency, len(target_ids))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stop") as pool:
            # Each thread runs in a copy of this context: the wait's deadline bounds its requests too.
            futures = [pool.submit(contextvars.copy_context().run, safe, t) for t in target_ids]
            return [(t, f.result()) for t, f in zip(target_ids, futures, strict=True)]

    async def _amap(
        self, fn: Callable[[str], Awaitable[T]], target_ids: Sequence[str]
    ) -> list[tuple[str, T | StopProviderError]]:
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def safe(tid: str) -> T | StopProviderError:
            async with semaphore:
                try:
                    return await fn(tid)
                except StopProviderError as exc:
                    return exc

        results = await asyncio.gather(*(safe(t) for t in target_ids))
        return list(zip(target_ids, results, strict=True))

    @staticmethod
    def _collect(action: str, results: Sequence[tuple[str, T | StopProviderError]]) -> dict[str, T]:
        done = {t: r for t, r in results if not isinstance(r, StopProviderError)}
        failures = {t: r for t, r in results if isinstance(r, StopProviderError)}
        if failures:
            raise batch_error(action, failures, len(results), done)
        return done

    def stop_many(
        self, target_ids: Sequence[str], *, fail_if_not_running: bool = False, **options: Any
    ) -> dict[str, StopAck]:
        """Stop every target (in chunks where the service takes many ids); then raise one error
        naming all that failed."""
        if self.stop_batch_size and not fail_if_not_running:
            return self._collect("stop", self._stop_in_chunks(target_ids, options))
        results = self._map(
            lambda t: self.stop(t, fail_if_not_running=fail_if_not_running, **options), target_ids
        )
        return self._collect("stop", results)

    async def astop_many(
        self,
        client: httpx.AsyncClient,
        target_ids: Sequence[str],
        *,
        fail_if_not_running: bool = False,
        **options: Any,
    ) -> dict[str, StopAck]:
        if self.stop_batch_size and not fail_if_not_running:
            return self._collect("stop", await self._astop_in_chunks(client, target_ids, options))
        results = await self._amap(
            lambda t: self.astop(client, t, fail_if_not_running=fail_if_not_running, **options), target_ids
        )
        return self._collect("stop", results)

    # ---- status reads: by id, or one list read for many ids ------------------------------
    def status_list_requests(self, count: int) -> int | None:
        """Requests one ``list_statuses`` read costs when ``count`` targets are awaited, or None when
        the service has no list that is a status read (default). Waits read the list when it costs
        fewer requests (and credits, and rate budget) than ``count`` reads by id."""
        return None

    def list_statuses(self, target_ids: Sequence[str]) -> dict[str, TargetStatus]:
        """The states the service's list shows, keyed by id (may include other targets and miss some)."""
        return self.walk_list(target_ids).statuses

    async def alist_statuses(
        self, client: httpx.AsyncClient, target_ids: Sequence[str]
    ) -> dict[str, TargetStatus]:
        return (await self.awalk_list(client, target_ids)).statuses

    # ---- the list, page by page: one pager per service, read whole (stop-all) or for a wait ----
    def list_pages(self, walk: ListWalk) -> ListPager:
        """The service's list as a ``ListPager``. Default: the one ``build_list_request`` call. A paged
        list overrides this once, and stop-all and status reads share it (sync and async alike)."""
        statuses = yield self.build_list_request(), self.parse_list_response
        walk.add(statuses, pages_left=0)

    def list_scope(self) -> tuple[str, ...]:
        """What narrows the list besides the connection (a filter): its remembered size is per scope."""
        return ()

    def _list_key(self) -> tuple[str, ...]:
        return (type(self).__name__, self.conn_id, *self.list_scope())

    def expected_list_pages(self) -> int:
        """Pages the list had when a status read last saw its length in this process (a stop-all may
        page differently); 1 before that: the first page says how many follow, and the read stops
        there when reading the rest by id is no dearer."""
        pages, when = _list_pages_seen.get(self._list_key(), (1, 0.0))
        return pages if time.monotonic() - when < LIST_SIZE_TTL else 1

    def _enough(self, walk: ListWalk, wanted: set[str] | None) -> bool:
        """A status read stops once the list showed every wanted id, once what is left costs no less
        than reading the missing ids one by one, or at ``max_status_list_pages``."""
        if wanted is None:
            return False
        missing = sum(1 for t in wanted if t not in walk.statuses)
        cap = self.max_status_list_pages
        if not missing or (cap is not None and walk.pages_read >= cap):
            return True
        return walk.pages_left is not None and walk.pages_left >= missing

    def _walk_ended(self, walk: ListWalk, error: StopProviderError | None) -> ListWalk:
        """Remember the list's length; a paging a status read cannot follow leaves the rest to reads
        by id (a stop-all raises: it must not miss targets silently)."""
        walk.statuses = {t: self.redact.value(s) for t, s in walk.statuses.items()}
        if error is not None:
            self.redact.error(error)
            if not walk.for_status:
                raise error
            self.log.warning("%s: %s; reading the rest by id", self.hook_name, error)
        elif walk.for_status and walk.pages_left is not None:
            _list_pages_seen[self._list_key()] = (walk.pages_read + walk.pages_left, time.monotonic())
        return walk

    def _paging_error(self, walk: ListWalk, seen: set[str], request: ApiRequest) -> StopProviderError | None:
        """A list that asks for a page it has already read (a cycle of any length, e.g. two
        ``next_token`` values taking turns), or that runs past ``MAX_LIST_PAGES`` pages or
        ``MAX_LIST_ITEMS`` targets, is a malformed answer, not a reason to read forever."""
        key = json.dumps(
            [request.method, request.base_url, request.path, sorted(request.params.items()), request.json],
            sort_keys=True,
            default=str,
        )
        if key in seen:
            problem = f"asked for a page it had read already, after {walk.pages_read} page(s): a paging cycle"
        elif walk.pages_read >= MAX_LIST_PAGES:
            problem = f"has more than {MAX_LIST_PAGES} pages"
        elif len(walk.statuses) > MAX_LIST_ITEMS:
            problem = f"has more than {MAX_LIST_ITEMS} {self.target_noun}s"
        else:
            seen.add(key)
            return None
        return MalformedResponseError(f"{self.hook_name}: the {self.target_noun} list {problem}")

    def walk_list(self, target_ids: Sequence[str] | None = None) -> ListWalk:
        """Read the list whole, or for ``target_ids`` (a status read) only as far as it pays. A failed
        request is handed to the pager (which may ask differently) and otherwise raised."""
        wanted = None if target_ids is None else set(target_ids)
        walk = ListWalk(for_status=wanted is not None)
        pager = self.list_pages(walk)
        seen: set[str] = set()
        try:
            step = next(pager)
            while not self._enough(walk, wanted):
                if (paging := self._paging_error(walk, seen, step[0])) is not None:
                    return self._walk_ended(walk, paging)
                try:
                    body = self.send(*step)
                except StopProviderError as exc:
                    step = pager.throw(exc)
                    continue
                try:
                    step = pager.send(body)
                except StopProviderError as exc:
                    return self._walk_ended(walk, exc)
        except StopIteration:
            pass
        finally:
            pager.close()
        return self._walk_ended(walk, None)

    async def awalk_list(
        self, client: httpx.AsyncClient, target_ids: Sequence[str] | None = None
    ) -> ListWalk:
        await self.aconfig()  # the pager builds its first request at once: no blocking lookup then
        wanted = None if target_ids is None else set(target_ids)
        walk = ListWalk(for_status=wanted is not None)
        pager = self.list_pages(walk)
        seen: set[str] = set()
        try:
            step = next(pager)
            while not self._enough(walk, wanted):
                if (paging := self._paging_error(walk, seen, step[0])) is not None:
                    return self._walk_ended(walk, paging)
                try:
                    body = await self.asend(client, *step)
                except StopProviderError as exc:
                    step = pager.throw(exc)
                    continue
                try:
                    step = pager.send(body)
                except StopProviderError as exc:
                    return self._walk_ended(walk, exc)
        except StopIteration:
            pass
        finally:
            pager.close()
        return self._walk_ended(walk, None)

    def use_listed_status(self, status: TargetStatus) -> bool:
        """Whether a status the list shows stands for a read by id. A service whose list items show
        less than the read says no where that matters (the id is then read by id)."""
        return True

    def _lists_cheaper(self, target_ids: Sequence[str]) -> bool:
        cost = self.status_list_requests(len(target_ids)) if len(target_ids) > 1 else None
        return cost is not None and cost < len(target_ids)

    def _from_list(
        self, target_ids: Sequence[str], listed: Mapping[str, TargetStatus] | StopProviderError
    ) -> tuple[dict[str, TargetStatus | StopProviderError], list[str]]:
        """What the list shows (or the list's failure, which is every id's, as a batch stop's failure
        is), and the ids to read by id: those it does not show, so nothing is judged on missing data.
        A list the server does not offer (400/404/405/501) is logged, and every id is read by id."""
        if isinstance(listed, StopProviderError):
            if listed.status_code not in LIST_UNAVAILABLE:
                return dict.fromkeys(target_ids, listed), []
            self.log.warning("%s: the list read failed (%s); reading each by id", self.hook_name, listed)
            return {}, list(target_ids)
        shown: dict[str, TargetStatus | StopProviderError] = {
            t: listed[t] for t in target_ids if t in listed and self.use_listed_status(listed[t])
        }
        return shown, [t for t in target_ids if t not in shown]

    def read_statuses(self, target_ids: Sequence[str]) -> list[tuple[str, TargetStatus | StopProviderError]]:
        """Every id's status or error, through the list when that is cheaper."""
        if not self._lists_cheaper(target_ids):
            return self._map(self.get_status, target_ids)
        try:
            listed: Mapping[str, TargetStatus] | StopProviderError = self.list_statuses(target_ids)
        except StopProviderError as exc:
            listed = exc
        shown, missing = self._from_list(target_ids, listed)
        by_id = dict(self._map(self.get_status, missing)) if missing else {}
        return [(t, shown[t] if t in shown else by_id[t]) for t in target_ids]

    async def aread_statuses(
        self, client: httpx.AsyncClient, target_ids: Sequence[str]
    ) -> list[tuple[str, TargetStatus | StopProviderError]]:
        if not self._lists_cheaper(target_ids):
            return await self._amap(lambda t: self.aget_status(client, t), target_ids)
        try:
            listed: Mapping[str, TargetStatus] | StopProviderError = await self.alist_statuses(
                client, target_ids
            )
        except StopProviderError as exc:
            listed = exc
        shown, missing = self._from_list(target_ids, listed)
        by_id = dict(await self._amap(lambda t: self.aget_status(client, t), missing)) if missing else {}
        return [(t, shown[t] if t in shown else by_id[t]) for t in target_ids]

    def get_statuses(self, target_ids: Sequence[str]) -> dict[str, TargetStatus]:
        return self._collect("status check", self.read_statuses(target_ids))

    async def aget_statuses(
        self, client: httpx.AsyncClient, target_ids: Sequence[str]
    ) -> dict[str, TargetStatus]:
        return self._collect("status check", await self.aread_statuses(client, target_ids))

    # ---- waiting ---------------------------------------------------------------------------
    def wait_until_stopped(
        self, target_ids: Sequence[str], *, poll_interval: float, deadline: float
    ) -> dict[str, TargetStatus]:
        """Poll until every target is stopped or ``deadline`` (epoch seconds) passes."""
        progress = WaitProgress(self, target_ids, deadline)
        with bounds.wait_deadline(deadline):
            while True:
                with progress.cut_at_deadline():
                    progress.record(self.get_statuses(progress.pending))
                if not progress.pending:
                    return progress.statuses
                time.sleep(progress.next_sleep(poll_interval))

    async def await_until_stopped(
        self, client: httpx.AsyncClient, target_ids: Sequence[str], *, poll_interval: float, deadline: float
    ) -> dict[str, TargetStatus]:
        """``wait_until_stopped`` on the event loop."""
        progress = WaitProgress(self, target_ids, deadline)
        with bounds.wait_deadline(deadline):
            while True:
                with progress.cut_at_deadline():
                    progress.record(await self._apoll(client, progress.pending, deadline))
                if not progress.pending:
                    return progress.statuses
                await self._apause(progress.next_sleep(poll_interval))

    async def _apause(self, seconds: float) -> None:
        """Sleep until the next poll. On a status board that reads a list, a round woken by another
        wait ends the sleep sooner: the list read costs nothing more, and the waits stay in phase."""
        board = self.status_board
        if board is None:
            await asyncio.sleep(seconds)
        else:
            await board.pause(id(self), seconds)

    async def _apoll(
        self, client: httpx.AsyncClient, target_ids: Sequence[str], deadline: float
    ) -> dict[str, TargetStatus]:
        """One poll's statuses: through the triggerer's status board for this connection when the
        wait joined one (``triggers.board``), so that one read serves every wait due together."""
        board = self.status_board
        if board is None:
            return await self.aget_statuses(client, target_ids)
        results = await board.read(self, client, target_ids, deadline=deadline)
        return self._collect("status check", results)

    async def await_stopped(
        self, client: httpx.AsyncClient, target_ids: Sequence[str], *, poll_interval: float, deadline: float
    ) -> dict[str, TargetStatus]:
        """The first name of ``await_until_stopped``, kept for callers; override that one instead."""
        return await self.await_until_stopped(
            client, target_ids, poll_interval=poll_interval, deadline=deadline
        )

    # ---- Airflow connection test -----------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one cheap authenticated call."""
        try:
            self.send(self.build_test_request())
        except StopProviderError as exc:
            return False, self.redact(str(exc))
        except Exception as exc:
            return False, self.redact(f"{type(exc).__name__}: {clip(str(exc), 300)}")
        url = url_without_userinfo(self.config.base_url)
        return True, f"Connection to {self.hook_name} at {self.redact(url)} works."
