"""A service account's documented rate limit, kept once for the whole deployment.

A vendor counts requests per account (an Amperity tenant, a DataForSEO login, a Rainforest key), not
per process; a deployment is many processes on many machines (a Celery or Kubernetes worker process
per task, several triggerers). Each process paces itself (``hooks.pacing``), so N processes send up
to N times the pace. With ``[stop_provider] rate_limit_storage`` set to a storage URI of the ``limits``
library (``redis://``, ``redis+sentinel://``, ``redis+cluster://``, ``memcached://``, ...; the storage
layer behind Flask-Limiter), every process also takes each request's slot from one moving window per
account in that storage, keyed by service, host and account (never by process, never by a secret).

The storage is a help, never a condition: each call to it runs in a small thread pool with a short
timeout (``rate_limit_storage_timeout``, 0.5 s), so neither a worker nor the triggerer's event loop
ever waits on it longer. When it fails or is slow, the process warns once, goes on at its own pace,
and asks the storage again after ``RETRY_STORAGE_SECONDS``. A stop is never failed by the limiter.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import math
import os
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_stop import process_state
from airflow_provider_stop.hooks import bounds
from airflow_provider_stop.hooks.errors import RequestDeadlineError
from airflow_provider_stop.hooks.pacing import shared_pacer
from airflow_provider_stop.hooks.redaction import url_without_userinfo

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.strategies import RateLimiter

log = logging.getLogger(__name__)

#: Default of ``[stop_provider] rate_limit_storage_timeout``: the longest one call to the storage may take.
STORAGE_TIMEOUT_SECONDS = 0.5
#: After the storage failed, the process paces itself alone this long before it asks the storage again.
RETRY_STORAGE_SECONDS = 5.0
#: The longest a process waits, once, for its storage client to be made (``limits`` and the client
#: library imported: CPU only, no network, but slow on a busy machine that starts many tasks at once).
SETUP_TIMEOUT_SECONDS = 10.0
#: Storage calls in flight at once per process (each ends within the timeout).
STORAGE_THREADS = 4
#: A storage call given up on (distinct classes before Python 3.11).
_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError, asyncio.TimeoutError)
#: Every key starts with this (after the storage's own prefix, ``LIMITS:`` for Redis).
KEY_PREFIX = "stop_provider"


@dataclass(frozen=True)
class RateLimit:
    """The documented limit one request counts against, and whose it is.

    ``account`` names the account (Amperity: tenant; DataForSEO: login; Rainforest: a digest of the
    key; DataSift: username; Feldera: host or tenant), never with a secret in it; ``scope`` tells
    limits of one account apart (Rainforest's list has its own); ``per_second`` is the pace.
    """

    service: str
    host: str
    account: str
    per_second: float
    scope: str = "requests"

    @property
    def key(self) -> tuple[str, ...]:
        """Who the limit belongs to: the same in every process of the deployment."""
        return (KEY_PREFIX, self.service, self.host, self.account, self.scope)

    def window(self) -> tuple[int, int]:
        """``(requests, seconds)`` of the shared moving window: the pace in whole requests, over one
        second, or one request over as many seconds as the pace needs (never faster than the pace)."""
        if self.per_second >= 1:
            return math.floor(self.per_second), 1
        return 1, math.ceil(1 / self.per_second)


def host_of(url: str) -> str:
    """The host (and port) of a base URL, lower case, without user info."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def configured_storage() -> tuple[str, float]:
    """``[stop_provider] rate_limit_storage`` ("" when unset: each process paces itself) and
    ``rate_limit_storage_timeout`` (seconds)."""
    from airflow_provider_stop._compat import conf

    uri = (conf.get("stop_provider", "rate_limit_storage", fallback="") or "").strip()
    try:
        timeout = conf.getfloat(
            "stop_provider", "rate_limit_storage_timeout", fallback=STORAGE_TIMEOUT_SECONDS
        )
    except (TypeError, ValueError):
        timeout = STORAGE_TIMEOUT_SECONDS
    return uri, timeout if 0 < timeout < math.inf else STORAGE_TIMEOUT_SECONDS


def describe_storage(uri: str) -> str:
    """The storage as logs may name it: scheme, host and port, no password."""
    return url_without_userinfo(uri.split("?", 1)[0])


def _storage_options(uri: str, timeout: float) -> dict[str, Any]:
    """Client timeouts, so that a call the caller gave up on also ends soon in its thread."""
    scheme = urllib.parse.urlsplit(uri).scheme
    if "redis" in scheme or "valkey" in scheme:
        return {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if "memcached" in scheme:
        return {"connect_timeout": timeout, "timeout": timeout}
    return {}


@functools.cache
def _item_class() -> type[RateLimitItem]:
    from limits import RateLimitItemPerSecond

    class AccountLimit(RateLimitItemPerSecond):
        """Keyed by the account alone: ``limits`` puts the amount in its keys, but connections with
        different paces to one account must still share one window."""

        def key_for(self, *identifiers: bytes | str | int | float) -> str:
            return "/".join(str(i) for i in identifiers)

    return AccountLimit


def _item(limit: RateLimit) -> RateLimitItem:
    """The ``limits`` item for ``limit``."""
    amount, seconds = limit.window()
    return _item_class()(amount, seconds)


class SharedLimiter:
    """One storage of the deployment, as this process uses it; see the module docstring."""

    def __init__(self, uri: str, timeout: float = STORAGE_TIMEOUT_SECONDS) -> None:
        self.uri = uri.removeprefix("async+")  # the sync storage, in threads: the loop never waits on it
        self.timeout = timeout
        self.name = describe_storage(self.uri)
        self._limiter: RateLimiter | None = None
        self._make_lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            STORAGE_THREADS, thread_name_prefix="stop-provider-limit"
        )
        self._down_until = float("-inf")
        self._warned = False
        self._state_lock = threading.Lock()
        #: Requests this process sent with a slot of the shared window / at its own pace alone.
        self.shared = 0
        self.alone = 0
        #: The storage client, made in the pool as soon as the limiter is (the first request waits
        #: for it up to ``SETUP_TIMEOUT_SECONDS``, the storage's own timeout is for its calls).
        self._setup = self._executor.submit(self._strategy)

    # ---- the storage (called in the pool's threads) ------------------------------------------
    def _strategy(self) -> RateLimiter:
        with self._make_lock:
            if self._limiter is None:
                from limits.storage import storage_from_string
                from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

                storage = storage_from_string(self.uri, **_storage_options(self.uri, self.timeout))
                storage.check()  # connects now, within the setup's time, not the first request's
                try:
                    self._limiter = MovingWindowRateLimiter(storage)
                except NotImplementedError:  # memcached has no moving window
                    self._limiter = FixedWindowRateLimiter(storage)
            return self._limiter

    def take(self, limit: RateLimit) -> tuple[bool, float]:
        """One visit to the storage: ``(True, seconds until this request's turn)`` when a slot was
        taken, else ``(False, seconds until one frees)``.

        A request's turn spreads a window's slots over the window: the k-th of a window goes k paces
        after the window's first. Slots taken together (processes started together, or waiting for
        one window to free) would otherwise reach the service as a burst, and a burst the network or
        a busy machine delays unevenly can meet the next window's at the service."""
        strategy = self._strategy()
        item = _item(limit)
        granted = strategy.hit(item, *limit.key)
        reset, remaining = strategy.get_window_stats(item, *limit.key)
        now = time.time()
        if not granted:
            return False, max(0.0, float(reset) - now)
        amount, seconds = limit.window()
        used = amount - int(remaining)
        turn = float(reset) - seconds + max(0, used - 1) * seconds / amount
        return True, min(max(0.0, turn - now), float(seconds))

    def close(self) -> None:
        """End the pool's threads once the calls in flight are done (each ends within its timeout)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- health ------------------------------------------------------------------------------
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException, logger: Any) -> None:
        with self._state_lock:
            self._down_until = time.monotonic() + RETRY_STORAGE_SECONDS
            warn, self._warned = not self._warned, True
        if warn:
            why = f"no answer within {self.timeout:g}s" if isinstance(exc, _TIMEOUTS) else self._reason(exc)
            logger.warning(
                "rate_limit_storage %s is not usable (%s): this process paces itself alone, as if "
                "the setting were unset, and asks the storage again every %.0fs (warned once per process)",
                self.name,
                why,
                RETRY_STORAGE_SECONDS,
            )

    def _reason(self, exc: BaseException) -> str:
        """The error's type and text, without the storage's password."""
        text = f"{type(exc).__name__}: {exc}"
        password = urllib.parse.urlsplit(self.uri).password
        return text.replace(password, "***") if password else text

    def _ready(self) -> bool:
        """The storage client is made (waited for once, up to ``SETUP_TIMEOUT_SECONDS``)."""
        if not self._setup.done():
            concurrent.futures.wait([self._setup], SETUP_TIMEOUT_SECONDS)
        return self._setup.done()

    async def _aready(self) -> bool:
        if not self._setup.done():  # a setup that failed is met again, and reported, by ``take``
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.shield(asyncio.wrap_future(self._setup)), SETUP_TIMEOUT_SECONDS
                )
        return self._setup.done()

    def _pause(self, granted: bool, wait: float, limit: RateLimit) -> float | None:
        """How long to sleep: until the request's turn, or before asking again (with a little jitter,
        so the processes that wait for one slot do not all ask at once). None when the sleep would
        pass the wait's deadline: a granted request then goes at once (the slot is its own); one
        without a slot sleeps until the deadline and is not sent (``_past_deadline``)."""
        pause = wait if granted else wait + random.uniform(0, 1 / limit.per_second)  # not secrecy
        deadline = bounds.current_wait_deadline()
        if deadline is not None and time.time() + pause >= deadline:
            return None
        return pause

    @staticmethod
    def _past_deadline(limit: RateLimit) -> RequestDeadlineError:
        """A status read that found no slot before its wait's deadline is the wait's timeout (the wait
        loop says so; a worker then defers), never a request sent past the account's limit: requests
        many processes held back until one deadline would reach the service together."""
        return RequestDeadlineError(
            f"the wait's deadline came while {limit.service} {limit.scope} waited for the account's "
            "rate limit (rate_limit_storage)"
        )

    def _count(self, shared: bool, logger: Any) -> None:
        with self._state_lock:
            first = shared and not self.shared
            if shared:
                self.shared += 1
            else:
                self.alone += 1
        if first:
            logger.info("rate_limit_storage %s: this process shares the accounts' limits there", self.name)

    # ---- callers -----------------------------------------------------------------------------
    def acquire(self, limit: RateLimit, logger: Any = log) -> bool:
        """Block until the account has a free slot; False when the request goes at the process's own
        pace alone (storage down or slow). ``RequestDeadlineError`` when no slot came before the
        wait's deadline (``_past_deadline``)."""
        while self.available():
            if not self._ready():
                self._failed(TimeoutError(), logger)
                break
            future = self._executor.submit(self.take, limit)
            try:
                granted, wait = future.result(self.timeout)
            except Exception as exc:
                self._failed(exc, logger)
                break
            pause = self._pause(granted, wait, limit)
            if pause is None and not granted:
                time.sleep(max(0.0, (bounds.current_wait_deadline() or 0.0) - time.time()))
                raise self._past_deadline(limit)
            if pause:
                time.sleep(pause)
            if granted:
                self._count(True, logger)
                return True
        self._count(False, logger)
        return False

    async def aacquire(self, limit: RateLimit, logger: Any = log) -> bool:
        """``acquire`` on the event loop: the storage is called in the pool, the loop only awaits."""
        loop = asyncio.get_running_loop()
        while self.available():
            if not await self._aready():
                self._failed(TimeoutError(), logger)
                break
            try:
                granted, wait = await asyncio.wait_for(
                    loop.run_in_executor(self._executor, self.take, limit), self.timeout
                )
            except Exception as exc:
                self._failed(exc, logger)
                break
            pause = self._pause(granted, wait, limit)
            if pause is None and not granted:
                await asyncio.sleep(max(0.0, (bounds.current_wait_deadline() or 0.0) - time.time()))
                raise self._past_deadline(limit)
            if pause:
                await asyncio.sleep(pause)
            if granted:
                self._count(True, logger)
                return True
        self._count(False, logger)
        return False


class _Limiters(dict[tuple[int, str, float], SharedLimiter]):
    """The process's limiters; forgetting them (``process_state.reset``) also ends their threads."""

    def clear(self) -> None:
        for shared in self.values():
            shared.close()
        super().clear()


#: One limiter per storage and process (a forked process gets its own: the pool's threads and the
#: storage's connections do not survive a fork).
_limiters: _Limiters = process_state.shared("shared limiters", _Limiters)
_limiters_lock = threading.Lock()


def limiter(uri: str, timeout: float = STORAGE_TIMEOUT_SECONDS) -> SharedLimiter:
    """This process's limiter for the storage ``uri``."""
    key = (os.getpid(), uri, timeout)
    with _limiters_lock:
        found = _limiters.get(key)
        if found is None:
            found = _limiters[key] = SharedLimiter(uri, timeout)
        return found


def local_pace(limit: RateLimit) -> float:
    """Seconds this process waits for its own next slot (its pacer, slowed after 429s)."""
    return shared_pacer(limit.key, limit.per_second).reserve()


def pace(limit: RateLimit, storage: str, timeout: float, logger: Any = log) -> None:
    """Wait for the request's turn: the process's own pace, then the account's shared window."""
    if (wait := local_pace(limit)) > 0:
        time.sleep(wait)
    if storage:
        limiter(storage, timeout).acquire(limit, logger)


async def apace(limit: RateLimit, storage: str, timeout: float, logger: Any = log) -> None:
    """``pace`` on the event loop."""
    if (wait := local_pace(limit)) > 0:
        await asyncio.sleep(wait)
    if storage:
        await limiter(storage, timeout).aacquire(limit, logger)


def rate_limited(limit: RateLimit) -> bool:
    """The service answered "too many requests": this process slows down (True when it just did)."""
    return shared_pacer(limit.key, limit.per_second).slow_down()


def current_pace(limit: RateLimit) -> float:
    """This process's pace for ``limit`` now (requests a second)."""
    return shared_pacer(limit.key, limit.per_second).rate


def answered(limit: RateLimit) -> None:
    """An answer that was not rate limited: the process's pace recovers a step."""
    shared_pacer(limit.key, limit.per_second).recover()
