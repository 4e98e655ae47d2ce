"""The transport: sends a hook's request within its bounds (``bounds``), paced (``pacing``, and across
processes ``shared_limit``), on the loop's shared client (``client_pool``), retried (``retrying``), and
passes every error through the hook's redactor (``redaction``).

Nothing here imports an HTTP library at module level.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow_provider_stop.hooks import bounds, shared_limit
from airflow_provider_stop.hooks.client_pool import request_slots, shared_async_client
from airflow_provider_stop.hooks.data import ApiRequest, ApiResponse, ClientConfig
from airflow_provider_stop.hooks.errors import (
    InvalidInputError,
    RateLimitedError,
    RequestDeadlineError,
    ResponseTooLargeError,
    ServiceUnavailableError,
    StopProviderError,
)
from airflow_provider_stop.hooks.redaction import Redactor
from airflow_provider_stop.hooks.retrying import RetrySettings
from airflow_provider_stop.hooks.shared_limit import RateLimit, host_of

if TYPE_CHECKING:
    import httpx
    import requests
    from airflow.sdk.types import Logger

T = TypeVar("T")
_COUNTING = threading.Lock()


class HttpTransport:
    """
    Sends a hook's ``ApiRequest`` and returns its ``ApiResponse``: with ``requests`` on the worker and
    with the event loop's shared ``httpx`` client in the triggerer. Every request has a total deadline
    (the hook's ``timeout``, never past the wait's deadline) and a cap on the body it reads, never
    follows a redirect, is paced, retried on transient failures only (tenacity), sent once more with
    fresh credentials after a 401 when the hook can get them, and every error it raises has passed
    the hook's redactor.

    ``StopServiceHook`` is built on it; the methods it calls back (``config``, ``describe``,
    ``raise_for_response``, ``request_auth``, ...) are the hook's, declared here for type checking.
    """

    hook_name: ClassVar[str]
    conn_type: ClassVar[str]
    requests_per_second: ClassVar[float | None]
    request_timeout: float
    rate_limit_storage: str
    rate_limit_storage_timeout: float
    max_response_bytes: int
    retry: RetrySettings
    redact: Redactor
    _session: requests.Session | None
    #: HTTP exchanges this hook sent (every attempt and page), for metrics.
    requests_sent: int = 0
    _config: ClientConfig | None

    if TYPE_CHECKING:

        @property
        def log(self) -> Logger: ...

        @property
        def config(self) -> ClientConfig: ...

        async def aconfig(self) -> ClientConfig: ...

        def describe(self, request: ApiRequest) -> str: ...

        def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None: ...

        def request_auth(self) -> Mapping[str, str]: ...

        async def arequest_auth(self, client: httpx.AsyncClient) -> Mapping[str, str]: ...

        def invalidate_auth(self) -> bool: ...

        def observe_response(self, response: ApiResponse) -> None: ...

        def budget_wait(self, request: ApiRequest) -> float: ...

    def get_conn(self) -> requests.Session:
        """A pooled ``requests`` session (redirects are never followed) whose connections a request's
        deadline can end."""
        if self._session is None:
            import requests

            session = requests.Session()
            adapter = bounds.bounded_adapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    @asynccontextmanager
    async def async_client(self) -> Any:
        """The event loop's shared ``httpx.AsyncClient`` for the host: a triggerer running a thousand
        waits keeps one connection pool a host instead of one a wait, and one TLS context (30 to 60 ms
        to build) for all hosts with the same ``verify`` setting."""
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

    def _deadline_error(self, request: ApiRequest, by_wait: bool) -> RequestDeadlineError:
        limit = f"its request_timeout of {self.request_timeout:g}s passed"
        why = "the wait's deadline came" if by_wait else limit
        return RequestDeadlineError(
            self.redact(
                f"{self.hook_name}: {request.method} {self.describe(request)} did not finish: {why} "
                "while the service was still answering"
            ),
            target_id=request.target_id,
        )

    def _too_large_error(self, request: ApiRequest, status: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            self.redact(
                f"{self.hook_name}: {request.method} {self.describe(request)} -> HTTP {status}: the answer "
                f"is larger than max_response_bytes ({self.max_response_bytes}); it was not read further "
                "(raise [stop_provider] max_response_bytes or the hook's max_response_bytes)"
            ),
            target_id=request.target_id,
            status_code=status,
        )

    # ---- pacing -----------------------------------------------------------------------------
    def rate_limit(self, request: ApiRequest) -> RateLimit | None:
        """The documented rate ``request`` counts against and whose account it is (None: no limit).
        Default: every request, at the ``requests_per_second`` class attribute or connection setting,
        for the account the config's ``account`` setting names (never a secret: digest a key)."""
        config = self._config
        if config is None:
            return None
        rate = config.settings.get("requests_per_second", self.requests_per_second)
        if not rate:
            return None
        account = str(config.settings.get("account", ""))
        return RateLimit(self.conn_type, host_of(config.base_url), account, float(rate))

    def _pace(self, request: ApiRequest) -> None:
        """Before sending: the service's reported budget, the process's pace, the account's shared one."""
        if (pause := self.budget_wait(request)) > 0:
            time.sleep(pause)
        if (limit := self.rate_limit(request)) is not None:
            shared_limit.pace(limit, self.rate_limit_storage, self.rate_limit_storage_timeout, self.log)

    async def _apace(self, request: ApiRequest) -> None:
        if (pause := self.budget_wait(request)) > 0:
            await asyncio.sleep(pause)
        if (limit := self.rate_limit(request)) is not None:
            storage, timeout = self.rate_limit_storage, self.rate_limit_storage_timeout
            await shared_limit.apace(limit, storage, timeout, self.log)

    def _judge(self, request: ApiRequest, response: ApiResponse) -> None:
        """``raise_for_response``; a rate-limit answer slows this process's pace (another process, or
        another client of the account, spent it), any other answer lets it recover."""
        limit = self.rate_limit(request)
        try:
            self.raise_for_response(request, response)
        except RateLimitedError:
            if limit is not None and shared_limit.rate_limited(limit):
                self.log.warning(
                    "%s: rate limited; this process now paces %s at %.2g requests a second",
                    self.hook_name,
                    limit.scope,
                    shared_limit.current_pace(limit),
                )
            raise
        if limit is not None:
            shared_limit.answered(limit)

    def _send_once(self, request: ApiRequest) -> ApiResponse:
        """One request; a 401 is answered once with fresh credentials when the hook can get them."""
        response = self._exchange(request)
        if self._renewed_credentials(request, response):
            response = self._exchange(request)
        self._judge(request, response)
        return response

    def _call(self, config: ClientConfig, request: ApiRequest, headers: Mapping[str, str]) -> dict[str, Any]:
        """What both HTTP libraries are asked: method, URL, query, body, headers and the timeout."""
        return {
            "method": request.method,
            "url": self._url(config, request),
            "params": self._params(config, request),
            "json": request.json,
            "data": request.form,
            "headers": dict(headers),
            "timeout": self.request_timeout,
        }

    def _renewed_credentials(self, request: ApiRequest, response: ApiResponse) -> bool:
        """After a 401 to an authenticated request: True when the hook dropped a cached credential,
        so the request goes once more with a fresh one."""
        if response.status_code == 401 and request.authenticate and self.invalidate_auth():
            self.log.info("%s: HTTP 401 with a cached token; retrying once with a new one", self.hook_name)
            return True
        return False

    def _answer(self, status: int, headers: Any, text: str) -> ApiResponse:
        """The HTTP library's response as plain data; the hook reads its bookkeeping headers."""
        response = ApiResponse(status, {k.lower(): v for k, v in headers.items()}, text)
        self.observe_response(response)
        return response

    def _counted(self) -> None:
        with _COUNTING:
            self.requests_sent += 1

    def _exchange(self, request: ApiRequest) -> ApiResponse:
        import requests

        self._counted()
        config = self.config
        headers = {**self._headers(config, request), **(self.request_auth() if request.authenticate else {})}
        self._pace(request)
        deadline, by_wait = bounds.request_deadline(self.request_timeout)
        session = self.get_conn()
        with bounds.Guard(deadline) as guard:
            try:
                with session.request(
                    **self._call(config, request, headers),
                    verify=config.verify,
                    allow_redirects=False,
                    stream=True,
                ) as resp:
                    content = bounds.read_capped(
                        resp.iter_content(65536), self.max_response_bytes, resp.headers.get("content-length")
                    )
                    status, charset = resp.status_code, resp.encoding
                    resp_headers = resp.headers
                if guard.expired:  # a body read until the connection closed may end early, not fail
                    raise self._deadline_error(request, by_wait)
            except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError) as exc:
                if guard.expired:
                    raise self._deadline_error(request, by_wait) from None
                raise self._request_error(request, exc) from None
            except requests.RequestException as exc:
                if guard.expired:
                    raise self._deadline_error(request, by_wait) from None
                raise self._transport_error(request, exc) from None
        if content is None:
            raise self._too_large_error(request, status)
        return self._answer(status, resp_headers, bounds.decode(content, charset))

    async def _asend_once(self, client: httpx.AsyncClient, request: ApiRequest) -> ApiResponse:
        response = await self._aexchange(client, request)
        if self._renewed_credentials(request, response):
            response = await self._aexchange(client, request)
        self._judge(request, response)
        return response

    async def _aexchange(self, client: httpx.AsyncClient, request: ApiRequest) -> ApiResponse:
        import httpx

        self._counted()
        config = await self.aconfig()
        auth = await self.arequest_auth(client) if request.authenticate else {}
        headers = {**self._headers(config, request), **auth}
        await self._apace(request)
        deadline, by_wait = bounds.request_deadline(self.request_timeout)
        call = self._call(config, request, headers)
        try:
            async with request_slots(client) as lane:
                status, resp_headers, content, charset = await asyncio.wait_for(
                    self._aread(lane, call), max(0.0, deadline - time.time())
                )
        except asyncio.TimeoutError:
            raise self._deadline_error(request, by_wait) from None
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL, ValueError) as exc:
            raise self._request_error(request, exc) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(request, exc) from None
        if content is None:
            raise self._too_large_error(request, status)
        if len(content) > bounds.OFF_LOOP_BYTES:
            text = await asyncio.to_thread(bounds.decode, content, charset)
        else:
            text = bounds.decode(content, charset)
        return self._answer(status, resp_headers, text)

    async def _aread(self, lane: Any, call: Mapping[str, Any]) -> tuple[int, Any, bytes | None, str | None]:
        """Status, headers, the body (None past the cap) and its charset, read as a stream."""
        async with lane.stream(**call) as resp:
            content = await bounds.aread_capped(
                resp.aiter_bytes(65536), self.max_response_bytes, resp.headers.get("content-length")
            )
            return resp.status_code, resp.headers, content, resp.charset_encoding

    def _spent(self, exc: StopProviderError) -> StopProviderError:
        """The error as it leaves ``send``: redacted, and marked as retried already."""
        exc.retries_spent = True  # type: ignore[attr-defined]
        return self.redact.error(exc)

    # ---- a request in another form: extension points (DataSift's two stop forms) ----------------
    def alternative_request(self, request: ApiRequest, error: StopProviderError) -> ApiRequest | None:
        """Another form of a refused request, sent once when the refusal may mean "not this form";
        default: none."""
        return None

    def both_refused(
        self,
        first: ApiRequest,
        first_error: StopProviderError,
        second: ApiRequest,
        second_error: StopProviderError,
    ) -> StopProviderError:
        """The error to raise when the alternative was refused too; default: the first."""
        return first_error

    def request_answered(
        self, request: ApiRequest, refused: tuple[ApiRequest, StopProviderError] | None
    ) -> None:
        """Called after a 2xx answer; ``refused`` is the request refused before this alternative."""

    def send(self, request: ApiRequest, parse: Callable[[ApiResponse], T] | None = None) -> Any:
        """
        Send with retries on transient failures only; a 4xx that cannot change is raised at once.

        ``parse`` runs inside the retry, so a malformed body is retried too: pass it for reads only,
        never for a stop, which must not be sent again once the service has answered it.
        """
        try:
            result = self._send_retrying(request, parse)
        except StopProviderError as first_error:
            other = self.alternative_request(request, first_error)
            if other is None:
                raise
            try:
                result = self._send_retrying(other, parse)
            except StopProviderError as second_error:
                raise self.both_refused(request, first_error, other, second_error) from None
            self.request_answered(other, (request, first_error))
            return result
        self.request_answered(request, None)
        return result

    async def asend(
        self, client: httpx.AsyncClient, request: ApiRequest, parse: Callable[[ApiResponse], T] | None = None
    ) -> Any:
        try:
            result = await self._asend_retrying(client, request, parse)
        except StopProviderError as first_error:
            other = self.alternative_request(request, first_error)
            if other is None:
                raise
            try:
                result = await self._asend_retrying(client, other, parse)
            except StopProviderError as second_error:
                raise self.both_refused(request, first_error, other, second_error) from None
            self.request_answered(other, (request, first_error))
            return result
        self.request_answered(request, None)
        return result

    def _send_retrying(self, request: ApiRequest, parse: Callable[[ApiResponse], T] | None) -> Any:
        import tenacity

        try:
            for attempt in tenacity.Retrying(**self.retry.tenacity_kwargs(self._on_retry)):
                with attempt:
                    response = self._send_once(request)
                    return parse(response) if parse else response
        except StopProviderError as exc:
            raise self._spent(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _asend_retrying(
        self, client: httpx.AsyncClient, request: ApiRequest, parse: Callable[[ApiResponse], T] | None
    ) -> Any:
        import tenacity

        try:
            async for attempt in tenacity.AsyncRetrying(**self.retry.tenacity_kwargs(self._on_retry)):
                with attempt:
                    response = await self._asend_once(client, request)
                    if parse is None:
                        return response
                    if len(response.text) > bounds.OFF_LOOP_BYTES:  # a large body: not on the loop
                        return await asyncio.to_thread(parse, response)
                    return parse(response)
        except StopProviderError as exc:
            raise self._spent(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover
