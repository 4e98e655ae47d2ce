"""``StopServiceHook``: the contract a service hook fills in, and the stop / status / wait operations
built on it.

The machinery it is made of lives in modules named for it: ``transport`` (sending one request within
its bounds), ``error_mapping`` (answers to named errors), ``batching`` (many targets, one error naming
every failure), ``listing`` (paged lists and the status reads that go through them), ``waiting`` (the
wait loop), ``connection`` (reading an Airflow connection), ``redaction``, ``bounds``, ``pacing``
(one process's pace), ``shared_limit`` (an account's limit across processes), ``client_pool`` and
``retrying``; the data in ``data`` and ``errors``.

Nothing heavy is imported at module level.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_stop._compat import BaseHook
from airflow_provider_stop.hooks import bounds, waiting
from airflow_provider_stop.hooks.connection import (
    check_credentials,
    extra_read_ahead,
    shared_lookup,
    warn_if_insecure,
)
from airflow_provider_stop.hooks.data import ApiRequest, ApiResponse, ClientConfig, StopAck, TargetStatus
from airflow_provider_stop.hooks.errors import (
    InvalidInputError,
    MalformedResponseError,
    StopProviderError,
    TargetNotRunningError,
    collect,
)
from airflow_provider_stop.hooks.listing import ListReads
from airflow_provider_stop.hooks.redaction import Redactor, credential_values, url_without_userinfo
from airflow_provider_stop.hooks.retrying import RetrySettings
from airflow_provider_stop.hooks.shared_limit import configured_storage, limiter
from airflow_provider_stop.hooks.validation import clip, validate_positive_number, validate_target_id

if TYPE_CHECKING:
    import httpx
    import requests

    from airflow_provider_stop._compat import Connection


class StopServiceHook(ListReads, BaseHook):
    """
    A service's connection, auth and API, and the generic stop / status / wait machinery.

    A service hook is declared ``class XHook(StopServiceHook, service="x")``: its connection
    attributes (``conn_name_attr``, ``default_conn_name``, ``conn_type``, ``hook_name``) and
    ``target_param`` come from the service's entry in ``airflow_provider_stop.services``. It then
    describes the API as plain functions of data (no I/O), shared by the sync path (``requests``, on
    the worker) and the async path (``httpx``, in the triggerer and in DeadlineAlert notifiers).

    What a service hook must, may and must not override is ``hooks/contract.py``
    (``EXTENSION_POINTS``, ``SYNC_ASYNC_PAIRS``), checked by ``tests/test_hook_contract.py``. Never put
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
    #: A documented request rate; every request of the process to one account is paced to it.
    requests_per_second: ClassVar[float | None] = None
    #: Extras of the connection that hold credentials (checked like the login and password).
    credential_extras: ClassVar[tuple[str, ...]] = ()

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
            services.register_class(service, "hook", cls)

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        request_timeout: float = 30.0,
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
        self.request_timeout = validate_positive_number(request_timeout, "request_timeout") or 30.0
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
        #: ``[stop_provider] rate_limit_storage`` and its timeout ("": each process paces itself alone).
        self.rate_limit_storage, self.rate_limit_storage_timeout = configured_storage()
        if self.rate_limit_storage:  # its client is made in the background while the hook starts
            limiter(self.rate_limit_storage, self.rate_limit_storage_timeout)
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

    def build_status_request(self, target_id: str) -> ApiRequest:
        raise NotImplementedError

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        raise NotImplementedError

    def build_test_request(self) -> ApiRequest:
        """A cheap authenticated call for ``test_connection``."""
        raise NotImplementedError

    def budget_wait(self, request: ApiRequest) -> float:
        """Seconds to wait before sending for a budget the service reports as it goes (DataSift's
        credits); the documented request rate is ``rate_limit``'s. Default: none."""
        return 0.0

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

    # ---- operations ------------------------------------------------------------------------
    def validate_target(self, target_id: Any) -> str:
        """Reject bad ids before any request; services may add their own rules."""
        return validate_target_id(target_id, self.target_param)

    def refused_as_not_running(self, error: StopProviderError) -> bool:
        """True when a refused stop may mean the target is not running (or already stopping): a status
        read then decides, through ``settle_refusal``. In a batch, only a refusal naming its target."""
        return False

    def settle_refusal(
        self, error: StopProviderError, status: TargetStatus, options: Mapping[str, Any]
    ) -> StopAck | dict[str, Any]:
        """What a refused stop means once the target's status is read: an ack (already stopped, or a
        stop under way), options to send the stop once more with (single stops only), or raise
        ``error``. Default: a target in its stopped state needs no stop; anything else is refused."""
        if not status.stopped:
            raise error
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
            return self._refuse_stopped(
                self._one_of(target_id, self._stop_chunk([target_id], options)), fail_if_not_running
            )
        try:
            response = self.send(self.build_stop_request(target_id, options))
        except StopProviderError as exc:
            if self.refused_as_not_running(exc):
                settled = self.settle_refusal(exc, self.get_status(target_id), options)
            else:
                settled = self._fallback_or_raise(exc, options)
            if isinstance(settled, StopAck):
                return self._refuse_stopped(settled, fail_if_not_running)
            options = settled
            response = self.send(self.build_stop_request(target_id, options))
        return self._accepted(self._read_ack(target_id, response, options))

    async def astop(
        self, client: httpx.AsyncClient, target_id: str, *, fail_if_not_running: bool = False, **options: Any
    ) -> StopAck:
        target_id = self.validate_target(target_id)
        if fail_if_not_running:
            self._check_running(await self.aget_status(client, target_id))
        if self.stop_batch_size:
            acks = await self._astop_chunk(client, [target_id], options)
            return self._refuse_stopped(self._one_of(target_id, acks), fail_if_not_running)
        try:
            response = await self.asend(client, self.build_stop_request(target_id, options))
        except StopProviderError as exc:
            if self.refused_as_not_running(exc):
                settled = self.settle_refusal(exc, await self.aget_status(client, target_id), options)
            else:
                settled = self._fallback_or_raise(exc, options)
            if isinstance(settled, StopAck):
                return self._refuse_stopped(settled, fail_if_not_running)
            options = settled
            response = await self.asend(client, self.build_stop_request(target_id, options))
        return self._accepted(self._read_ack(target_id, response, options))

    def _refuse_stopped(self, ack: StopAck, fail_if_not_running: bool) -> StopAck:
        """An already stopped target, found only once the stop was refused, fails when asked to."""
        if fail_if_not_running and ack.already_stopped:
            raise TargetNotRunningError(
                f"{self.hook_name}: {self.target_noun} {ack.target_id!r} is not running ({ack.message}) "
                "and fail_if_not_running=True",
                target_id=ack.target_id,
            )
        return ack

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

    def _fallback_or_raise(self, exc: StopProviderError, options: Mapping[str, Any]) -> dict[str, Any]:
        alternative = self.fallback_options(exc, options)
        if alternative is None:
            raise exc
        self.log.warning("%s: %s; retrying the stop with %s", self.hook_name, exc, alternative)
        return alternative

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

    def stop_all_targets(
        self, target_ids: Sequence[str], *, filtered: bool = True, **options: Any
    ) -> dict[str, StopAck]:
        """Stop everything ``running_targets`` listed, each by id. A service with a service-wide stop
        call may override this to use it, but only when ``filtered`` is False: a filter (a name
        pattern, a list filter) must never widen into a stop of everything on the server."""
        return self.stop_many(target_ids, **options)

    # ---- batches: every target is tried, then one error names all that failed --------------

    def stop_many(
        self, target_ids: Sequence[str], *, fail_if_not_running: bool = False, **options: Any
    ) -> dict[str, StopAck]:
        """Stop every target (in chunks where the service takes many ids); then raise one error
        naming all that failed."""
        try:
            if self.stop_batch_size and not fail_if_not_running:
                return collect("stop", self._stop_in_chunks(target_ids, options))
            results = self._map(
                lambda t: self.stop(t, fail_if_not_running=fail_if_not_running, **options), target_ids
            )
            return collect("stop", results)
        finally:
            self.after_stops(target_ids)

    async def astop_many(
        self,
        client: httpx.AsyncClient,
        target_ids: Sequence[str],
        *,
        fail_if_not_running: bool = False,
        **options: Any,
    ) -> dict[str, StopAck]:
        try:
            if self.stop_batch_size and not fail_if_not_running:
                return collect("stop", await self._astop_in_chunks(client, target_ids, options))
            results = await self._amap(
                lambda t: self.astop(client, t, fail_if_not_running=fail_if_not_running, **options),
                target_ids,
            )
            return collect("stop", results)
        finally:
            self.after_stops(target_ids)

    # ---- status reads: by id, or one list read for many ids ------------------------------

    def get_statuses(self, target_ids: Sequence[str]) -> dict[str, TargetStatus]:
        return collect("status check", self.read_statuses(target_ids))

    async def aget_statuses(
        self, client: httpx.AsyncClient, target_ids: Sequence[str]
    ) -> dict[str, TargetStatus]:
        return collect("status check", await self.aread_statuses(client, target_ids))

    # ---- waiting ---------------------------------------------------------------------------
    def wait_until_stopped(
        self, target_ids: Sequence[str], *, poll_interval: float, deadline: float
    ) -> dict[str, TargetStatus]:
        """Poll until every target is stopped or ``deadline`` (epoch seconds) passes."""
        try:
            return waiting.wait(
                self.get_statuses, time.sleep, self.wait_progress(target_ids, deadline), poll_interval
            )
        finally:
            self.after_wait(target_ids)

    async def await_until_stopped(
        self, client: httpx.AsyncClient, target_ids: Sequence[str], *, poll_interval: float, deadline: float
    ) -> dict[str, TargetStatus]:
        """``wait_until_stopped`` on the event loop (the trigger runs the same loop with its board's
        read and pause)."""
        try:
            return await waiting.await_stopped(
                lambda ids: self.aget_statuses(client, ids),
                progress=self.wait_progress(target_ids, deadline),
                poll_interval=poll_interval,
            )
        finally:
            self.after_wait(target_ids)

    def wait_progress(self, target_ids: Sequence[str], deadline: float) -> waiting.WaitProgress:
        """A wait's bookkeeping, logging in this hook's words."""
        return waiting.WaitProgress(self.log, self.hook_name, self.target_noun, target_ids, deadline)

    def after_wait(self, target_ids: Sequence[str]) -> None:
        """Called once a wait on ``target_ids`` ends, however it ends (e.g. to log a budget)."""

    def after_stops(self, target_ids: Sequence[str]) -> None:
        """Called once ``stop_many`` / ``astop_many`` ends, however it ends."""

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
