"""Reading an Airflow connection: its extras, its base URL, the settings every service shares, and one
lookup shared by the waits that ask for it together."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import threading
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from airflow_provider_stop import process_state
from airflow_provider_stop.hooks.data import ClientConfig
from airflow_provider_stop.hooks.errors import InvalidInputError
from airflow_provider_stop.hooks.redaction import url_without_userinfo
from airflow_provider_stop.hooks.validation import _CONTROL_CHARS

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
        raise InvalidInputError(
            f"connection {conn.conn_id!r} host must be an http(s) URL, got {url_without_userinfo(host)!r}"
        )
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


#: The connection fields that hold credentials (or go into a credential header, like a login).
CREDENTIAL_FIELDS = ("login", "password")


def check_credentials(conn: Connection, extra_fields: tuple[str, ...] = ()) -> None:
    """Credentials with a control character or surrounding white space are refused when the connection
    is read, naming the field and never the value: a key read from a mounted secret file usually ends
    in a newline, and the HTTP libraries quote such a header value in their own error."""
    extra = connection_extra(conn) if extra_fields else {}
    fields = [(name, getattr(conn, name, None)) for name in CREDENTIAL_FIELDS]
    fields += [(f"extra {name!r}", extra.get(name)) for name in extra_fields]
    for name, value in fields:
        if not isinstance(value, str) or not value:
            continue
        if _CONTROL_CHARS.search(value) or value != value.strip():
            what = (
                "a control character" if _CONTROL_CHARS.search(value.strip()) else "surrounding white space"
            )
            raise InvalidInputError(
                f"connection {conn.conn_id!r}: the {name} field has {what} (a value read from a file often "
                "ends in a newline); set it without"
            )


_warned: set[tuple[str, str]] = process_state.shared("insecure connections warned", set)
_warned_lock = threading.Lock()
log = logging.getLogger(__name__)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_insecure(conn_id: str, config: ClientConfig, urls: tuple[str, ...] = ()) -> None:
    """Plain http to a host other than loopback, and TLS verification turned off, are allowed (a
    proxy in a trusted network, a test server) but logged once per connection and process."""
    notes = []
    for url in (config.base_url, *urls):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "http" and not _loopback(parts.hostname):
            notes.append(("http", f"sends its credentials over plain http to {parts.hostname!r}"))
    if config.verify is False:
        notes.append(("verify", "does not verify the service's TLS certificate (extra verify=false)"))
    for kind, note in notes:
        with _warned_lock:
            if (conn_id, kind) in _warned:
                continue
            _warned.add((conn_id, kind))
        log.warning(
            "connection %r %s: anyone on the network path can read or change its requests", conn_id, note
        )
