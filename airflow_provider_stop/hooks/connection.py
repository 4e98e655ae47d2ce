"""Reading an Airflow connection: its extras, its base URL, the settings every service shares, and one
lookup shared by the waits that ask for it together."""

from __future__ import annotations

import asyncio
import math
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from airflow_provider_stop.hooks.errors import InvalidInputError

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Connection


#: The extra of a connection read ahead on the async path, as (connection, extra): ``connection_extra``
#: returns it for that connection instead of reading ``extra_dejson`` on the event loop.
_read_ahead: ContextVar[tuple[object, Mapping[str, Any]] | None] = ContextVar("_read_ahead", default=None)


def connection_extra(conn: Connection) -> dict[str, Any]:
    """The connection's extra as a dict, whatever form it was given in."""
    ahead = _read_ahead.get()
    if ahead is not None and ahead[0] is conn:
        return dict(ahead[1])
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
    return dict(extra or {})


@contextmanager
def extra_read_ahead(conn: Connection, extra: Mapping[str, Any]) -> Iterator[None]:
    """Within the block, ``connection_extra(conn)`` is ``extra`` (read ahead without blocking the
    event loop), so ``build_config`` stays one synchronous function for both paths."""
    token = _read_ahead.set((conn, extra))
    try:
        yield
    finally:
        _read_ahead.reset(token)


#: Connection lookups in flight, per event loop and connection id (see ``shared_lookup``).
_lookups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[Any]]] = (
    weakref.WeakKeyDictionary()
)


async def shared_lookup(conn_id: str, lookup: Callable[[], Awaitable[Any]]) -> Any:
    """``lookup()``, shared by every caller on this event loop that asks for ``conn_id`` while it is
    in flight. A triggerer restart brings back a thousand waits at once: they ask the secrets backend
    (or the API server) once, not a thousand times. Nothing is kept once the lookup is done, so a
    credential rotated since is what the next wait sees; a failed lookup fails each caller."""
    loop = asyncio.get_running_loop()
    pending = _lookups.setdefault(loop, {})
    task = pending.get(conn_id)
    if task is None:
        # A task, not the first caller's coroutine: a caller that is cancelled cancels no one else.
        task = pending[conn_id] = loop.create_task(lookup())  # type: ignore[arg-type]

        def done(finished: asyncio.Task[Any]) -> None:
            if pending.get(conn_id) is finished:
                del pending[conn_id]
            if not finished.cancelled():
                finished.exception()  # each caller has its own; unlogged if they all left

        task.add_done_callback(done)
    return await asyncio.shield(task)


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
