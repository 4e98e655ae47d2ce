"""What bounds one answer, on both HTTP paths: a total deadline for the whole request (the HTTP
libraries' timeouts bound each socket read, so a server that sends a byte a second holds a request
forever) and a cap on the body read (streamed, never read whole first).

Nothing here imports an HTTP library at module level.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

#: Default of ``[stop_provider] max_response_bytes``: the largest answer read (a page of 1,000 targets
#: is well under 2 MB).
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: Answers larger than this are decoded and parsed in a worker thread, not on the triggerer's loop.
OFF_LOOP_BYTES = 256 * 1024
#: A read that starts when the wait's deadline has already come (its last look) gets this long.
LAST_LOOK_SECONDS = 1.0

#: The deadline (epoch seconds) of the wait the current request serves, if any.
_wait_deadline: ContextVar[float | None] = ContextVar("_wait_deadline", default=None)


@contextlib.contextmanager
def wait_deadline(deadline: float | None) -> Iterator[None]:
    """Within the block, no request outlives ``deadline`` (epoch seconds)."""
    token = _wait_deadline.set(deadline)
    try:
        yield
    finally:
        _wait_deadline.reset(token)


def current_wait_deadline() -> float | None:
    return _wait_deadline.get()


def request_deadline(timeout: float) -> tuple[float, bool]:
    """(epoch deadline of a request starting now, whether the wait's deadline is what ends it)."""
    now = time.time()
    own = now + timeout
    wait = _wait_deadline.get()
    if wait is None:
        return own, False
    wait = max(wait, now + min(LAST_LOOK_SECONDS, timeout)) if wait <= now else wait
    return (wait, True) if wait < own else (own, False)


def max_response_bytes() -> int:
    """``[stop_provider] max_response_bytes``, read when a hook is made (not at import)."""
    from airflow_provider_stop._compat import conf

    try:
        value = conf.getint("stop_provider", "max_response_bytes", fallback=MAX_RESPONSE_BYTES)
    except (TypeError, ValueError):
        return MAX_RESPONSE_BYTES
    return value if value > 0 else MAX_RESPONSE_BYTES


def decode(content: bytes, charset: str | None) -> str:
    """The body as text: its declared charset, else UTF-8 (JSON's, RFC 8259); never guessed."""
    try:
        return content.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


# ---- the sync path: requests ----------------------------------------------------------------
class Guard:
    """One sync request's deadline: at it, the socket the request uses is shut down, which ends any
    read it is blocked in. ``expired`` tells the caller why its request failed."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.conn: Any = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.time()), self.expire)
        self._timer.daemon = True

    def __enter__(self) -> Guard:
        _guards.guard = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _guards.guard = None

    def attach(self, conn: Any) -> None:
        with self._lock:
            self.conn = conn
            if self.expired:
                _shut(conn)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            if self.conn is not None:
                _shut(self.conn)


_guards = threading.local()


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def bounded_adapter() -> Any:
    """A ``requests`` adapter whose connections a ``Guard`` can shut down at its deadline."""
    import requests.adapters
    from urllib3 import connection, connectionpool

    def tracked(base: type) -> type:
        class Tracked(base):
            def connect(self) -> None:
                guard = getattr(_guards, "guard", None)
                if guard is not None:
                    guard.attach(self)
                super().connect()
                if guard is not None and guard.expired:
                    _shut(self)

            def request(self, *args: Any, **kwargs: Any) -> Any:
                guard = getattr(_guards, "guard", None)
                if guard is not None:
                    guard.attach(self)
                return super().request(*args, **kwargs)

        return Tracked

    class HttpPool(connectionpool.HTTPConnectionPool):
        ConnectionCls = tracked(connection.HTTPConnection)

    class HttpsPool(connectionpool.HTTPSConnectionPool):
        ConnectionCls = tracked(connection.HTTPSConnection)

    pools = {"http": HttpPool, "https": HttpsPool}

    class BoundedAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    return BoundedAdapter()


def _declared_over(declared: str | None, cap: int) -> bool:
    value = (declared or "").strip()
    return value.isascii() and value.isdigit() and int(value) > cap


def read_capped(chunks: Iterator[bytes], cap: int, declared: str | None) -> bytes | None:
    """The body from ``chunks``, or None once it is larger than ``cap`` (a ``Content-Length`` over
    the cap is refused before anything is read)."""
    if _declared_over(declared, cap):
        return None
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > cap:
            return None
    return bytes(body)


async def aread_capped(chunks: AsyncIterator[bytes], cap: int, declared: str | None) -> bytes | None:
    """``read_capped`` for an async stream."""
    if _declared_over(declared, cap):
        return None
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > cap:
            return None
    return bytes(body)
