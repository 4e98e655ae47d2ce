"""The event loop's shared HTTP clients: one client a host, a one-connection lane for each request in
flight, and one TLS context per ``verify`` setting shared by every host's client.

Nothing here imports an HTTP library at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any


class _SharedClient:
    """One host's shared client: a *lane* (a client of one connection) for each request in flight,
    at most ``SHARED_POOL_SIZE``, all with the loop's TLS context for its ``verify`` setting.

    Why lanes and not one pool of 16: httpcore walks its whole pool every time a request starts or
    ends, and its keep-alive check is quadratic in the pool's size
    (https://github.com/encode/httpcore/pull/1035). With 16 requests in flight that cost 1.6 ms of
    CPU a request in a triggerer; lanes of one connection cost 0.6 ms. A request waits for a free
    lane here, never in httpcore's queue, so a service that hangs holds up only its own host."""

    def __init__(self, make_lane: Callable[[], Any], tls_key: str) -> None:
        self.make_lane = make_lane
        #: The TLS context's key in the loop's ``_TlsContexts`` (shared with the other hosts).
        self.tls_key = tls_key
        #: The first lane: what hooks hold and pass around (``request_slots`` picks the lane to use).
        self.client = make_lane()
        self.lanes = [self.client]
        self.idle = [self.client]
        self.slots = asyncio.Semaphore(SHARED_POOL_SIZE)
        self.users = 0

    @asynccontextmanager
    async def lane(self) -> AsyncIterator[Any]:
        async with self.slots:
            if self.idle:
                lane = self.idle.pop()  # the most recently used: its connection is the likeliest alive
            else:
                lane = self.make_lane()
                self.lanes.append(lane)
            try:
                yield lane
            finally:
                self.idle.append(lane)

    async def aclose(self) -> None:
        for lane in self.lanes:
            await lane.aclose()


class _TlsContexts:
    """An event loop's TLS contexts, one per ``verify`` setting, shared by every host's client while
    one uses it. A context loads the CA bundle (30 to 60 ms of CPU): a triggerer waiting on five
    services builds one, not five. Dropped with its last client, so a CA bundle replaced on disk is
    read again by the next burst of waits."""

    def __init__(self) -> None:
        self.contexts: dict[str, tuple[Any, int]] = {}

    def acquire(self, verify: bool | str) -> tuple[str, Any]:
        import httpx

        key = repr(verify)
        context, users = self.contexts.get(key) or (httpx.create_ssl_context(verify=verify), 0)
        self.contexts[key] = (context, users + 1)
        return key, context

    def release(self, key: str) -> None:
        context, users = self.contexts[key]
        if users > 1:
            self.contexts[key] = (context, users - 1)
        else:
            del self.contexts[key]


#: Per event loop (weakly: a closed loop takes its clients with it), per host and TLS setting.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SharedClient]] = (
    weakref.WeakKeyDictionary()
)
_tls_contexts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _TlsContexts] = (
    weakref.WeakKeyDictionary()
)
#: Requests in flight per shared client (one host), each on its own lane (connection); each hook
#: still bounds its own requests with ``max_concurrency``.
SHARED_POOL_SIZE = 16
#: The shared client each hook holds -> its lanes.
_client_slots: weakref.WeakKeyDictionary[Any, _SharedClient] = weakref.WeakKeyDictionary()


def request_slots(client: Any) -> contextlib.AbstractAsyncContextManager[Any]:
    """The client to send one request with: a free lane of a shared client (waiting for one when
    ``SHARED_POOL_SIZE`` are in flight), or ``client`` itself when it was made elsewhere."""
    shared = _client_slots.get(client)
    return shared.lane() if shared else contextlib.nullcontext(client)


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
        contexts = _tls_contexts.setdefault(loop, _TlsContexts())
        tls_key, tls = contexts.acquire(verify)
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        # No cookie jar: a cookie one connection's answer set must never ride along another's requests.
        no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        entry = clients[key] = _SharedClient(
            lambda: httpx.AsyncClient(verify=tls, limits=one, follow_redirects=False, cookies=no_cookies),
            tls_key,
        )
        _client_slots[entry.client] = entry
    entry.users += 1
    try:
        yield entry.client
    finally:
        entry.users -= 1
        if entry.users == 0 and clients.get(key) is entry:
            del clients[key]
            _tls_contexts[loop].release(entry.tls_key)
            await entry.aclose()
