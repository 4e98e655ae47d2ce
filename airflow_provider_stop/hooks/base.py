"""Shared hook machinery: the status type, the error types, HTTP with retries, timeouts and redaction.

A service hook only describes its API as plain data: how to build a request and how to read an
answer. This module sends those requests, synchronously with ``requests`` (worker) and
asynchronously with ``httpx`` (triggerer, notifiers), so both paths share every rule.

Nothing heavy is imported at module level: the retry policy and the operators import the error
types from here while a DAG file is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import fnmatch
import json
import logging
import math
import re
import threading
import time
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    import httpx
    import requests
    from airflow.sdk import Connection

log = logging.getLogger(__name__)

REDACTED = "***"
MAX_TARGET_ID_LENGTH = 1024
#: What ``{{ value }}`` and ``{{ value | tojson }}`` render for None: never taken for an id.
RENDERED_NONE = frozenset({"None", "null"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# The one status type
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetStatus:
    """Where one remote target stands. ``stopped`` is the service-independent verdict."""

    target_id: str
    raw_state: str | None
    stopped: bool
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: what operators return and triggers send."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetStatus:
        return cls(
            target_id=str(data["target_id"]),
            raw_state=data.get("raw_state"),
            stopped=bool(data.get("stopped")),
            error=data.get("error"),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True)
class StopAck:
    """The service's answer to a stop request."""

    target_id: str
    accepted: bool = True
    already_stopped: bool = False
    message: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def as_status(self) -> TargetStatus:
        """Status to report when the caller does not wait: the state is not known yet."""
        return TargetStatus(
            target_id=self.target_id,
            raw_state=None,
            stopped=self.already_stopped,
            details={"stop_response": self.message, "stop_options": self.options},
        )


# --------------------------------------------------------------------------------------------
# Errors: permanent ones fail the task at once, transient ones use the task's retries
# --------------------------------------------------------------------------------------------
class StopProviderError(Exception):
    """Base of every error this provider raises. Messages never contain a secret."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        target_id: str | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.target_id = target_id
        self.status_code = status_code
        self.error_code = error_code

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword-only attributes when the error is pickled (task runner, multiprocessing).
        return (_rebuild_error, (type(self), self.message, self.__dict__))


def _rebuild_error(cls: type[StopProviderError], message: str, state: dict[str, Any]) -> StopProviderError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class PermanentStopError(StopProviderError):
    """Retrying cannot fix this (bad input, bad credentials, unknown target, refused stop)."""


class TransientStopError(StopProviderError):
    """Retrying may fix this (rate limit, outage, network, a deadline that passed)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InvalidInputError(PermanentStopError, ValueError):
    """A parameter is empty, malformed or of the wrong type; raised before any request."""


class AuthenticationError(PermanentStopError):
    """The service rejected the credentials (401) or their permissions (403)."""


class TargetNotFoundError(PermanentStopError):
    """The service does not know this target."""


class StopRejectedError(PermanentStopError):
    """The service refused the stop request itself (4xx other than auth / not found)."""


class FeatureUnavailableError(StopRejectedError):
    """The service does not offer the requested kind of stop (e.g. an enterprise-only option)."""


class TargetNotRunningError(PermanentStopError):
    """The target was not running and the caller asked for ``fail_if_not_running``."""


class PaymentRequiredError(PermanentStopError):
    """The account cannot pay for the call (balance, cost limit, subscription)."""


class StopFailedError(PermanentStopError):
    """The target reached its stopped state, but the service reports that the stop failed."""


class RateLimitedError(TransientStopError):
    """429 or the service's own rate-limit signal."""


class ServiceUnavailableError(TransientStopError):
    """5xx, connection refused or dropped, read timeout."""


class MalformedResponseError(TransientStopError):
    """The answer was not what the API documents (HTML error page, bad JSON, empty body)."""


class StopTimeoutError(TransientStopError):
    """The deadline passed while some targets were still not stopped."""

    def __init__(
        self,
        message: str,
        *,
        pending: Sequence[str] = (),
        statuses: Mapping[str, TargetStatus] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.pending = list(pending)
        #: The last status seen of every target, stopped or not.
        self.statuses = dict(statuses or {})


class BatchStopError(StopProviderError):
    """Some targets of a batch failed; ``failures`` names each one and why."""

    def __init__(
        self,
        message: str,
        *,
        failures: Mapping[str, StopProviderError],
        succeeded: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.failures = dict(failures)
        #: What did go through for the other targets (acks or statuses), keyed by id.
        self.succeeded = dict(succeeded or {})


class PermanentBatchStopError(BatchStopError, PermanentStopError):
    """Every failure in the batch is permanent."""


class TransientBatchStopError(BatchStopError, TransientStopError):
    """At least one failure may go away on retry (already-stopped targets stay stopped)."""


def batch_error(
    action: str,
    failures: Mapping[str, StopProviderError],
    total: int,
    succeeded: Mapping[str, Any] | None = None,
) -> BatchStopError:
    """One error naming every failed target, retryable when any single failure is."""
    lines = [f"{action} failed for {len(failures)} of {total} target(s):"]
    lines += [f"  - {tid!r}: {type(err).__name__}: {err}" for tid, err in failures.items()]
    cls = (
        TransientBatchStopError
        if any(err.retryable for err in failures.values())
        else PermanentBatchStopError
    )
    return cls("\n".join(lines), failures=failures, succeeded=succeeded)


# --------------------------------------------------------------------------------------------
# Requests and responses as plain data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiRequest:
    """One HTTP call, independent of the client library. ``path`` is already URL-encoded."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    target_id: str | None = None
    #: Another base URL than the connection's (e.g. an OAuth token endpoint on its own host).
    base_url: str | None = None
    #: False for a call that obtains credentials: it carries none of ``request_auth``.
    authenticate: bool = True


@dataclass(frozen=True)
class ApiResponse:
    """What came back, independent of the client library."""

    status_code: int
    headers: Mapping[str, str]
    text: str
    url: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """Parsed body; an HTML page, an empty or a truncated body is a named error."""
        if not self.text.strip():
            raise MalformedResponseError(f"empty response body (HTTP {self.status_code})")
        try:
            return json.loads(self.text)
        except ValueError:
            snippet = self.text.strip()[:80].replace("\n", " ")
            raise MalformedResponseError(
                f"response is not JSON (HTTP {self.status_code}): {snippet!r}"
            ) from None


@dataclass(frozen=True)
class ClientConfig:
    """Everything a transport needs, derived from the Airflow connection once."""

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str = True
    secrets: tuple[str, ...] = ()
    #: Service settings read from the connection's extras (e.g. Rainforest's ``resource``).
    settings: Mapping[str, Any] = field(default_factory=dict)


def quote_segment(value: str) -> str:
    """Encode one path segment: ``/``, ``?``, ``#``, ``%`` and ``..`` can never change the path."""
    encoded = urllib.parse.quote(value, safe="")
    # "." and ".." are kept by quote(); as whole segments they would be collapsed by URL normalisation.
    if encoded in {".", ".."}:
        encoded = encoded.replace(".", "%2E")
    return encoded


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


# --------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------
class _HttpLibraryRedaction(logging.Filter):
    """Redacts known secrets from the HTTP libraries' own log records (urllib3 logs request lines with
    their query string at DEBUG; httpx logs full URLs at INFO), which Airflow's masker never sees."""

    LOGGERS = ("urllib3.connectionpool", "httpx", "httpcore.connection", "httpcore.http11")

    def __init__(self) -> None:
        super().__init__()
        self.forms: set[str] = set()
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.forms:
            text = record.getMessage()
            for form in sorted(self.forms, key=len, reverse=True):
                text = text.replace(form, REDACTED)
            record.msg, record.args = text, ()
        return True


_http_log_redaction: _HttpLibraryRedaction | None = None


def http_log_redaction() -> _HttpLibraryRedaction:
    """Installed on first use by a hook, not when a DAG file imports this module."""
    global _http_log_redaction
    if _http_log_redaction is None:
        _http_log_redaction = _HttpLibraryRedaction()
    return _http_log_redaction


class Redactor:
    """Replaces every known secret, raw or URL-encoded, in any text that may be logged or raised."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                forms.update({secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)})
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text

    def add(self, secret: str) -> None:
        """A secret obtained at run time (e.g. an OAuth access token) is hidden from then on."""
        extra = Redactor([secret])._forms
        self._forms = sorted({*self._forms, *extra}, key=len, reverse=True)
        http_log_redaction().forms.update(extra)
        _mask_with_airflow(extra)

    def register_with_airflow(self) -> None:
        """Hide the secrets from the HTTP libraries' logs, and ask Airflow's masker to hide them too."""
        http_log_redaction().forms.update(self._forms)
        _mask_with_airflow(self._forms)


def _mask_with_airflow(forms: Iterable[str]) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - very old SDKs
        return
    for form in forms:
        mask_secret(form)


class RatePacer:
    """Spaces requests to at most ``per_second``, shared by every thread and event loop of a process.

    Each caller reserves the next free slot and sleeps until it; a burst is spread out instead of
    being answered with 429s.
    """

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Seconds to wait before sending."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now


class _SharedClient:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.users = 0


#: Per event loop (weakly: a closed loop takes its clients with it), per host and TLS setting.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SharedClient]] = (
    weakref.WeakKeyDictionary()
)
#: Connections one shared client keeps; each hook still bounds its own requests with ``max_concurrency``.
SHARED_POOL_SIZE = 16
#: Requests in flight per shared client (one host). Beyond this they wait here, not in httpcore's
#: pool, whose queue is scanned in full for every request (quadratic CPU with a thousand waiting).
#: Per host, so that a service that hangs cannot hold up the waits on the others.
_client_slots: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def request_slots(client: Any) -> contextlib.AbstractAsyncContextManager[Any]:
    """The shared client's bound on requests in flight; no bound for a client made elsewhere."""
    return _client_slots.get(client) or contextlib.nullcontext()


@asynccontextmanager
async def shared_async_client(verify: bool | str, origin: str = "") -> AsyncIterator[Any]:
    """Borrow the running loop's client for one host (``origin``) and TLS setting: a pool per host,
    so that waits on several services do not evict each other's connections. It is closed when its
    last user is done."""
    import http.cookiejar

    import httpx

    loop = asyncio.get_running_loop()
    clients = _async_clients.setdefault(loop, {})
    key = f"{origin} {verify!r}"
    entry = clients.get(key)
    if entry is None:
        limits = httpx.Limits(max_connections=SHARED_POOL_SIZE, max_keepalive_connections=SHARED_POOL_SIZE)
        # No cookie jar: a cookie one connection's answer set must never ride along another's requests.
        no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        entry = clients[key] = _SharedClient(
            httpx.AsyncClient(verify=verify, limits=limits, follow_redirects=False, cookies=no_cookies)
        )
        _client_slots[entry.client] = asyncio.Semaphore(SHARED_POOL_SIZE)
    entry.users += 1
    try:
        yield entry.client
    finally:
        entry.users -= 1
        if entry.users == 0 and clients.get(key) is entry:
            del clients[key]
            await entry.client.aclose()


_pacers: dict[tuple[str, ...], RatePacer] = {}
_pacers_lock = threading.Lock()


def shared_pacer(key: tuple[str, ...], per_second: float) -> RatePacer:
    """One pacer per service account (``key``) and rate in this process."""
    with _pacers_lock:
        pacer = _pacers.get((*key, str(per_second)))
        if pacer is None:
            pacer = _pacers[(*key, str(per_second))] = RatePacer(per_second)
        return pacer


# --------------------------------------------------------------------------------------------
# Validation helpers shared by hooks, operators, sensors and notifiers
# --------------------------------------------------------------------------------------------
def validate_target_id(value: Any, param: str) -> str:
    """A target id is a non-empty string without control characters; it is never altered."""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{param} must be a string, got {type(value).__name__} {value!r}"
            + (" (quote it if it is a numeric id)" if isinstance(value, int | float) else "")
        )
    if not value.strip():
        raise InvalidInputError(f"{param} must not be empty or whitespace, got {value!r}")
    if value in RENDERED_NONE:
        raise InvalidInputError(
            f"{param} is the text {value!r}: a template rendered None (a missing param or XCom?)"
        )
    if _CONTROL_CHARS.search(value):
        raise InvalidInputError(f"{param} must not contain control characters, got {value!r}")
    if len(value) > MAX_TARGET_ID_LENGTH:
        raise InvalidInputError(f"{param} is {len(value)} characters long; at most {MAX_TARGET_ID_LENGTH}")
    return value


def normalize_target_ids(value: Any, param: str) -> list[str]:
    """One id, a list of ids, or a JSON string of a list (what a template renders) -> unique ids."""
    if isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]"):
        try:
            decoded = json.loads(value)
        except ValueError:  # "{{ params.ids }}" without | tojson renders Python's repr: ['a', 'b']
            import ast

            try:
                decoded = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                decoded = None
        if isinstance(decoded, list):
            value = decoded
    if value is None:
        raise InvalidInputError(f"{param} is required; it rendered to None")

    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise InvalidInputError(f"{param} must name at least one target; got an empty list")
    ids = [validate_target_id(item, param) for item in items]
    return list(dict.fromkeys(ids))


def validate_positive_number(value: Any, param: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or math.isinf(value):
        raise InvalidInputError(f"{param} must be a positive number of seconds, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------
# Retries (tenacity)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrySettings:
    """How a hook retries transient failures of one request."""

    max_attempts: int = 5
    min_wait: float = 1.0
    max_wait: float = 60.0
    max_elapsed: float = 300.0

    def tenacity_kwargs(self, on_retry: Callable[[Any], None]) -> dict[str, Any]:
        import tenacity

        backoff = tenacity.wait_exponential(multiplier=self.min_wait, max=self.max_wait)
        jitter = backoff + tenacity.wait_random(0, self.min_wait)
        max_wait = self.max_wait

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                return min(float(retry_after), max_wait)
            return float(jitter(state))

        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_after_delay(self.max_elapsed),
            "wait": wait,
            "retry": tenacity.retry_if_exception(
                lambda e: isinstance(e, TransientStopError) and not isinstance(e, StopTimeoutError)
            ),
            "before_sleep": on_retry,
            "reraise": True,
        }


# --------------------------------------------------------------------------------------------
# The base hook
# --------------------------------------------------------------------------------------------
class StopServiceHook(BaseHook):
    """
    A service's connection, auth and API, and the generic stop / status / wait machinery.

    Subclasses set the class attributes and implement the ``build_*`` / ``parse_*`` methods,
    which are plain functions of data (no I/O), so they are shared by the sync and async paths.
    """

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

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        retry_min_wait: float = 1.0,
        retry_max_wait: float = 60.0,
        retry_max_elapsed: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        if not isinstance(self.conn_id, str) or not self.conn_id.strip():
            raise InvalidInputError(f"{self.conn_name_attr} must be a non-empty string, got {conn_id!r}")
        self.timeout = validate_positive_number(timeout, "timeout") or 30.0
        self.retry = RetrySettings(max_attempts, retry_min_wait, retry_max_wait, retry_max_elapsed)
        self._config: ClientConfig | None = None
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
            return text[:300], None
        if isinstance(body, dict):
            message = (
                body.get("message")
                or body.get("error")
                or body.get("status_message")
                or json.dumps(body)[:300]
            )
            code = body.get("error_code") or body.get("code") or body.get("status_code")
            return str(message), str(code) if code is not None else None
        return str(body)[:300], None

    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        """Map an HTTP status to a named error. 2xx returns; everything else raises."""
        status = response.status_code
        if 200 <= status < 300:
            return
        message, code = self.error_details(response)
        what = f"{request.method} {self.describe(request)}"
        kwargs: dict[str, Any] = {"target_id": request.target_id, "status_code": status, "error_code": code}
        text = self.redact(
            f"{self.hook_name}: {what} -> HTTP {status}" + (f" {code}" if code else "") + f": {message}"
        )
        if 300 <= status < 400:
            location = self.redact(response.header("location") or "?")
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
    def _adopt_config(self, config: ClientConfig) -> ClientConfig:
        self.redact = Redactor(config.secrets)
        self.redact.register_with_airflow()
        self._config = config
        return config

    @property
    def config(self) -> ClientConfig:
        if self._config is None:
            self._adopt_config(self.build_config(self.get_connection(self.conn_id)))
        assert self._config is not None
        return self._config

    async def aconfig(self) -> ClientConfig:
        if self._config is None:
            conn = await self.aget_connection(self.conn_id)
            self._adopt_config(self.build_config(conn))
        assert self._config is not None
        return self._config

    def get_conn(self) -> requests.Session:
        """A pooled ``requests`` session (redirects are never followed)."""
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    @asynccontextmanager
    async def async_client(self) -> Any:
        """The event loop's shared ``httpx.AsyncClient``: a triggerer running a thousand waits keeps
        one connection pool (and one TLS context, which costs ~50 ms to build) instead of one each."""
        config = await self.aconfig()
        parts = urllib.parse.urlsplit(config.base_url)
        async with shared_async_client(config.verify, f"{parts.scheme}://{parts.netloc}") as client:
            yield client

    # ---- transports ------------------------------------------------------------------------
    def _url(self, config: ClientConfig, request: ApiRequest) -> str:
        return (request.base_url or config.base_url).rstrip("/") + request.path

    def _params(self, config: ClientConfig, request: ApiRequest) -> dict[str, str]:
        return {**config.params, **request.params}

    def _headers(self, config: ClientConfig, request: ApiRequest) -> dict[str, str]:
        return {"Accept": "application/json", **config.headers, **request.headers}

    def _on_retry(self, state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = getattr(state.next_action, "sleep", 0.0) if state.next_action else 0.0
        self.log.warning(
            "%s: attempt %d failed (%s); retrying in %.1fs",
            self.hook_name,
            state.attempt_number,
            self.redact(str(exc)),
            wait,
        )

    def _request_error(self, request: ApiRequest, exc: Exception) -> InvalidInputError:
        """The request could not even be built (a header or URL the HTTP library refuses): permanent."""
        return InvalidInputError(
            self.redact(
                f"{self.hook_name}: {request.method} {self.describe(request)} cannot be sent: "
                f"{type(exc).__name__}: {exc}"
            ),
            target_id=request.target_id,
        )

    def _transport_error(self, request: ApiRequest, exc: Exception) -> ServiceUnavailableError:
        kind = type(exc).__name__
        return ServiceUnavailableError(
            self.redact(f"{self.hook_name}: {request.method} {self.describe(request)} failed: {kind}: {exc}"),
            target_id=request.target_id,
        )

    def _send_once(self, request: ApiRequest) -> ApiResponse:
        """One request; a 401 is answered once with fresh credentials when the hook can get them."""
        response = self._exchange(request)
        if response.status_code == 401 and request.authenticate and self.invalidate_auth():
            self.log.info("%s: HTTP 401 with a cached token; retrying once with a new one", self.hook_name)
            response = self._exchange(request)
        self.raise_for_response(request, response)
        return response

    def _exchange(self, request: ApiRequest) -> ApiResponse:
        import requests

        config = self.config
        headers = {**self._headers(config, request), **(self.request_auth() if request.authenticate else {})}
        if (pause := self.budget_wait(request)) > 0:
            time.sleep(pause)
        try:
            resp = self.get_conn().request(
                request.method,
                self._url(config, request),
                params=self._params(config, request),
                json=request.json,
                data=request.form,
                headers=headers,
                timeout=self.timeout,
                verify=config.verify,
                allow_redirects=False,
            )
            text = resp.text
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError) as exc:
            raise self._request_error(request, exc) from None
        except requests.RequestException as exc:
            raise self._transport_error(request, exc) from None
        response = ApiResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, text)
        self.observe_response(response)
        return response

    async def _asend_once(self, client: httpx.AsyncClient, request: ApiRequest) -> ApiResponse:
        response = await self._aexchange(client, request)
        if response.status_code == 401 and request.authenticate and self.invalidate_auth():
            self.log.info("%s: HTTP 401 with a cached token; retrying once with a new one", self.hook_name)
            response = await self._aexchange(client, request)
        self.raise_for_response(request, response)
        return response

    async def _aexchange(self, client: httpx.AsyncClient, request: ApiRequest) -> ApiResponse:
        import httpx

        config = await self.aconfig()
        auth = await self.arequest_auth(client) if request.authenticate else {}
        headers = {**self._headers(config, request), **auth}
        if (pause := self.budget_wait(request)) > 0:
            await asyncio.sleep(pause)
        try:
            async with request_slots(client):
                resp = await client.request(
                    request.method,
                    self._url(config, request),
                    params=self._params(config, request),
                    json=request.json,
                    data=request.form,
                    headers=headers,
                    timeout=self.timeout,
                )
            text = resp.text
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL, ValueError) as exc:
            raise self._request_error(request, exc) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(request, exc) from None
        response = ApiResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, text)
        self.observe_response(response)
        return response

    def send(self, request: ApiRequest, parse: Callable[[ApiResponse], T] | None = None) -> Any:
        """
        Send with retries on transient failures only; a 4xx that cannot change is raised at once.

        ``parse`` runs inside the retry, so a malformed body is retried too: pass it for reads only,
        never for a stop, which must not be sent again once the service has answered it.
        """
        import tenacity

        for attempt in tenacity.Retrying(**self.retry.tenacity_kwargs(self._on_retry)):
            with attempt:
                response = self._send_once(request)
                return parse(response) if parse else response
        raise AssertionError("unreachable")  # pragma: no cover

    async def asend(
        self, client: httpx.AsyncClient, request: ApiRequest, parse: Callable[[ApiResponse], T] | None = None
    ) -> Any:
        import tenacity

        async for attempt in tenacity.AsyncRetrying(**self.retry.tenacity_kwargs(self._on_retry)):
            with attempt:
                response = await self._asend_once(client, request)
                return parse(response) if parse else response
        raise AssertionError("unreachable")  # pragma: no cover

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
            return self.parse_stop_response(target_id, response, options)
        except MalformedResponseError as exc:
            return StopAck(
                target_id, message=f"stop sent; its answer was unreadable ({exc})", options=dict(options)
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
        except MalformedResponseError as exc:  # sent and answered 2xx: the wait tells whether it took
            message = f"stop sent; its answer was unreadable ({exc})"
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
            for part in pool.map(lambda chunk: self._stop_chunk(chunk, options), chunks):
                merged.update(part)
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
            self.build_status_request(target_id), lambda r: self.parse_status_response(target_id, r)
        )

    async def aget_status(self, client: httpx.AsyncClient, target_id: str) -> TargetStatus:
        target_id = self.validate_target(target_id)
        return await self.asend(
            client, self.build_status_request(target_id), lambda r: self.parse_status_response(target_id, r)
        )

    def list_targets(self) -> list[TargetStatus]:
        """Every target the service lists, with its status (for stop-all)."""
        return self.send(self.build_list_request(), self.parse_list_response)

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
            return list(zip(target_ids, pool.map(safe, target_ids), strict=True))

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

    def get_statuses(self, target_ids: Sequence[str]) -> dict[str, TargetStatus]:
        return self._collect("status check", self._map(self.get_status, target_ids))

    async def aget_statuses(
        self, client: httpx.AsyncClient, target_ids: Sequence[str]
    ) -> dict[str, TargetStatus]:
        return self._collect(
            "status check", await self._amap(lambda t: self.aget_status(client, t), target_ids)
        )

    # ---- waiting ---------------------------------------------------------------------------
    def wait_until_stopped(
        self, target_ids: Sequence[str], *, poll_interval: float, deadline: float
    ) -> dict[str, TargetStatus]:
        """Poll until every target is stopped or ``deadline`` (epoch seconds) passes."""
        progress = WaitProgress(self, target_ids, deadline)
        while True:
            progress.record(self.get_statuses(progress.pending))
            if not progress.pending:
                return progress.statuses
            time.sleep(progress.next_sleep(poll_interval))

    async def await_stopped(
        self, client: httpx.AsyncClient, target_ids: Sequence[str], *, poll_interval: float, deadline: float
    ) -> dict[str, TargetStatus]:
        progress = WaitProgress(self, target_ids, deadline)
        while True:
            progress.record(await self.aget_statuses(client, progress.pending))
            if not progress.pending:
                return progress.statuses
            await asyncio.sleep(progress.next_sleep(poll_interval))

    # ---- Airflow connection test -----------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one cheap authenticated call."""
        try:
            self.send(self.build_test_request())
        except StopProviderError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, self.redact(f"{type(exc).__name__}: {exc}")
        return True, f"Connection to {self.hook_name} at {self.redact(self.config.base_url)} works."

    @classmethod
    def hook_class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"


class WaitProgress:
    """The bookkeeping of one wait, shared by the sync loop and the async loop."""

    def __init__(self, hook: StopServiceHook, target_ids: Sequence[str], deadline: float) -> None:
        self.hook = hook
        self.deadline = deadline
        self.pending: list[str] = list(target_ids)
        self.statuses: dict[str, TargetStatus] = {}
        self.polls = 0

    def record(self, statuses: Mapping[str, TargetStatus]) -> None:
        self.polls += 1
        for tid, status in statuses.items():
            previous = self.statuses.get(tid)
            self.statuses[tid] = status
            if previous is None or previous.raw_state != status.raw_state:
                self.hook.log.info(
                    "%s: %s %r is %s%s",
                    self.hook.hook_name,
                    self.hook.target_noun,
                    tid,
                    status.raw_state,
                    " (stopped)" if status.stopped else "",
                )
        self.pending = [t for t in self.pending if not self.statuses[t].stopped]

    def next_sleep(self, poll_interval: float) -> float:
        remaining = self.deadline - time.time()
        if remaining <= 0:
            self.timeout()
        return min(poll_interval, remaining)

    def timeout(self) -> NoReturn:
        raise StopTimeoutError(
            timeout_message(self.hook.hook_name, self.hook.target_noun, self.pending, self.statuses),
            pending=self.pending,
            statuses=self.statuses,
        )


def timeout_message(
    service: str, noun: str, pending: Sequence[str], statuses: Mapping[str, TargetStatus]
) -> str:
    states = ", ".join(f"{t!r} ({statuses[t].raw_state if t in statuses else 'unknown'})" for t in pending)
    return f"{service}: timed out waiting for {len(pending)} {noun}(s) to stop; still running: {states}"


def connection_extra(conn: Connection) -> dict[str, Any]:
    """The connection's extra as a dict, whatever form it was given in."""
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
    return dict(extra or {})


def base_url_from_connection(conn: Connection, default: str | None) -> str:
    """``host`` may be a full URL or a bare host name (with ``schema`` as the scheme and ``port``)."""
    host = (conn.host or "").strip()
    if not host:
        if default is None:
            raise InvalidInputError(f"connection {conn.conn_id!r} has no host; set it to the service's URL")
        return default.rstrip("/")
    if "://" not in host:
        scheme = (conn.schema or "https").strip() or "https"
        host = f"{scheme}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
    parsed = urllib.parse.urlsplit(host)
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parsed = parsed._replace(netloc="")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInputError(f"connection {conn.conn_id!r} host must be an http(s) URL, got {host!r}")
    if parsed.username or parsed.password:
        raise InvalidInputError(
            f"connection {conn.conn_id!r} host must not carry credentials; use the password field"
        )
    return host.rstrip("/")


def rate_from_extra(extra: Mapping[str, Any], default: float | None, where: str) -> float | None:
    """The connection's ``requests_per_second`` (a positive number), or the service's documented pace."""
    value = extra.get("requests_per_second", default)
    if value is None:
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if isinstance(value, bool) or not 0 < rate < math.inf:
        raise InvalidInputError(f"{where}: requests_per_second must be a positive number, got {value!r}")
    return rate


def verify_from_extra(extra: Mapping[str, Any]) -> bool | str:
    """TLS verification stays on unless the connection explicitly turns it off or names a CA bundle."""
    value = extra.get("verify", True)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("false", "0", "no", "off"):
            return False
        if lowered in ("true", "1", "yes", "on", ""):
            return True
        return value
    return bool(value)
