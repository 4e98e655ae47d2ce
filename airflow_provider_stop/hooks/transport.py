"""What every request goes through besides the service's own rules: redaction of secrets from logs,
pacing to a documented request rate, the event loop's shared HTTP clients, and retry settings.

Nothing here imports an HTTP library at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import threading
import time
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from airflow_provider_stop.hooks.errors import StopTimeoutError, TransientStopError

REDACTED = "***"


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
