"""OAuth 2.0 client credentials (RFC 6749 4.4) for a hook: one token per client and token endpoint,
cached for the process until shortly before it expires, fetched once per process (threads) or event
loop (the triggerer) however many requests need it at once, fetched anew once after a 401.

``ClientCredentials`` is the part of a hook that does this; a service says how to ask (``token_request``)
and what identifies a token (``token_key``). The token answer is never quoted in an error: it may hold
the credential.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_provider_stop import process_state
from airflow_provider_stop.hooks.data import ApiRequest, ApiResponse
from airflow_provider_stop.hooks.errors import MalformedResponseError
from airflow_provider_stop.hooks.transport import HttpTransport
from airflow_provider_stop.hooks.validation import clip

if TYPE_CHECKING:
    import httpx

#: A token is fetched anew at least daily, whatever lifetime the endpoint claims.
MAX_TOKEN_SECONDS = 24 * 3600.0

_tokens: dict[tuple[str, ...], tuple[str, float]] = process_state.shared("oauth tokens", dict)
_tokens_lock = threading.Lock()
_fetch_locks: dict[tuple[str, ...], threading.Lock] = process_state.shared("oauth token locks", dict)
_async_fetch_locks: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, ...], asyncio.Lock]
] = weakref.WeakKeyDictionary()


def oauth_error(response: ApiResponse) -> str:
    """``: error: description`` from an OAuth error body (RFC 6749 5.2), nothing else of it."""
    try:
        body = json.loads(response.text)
    except ValueError:
        return ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return ""
    described = body.get("error_description")
    text = body["error"] + (f": {described}" if isinstance(described, str) else "")
    return f": {clip(text)}"


class ClientCredentials(HttpTransport):
    """``request_auth`` / ``arequest_auth`` / ``invalidate_auth`` from a cached client-credentials token."""

    def uses_client_credentials(self) -> bool:
        """Whether this connection authenticates with client credentials (else: no token here)."""
        raise NotImplementedError

    def token_key(self) -> tuple[str, ...]:
        """What identifies one token in the process cache (endpoint, client, a digest of the secret)."""
        raise NotImplementedError

    def token_request(self) -> ApiRequest:
        """The token request (``authenticate=False``)."""
        raise NotImplementedError

    def parse_token(self, response: ApiResponse) -> tuple[str, float]:
        """(access token, when to fetch a new one); the token is redacted from then on."""
        try:
            body = json.loads(response.text)
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MalformedResponseError(
                f"{self.hook_name}: the token endpoint answered HTTP {response.status_code} without a JSON "
                "access_token (its body is not shown: it may hold a credential)"
            )
        self.redact.add(token)
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        lifetime = (
            min(float(expires_in), MAX_TOKEN_SECONDS)
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0
            else 3600.0
        )
        # Refresh shortly before expiry: a tenth of the lifetime, at most a minute.
        return token, time.time() + lifetime - min(60.0, lifetime / 10)

    def _cached_token(self, key: tuple[str, ...]) -> str | None:
        cached = _tokens.get(key)
        if cached is None or time.time() >= cached[1]:
            return None
        self.redact.add(cached[0])
        return cached[0]

    def request_auth(self) -> Mapping[str, str]:
        if not self.uses_client_credentials():
            return {}
        key = self.token_key()
        with _tokens_lock:
            lock = _fetch_locks.setdefault(key, threading.Lock())
        with lock:  # one fetch per process and client, even when many threads start at once
            token = self._cached_token(key)
            if token is None:
                self.log.info("%s: fetching an access token", self.hook_name)
                _tokens[key] = self.send(self.token_request(), self.parse_token)
                token = _tokens[key][0]
        return {"Authorization": f"Bearer {token}"}

    async def arequest_auth(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        await self.aconfig()
        if not self.uses_client_credentials():
            return {}
        key = self.token_key()
        lock = _async_fetch_locks.setdefault(asyncio.get_running_loop(), {}).setdefault(key, asyncio.Lock())
        async with lock:  # one fetch per event loop (a triggerer runs many waits in one loop)
            token = self._cached_token(key)
            if token is None:
                self.log.info("%s: fetching an access token", self.hook_name)
                _tokens[key] = await self.asend(client, self.token_request(), self.parse_token)
                token = _tokens[key][0]
        return {"Authorization": f"Bearer {token}"}

    def invalidate_auth(self) -> bool:
        if not self.uses_client_credentials():
            return False
        with _tokens_lock:
            _tokens.pop(self.token_key(), None)
        return True
