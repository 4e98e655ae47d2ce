"""Amperity workflow runs: stop a run and wait until it is canceled.

Sources: https://docs.amperity.com/api/ (repository ``amperity/amperity-docs``: the OpenAPI spec
``downloads/openapi/control-plane-2024-04-01-openapi.json``, operations ``stop-workflow``,
``get-workflow`` and ``list-workflows``; ``amperity_api/source/authentication.rst`` for OAuth).

Every call carries ``amperity-tenant`` and ``api-version``. Auth is a bearer token, either pasted from
the Amperity UI or obtained with OAuth client credentials, cached per process until shortly before it
expires and fetched anew once on a 401. Requests are paced below the documented 10 per second.

A sandbox (tenant id ``<tenant>-sb-<digits>``) is reached on its production tenant's hosts:
``amperity_api/source/base_url.rst``, "Base URL and sandboxes": "The base URL for a sandbox is the same
as the base URL for production"; its own id goes only in the tenant headers.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_stop.hooks.base import StopServiceHook
from airflow_provider_stop.hooks.connection import (
    base_url_from_connection,
    connection_extra,
    rate_from_extra,
    verify_from_extra,
)
from airflow_provider_stop.hooks.data import (
    ApiRequest,
    ApiResponse,
    ClientConfig,
    ListWalk,
    StopAck,
    TargetStatus,
    quote_segment,
)
from airflow_provider_stop.hooks.errors import (
    AuthenticationError,
    InvalidInputError,
    MalformedResponseError,
    StopProviderError,
    StopRejectedError,
)
from airflow_provider_stop.hooks.listing import ListPager
from airflow_provider_stop.hooks.oauth import ClientCredentials, oauth_error
from airflow_provider_stop.hooks.redaction import url_without_userinfo
from airflow_provider_stop.hooks.validation import answer_id, ascii_int, clip, optional_text, shown

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Connection

API_VERSION = "2024-04-01"
REGION_HOSTS = {
    "aws": "https://app.amperity.com/api",
    "azure": "https://{tenant}.amperity.com/api",
    "australia": "https://app-aws-apse2.amperity.com/api",
}
AUTH_TYPES = ("token", "client_credentials")
TOKEN_PATH = "/v0/oauth2/token"  # noqa: S105 - a path, not a secret
#: The documented token request goes to the tenant's own host ("Get OAuth credentials" in
#: https://docs.amperity.com/api/authentication.html: ``POST /api/v0/oauth2/token``, ``Host:
#: acme.amperity.com``); the dialog that shows the client id and secret also shows this endpoint.
TENANT_TOKEN_URL = "https://{tenant}.amperity.com/api" + TOKEN_PATH
#: Shared API hosts (one per region, tenant in a header): a token endpoint there is undocumented.
SHARED_HOSTS = frozenset({"app.amperity.com", "app-aws-apse2.amperity.com"})
#: A tenant goes into a host name (Azure) and a header: one DNS label, nothing else (RFC 1123).
_TENANT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
#: A sandbox's tenant id: the production tenant's, ``-sb-`` and digits (``socktown-sb-12345`` in
#: ``base_url.rst``, "Base URL and sandboxes").
_SANDBOX = re.compile(r"^(?P<tenant>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)-sb-[0-9]+$", re.IGNORECASE)
_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2}|unstable)$")
_SEPARATORS = re.compile(r"[\s_-]+")

#: Not stopped yet (the documents disagree on spellings; compared after ``normalize_state``).
RUNNING_STATES = frozenset(
    {"scheduled", "running", "paused", "canceling", "cancelling", "started", "in progress", "stopping"}
    | {"running with failures"}
)
#: Terminal because a stop (ours or someone's) canceled it.
CANCELED_STATES = frozenset({"canceled", "cancelled", "stopped"})
#: Terminal on its own.
FINISHED_STATES = frozenset({"succeeded", "failed"})
#: How far back stop-all lists runs (by ``created_at``) unless told otherwise: a week.
DEFAULT_LOOKBACK_SECONDS = 7 * 24 * 3600.0
#: At most a year: the list is read page by page, every run in the window is classified locally.
MAX_LOOKBACK_SECONDS = 366 * 24 * 3600.0
MAX_LIST_PAGES = 10_000
#: Runs a list page asks for (``limit``; the spec gives no maximum, the docs' examples use 100).
LIST_PAGE_SIZE = 100
#: The spec's defaults for the list's ``state`` and ``type`` filters (``list-workflows``: ``default``
#: equal to each ``example``; the list page says only "Optional"). See ``AmperityHook.list_pages``.
SPEC_DEFAULT_STATE = "succeeded"
SPEC_DEFAULT_TYPE = "courier.group/run"
#: The list's documented ``state`` filter values for a run not yet ended (the list page: Started, In
#: progress, Stopping, Stopped, Succeeded), in the lower case of the spec's one wire example
#: (``succeeded``). Sent only when the server may have applied the ``state`` default.
RUNNING_STATE_FILTERS = ("started", "in progress", "stopping")
#: Every workflow type whose wire value a public source shows: the spec's ``type`` example
#: (``courier.group/run``), ``Workflow.type`` and the stop page's example (``campaign.send``), the get
#: page's overview example (``campaign.fetch``), the get page's verbose and the list page's 200
#: examples (``amperity.orchestration.orchestration/run``). Sent only when the server may have applied
#: the ``type`` default.
DOCUMENTED_TYPES = (
    "courier.group/run",
    "campaign.send",
    "campaign.fetch",
    "amperity.orchestration.orchestration/run",
)


def normalize_state(state: str) -> str:
    """``Running-With-Failures`` / ``running_with_failures`` -> ``running with failures``."""
    return _SEPARATORS.sub(" ", state.strip().lower())


def validate_lookback(value: Any, where: str = "lookback") -> float:
    """Seconds (a number or a ``timedelta``), positive and at most a year; checked before any request."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds <= MAX_LOOKBACK_SECONDS
    ):
        raise InvalidInputError(
            f"{where} must be a positive number of seconds or a timedelta of at most 366 days, got {value!r}"
        )
    return float(seconds)


def iso_utc(epoch: float) -> str:
    """``2026-11-23T10:00:00Z``: the ISO-8601 UTC form the list filters take."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def production_tenant(tenant: str) -> str:
    """The tenant whose hosts serve ``tenant``, lower-cased for a host name: a sandbox's
    (``socktown-sb-12345``) is its production tenant's (``socktown``); any other tenant is its own."""
    match = _SANDBOX.fullmatch(tenant)
    return (match.group("tenant") if match else tenant).lower()


def default_token_url(base_url: str, tenant: str) -> str:
    """The production tenant's own host, as documented (a sandbox id is never a host name); an
    explicit host that is not a shared one is kept (a proxy, an emulator, or a tenant host)."""
    if urllib.parse.urlsplit(base_url).hostname in SHARED_HOSTS:
        return TENANT_TOKEN_URL.format(tenant=production_tenant(tenant))
    return base_url + TOKEN_PATH


def validate_tenant(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _TENANT.fullmatch(value):
        raise InvalidInputError(
            f"{where}: the Amperity tenant must be one host name label (letters, digits and inner '-', "
            f"at most 63), e.g. 'acme' or 'acme-sb-12345'; got {value!r}"
        )
    return value


class AmperityHook(ClientCredentials, StopServiceHook, service="amperity"):
    """
    Talks to the Amperity API.

    Connection: extra ``tenant`` (required; a sandbox's id, e.g. ``acme-sb-12345``, for a sandbox),
    sent as ``amperity-tenant`` (and ``X-Amperity-Tenant`` to the token endpoint) as given. The API
    host comes from ``region``: ``aws`` (default) ``https://app.amperity.com/api``, ``azure``
    ``https://<production tenant>.amperity.com/api``, ``australia``
    ``https://app-aws-apse2.amperity.com/api``; or from ``host`` (a full API URL, ``/api`` added when
    it has no path), which wins. A sandbox uses its production tenant's hosts (``acme`` for
    ``acme-sb-12345``): its id never becomes a host name. ``auth_type`` ``token``: the password is an
    access token from Settings → Security → API keys. ``client_credentials``: login is the client id,
    password the client secret, extra ``token_url`` the "Token endpoint" the same dialog shows
    (Settings → Security → API keys → Get OAuth credentials), which wins; by default the documented
    ``https://<production tenant>.amperity.com/api/v0/oauth2/token`` (the host's own when ``host`` is
    set to something else than a shared region host). Extras ``api_version`` (``2024-04-01``) and
    ``requests_per_second`` (8; the documented limit is 10).

    Stop-all lists runs created in the last ``lookback`` seconds (the documented ``created_from``
    filter) and classifies each run locally; it sends the list's ``state`` filter only when the
    server may have applied the spec's defaults (see ``list_pages``).
    """

    target_noun = "workflow run"
    #: At 8 requests a second more parallel requests only queue at the pacer.
    max_concurrency = 4
    requests_per_second = 8.0

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        workflow_type: str | None = None,
        lookback: float | timedelta = DEFAULT_LOOKBACK_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id, **kwargs)
        #: Stop-all lists only runs of this workflow type (the API's ``type`` filter).
        self.workflow_type = workflow_type
        #: Stop-all lists only runs created this many seconds ago or later (``created_from``).
        self.lookback = validate_lookback(lookback)

    # ---- connection ------------------------------------------------------------------------
    def build_config(self, conn: Connection) -> ClientConfig:
        extra = connection_extra(conn)
        where = f"connection {conn.conn_id!r}"
        tenant = validate_tenant(extra.get("tenant"), where)
        region = str(extra.get("region") or "aws").lower()
        if region not in REGION_HOSTS:
            raise InvalidInputError(f"{where}: region must be one of {sorted(REGION_HOSTS)}, got {region!r}")
        if conn.host:  # an explicit URL wins over the region
            base_url = base_url_from_connection(conn, None)
            if not urllib.parse.urlsplit(base_url).path:
                base_url += "/api"
        else:  # a sandbox's base URL "is the same as the base URL for production" (base_url.rst)
            base_url = REGION_HOSTS[region].format(tenant=production_tenant(tenant))
        version = str(extra.get("api_version") or API_VERSION)
        if not _API_VERSION.fullmatch(version):
            raise InvalidInputError(f"{where}: api_version must look like {API_VERSION!r}, got {version!r}")
        auth_type = str(extra.get("auth_type") or ("client_credentials" if conn.login else "token"))
        if auth_type not in AUTH_TYPES:
            raise InvalidInputError(f"{where}: auth_type must be one of {AUTH_TYPES}, got {auth_type!r}")
        if not conn.password:
            what = "access token" if auth_type == "token" else "OAuth client secret"
            raise InvalidInputError(f"{where} needs the {what} in its password field")
        headers = {"amperity-tenant": tenant, "api-version": version, "User-Agent": "airflow-provider-stop"}
        settings: dict[str, Any] = {
            "tenant": tenant,
            "account": tenant,
            "auth_type": auth_type,
            "requests_per_second": rate_from_extra(extra, self.requests_per_second, where),
        }
        if auth_type == "token":
            headers["Authorization"] = f"Bearer {conn.password}"
        else:
            if not conn.login:
                raise InvalidInputError(f"{where} needs the OAuth client id in its login field")
            token_url = str(extra.get("token_url") or default_token_url(base_url, tenant))
            parsed = urllib.parse.urlsplit(token_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname or "@" in parsed.netloc:
                raise InvalidInputError(
                    f"{where}: token_url must be an http(s) URL without user info, got "
                    f"{url_without_userinfo(token_url)!r}"
                )
            settings |= {"token_url": token_url, "client_id": conn.login, "client_secret": conn.password}
        return ClientConfig(
            base_url=base_url,
            headers=headers,
            verify=verify_from_extra(extra),
            secrets=(conn.password, f"Bearer {conn.password}"),
            settings=settings,
        )

    def credential_urls(self, config: ClientConfig) -> tuple[str, ...]:
        token_url = config.settings.get("token_url")
        return (token_url,) if isinstance(token_url, str) else ()

    # ---- OAuth client credentials (``hooks.oauth``) ------------------------------------------
    def uses_client_credentials(self) -> bool:
        return bool(self.config.settings["auth_type"] == "client_credentials")

    def token_key(self) -> tuple[str, ...]:
        s = self.config.settings
        digest = hashlib.sha256(f"{s['client_id']}\0{s['client_secret']}".encode()).hexdigest()
        return (s["token_url"], s["tenant"], digest)

    def token_request(self) -> ApiRequest:
        s = self.config.settings
        return ApiRequest(
            "POST",
            "",
            form={
                "grant_type": "client_credentials",
                "client_id": s["client_id"],
                "client_secret": s["client_secret"],
            },
            headers={"X-Amperity-Tenant": s["tenant"]},
            base_url=s["token_url"],
            authenticate=False,
        )

    # ---- errors ----------------------------------------------------------------------------
    def error_details(self, response: ApiResponse) -> tuple[str, str | None]:
        message, code = super().error_details(response)
        try:
            body = response.json()
        except MalformedResponseError:
            return message, code
        if isinstance(body, dict):
            # {"status": 404, "message": ...}; OAuth errors are {"error": ..., "error_description": ...}.
            if body.get("error_description"):
                message = f"{clip(body.get('error'))}: {clip(body['error_description'])}"
            if body.get("request_id"):
                message += f" (request_id {clip(body['request_id'], 80)})"
        return message, code

    def raise_for_response(self, request: ApiRequest, response: ApiResponse) -> None:
        if not request.authenticate and response.status_code in (400, 401, 403):
            raise AuthenticationError(
                self.redact(
                    f"Amperity: the token endpoint refused the client credentials (HTTP "
                    f"{response.status_code}{oauth_error(response)}). Check the client id and secret of "
                    f"connection {self.conn_id!r}."
                ),
                status_code=response.status_code,
            )
        super().raise_for_response(request, response)

    def refused_as_not_running(self, error: StopProviderError) -> bool:
        # Stopping a terminal run: 200 with the run, 400 or 409 are all possible (unconfirmed).
        return isinstance(error, StopRejectedError) and error.status_code in (400, 409)

    # ---- requests and answers --------------------------------------------------------------
    def _run_path(self, target_id: str, *rest: str) -> str:
        return "/".join(["/workflow/runs", quote_segment(target_id), *rest])

    def build_stop_request(self, target_id: str, options: Mapping[str, Any]) -> ApiRequest:
        return ApiRequest("POST", self._run_path(target_id, "stop"), target_id=target_id)

    def parse_stop_response(
        self, target_id: str, response: ApiResponse, options: Mapping[str, Any]
    ) -> StopAck:
        body = response.json()  # unreadable: the base keeps the stop as sent, and the wait decides
        if not isinstance(body, dict):
            raise MalformedResponseError(f"Amperity: the stop answer is not an object: {shown(body)}")
        state = body.get("state")
        if state is None:
            return StopAck(target_id, message="stop accepted")
        if not isinstance(state, str):
            raise MalformedResponseError(
                f"Amperity: the stop answer's state must be a string: {shown(state)}"
            )
        state = clip(state)
        if normalize_state(state) in FINISHED_STATES:
            return StopAck(target_id, accepted=False, already_stopped=True, message=f"run already {state}")
        return StopAck(target_id, message=f"state {state}")

    def build_status_request(self, target_id: str) -> ApiRequest:
        # verbose: the only view with the error object ("Workflow manually stopped").
        return ApiRequest("GET", self._run_path(target_id), params={"view": "verbose"}, target_id=target_id)

    def parse_status_response(self, target_id: str, response: ApiResponse) -> TargetStatus:
        return self._status(target_id, self.json_object(response, f"run {target_id!r}"))

    def _status(self, target_id: str, run: Mapping[str, Any]) -> TargetStatus:
        state = run.get("state")
        if not isinstance(state, str) or not state.strip():
            raise MalformedResponseError(
                f"Amperity: workflow run {target_id!r} has no state (a string), got {shown(state)}"
            )
        state = clip(state)
        normal = normalize_state(state)
        if normal not in RUNNING_STATES | CANCELED_STATES | FINISHED_STATES:
            self.warn_unknown_state(target_id, "state", state)
        details = {k: run[k] for k in ("name", "type", "created_at", "ended_at") if k in run}
        error = run.get("error")
        if isinstance(error, dict):
            details["error"] = None if error.get("message") is None else clip(error["message"])
            details["error_type"] = None if error.get("type") is None else clip(error["type"])
        elif isinstance(error, str):
            details["error"] = clip(error)
        elif error is not None:
            raise MalformedResponseError(
                f"Amperity: workflow run {target_id!r}: error must be an object, got {shown(error)}"
            )
        details["canceled"] = normal in CANCELED_STATES
        return TargetStatus(target_id, state, normal in CANCELED_STATES | FINISHED_STATES, None, details)

    def list_params(
        self,
        token: str | None,
        now: float,
        *,
        with_total: bool = False,
        state: str | None = None,
        workflow_type: str | None = None,
    ) -> dict[str, str]:
        """Only documented list parameters (``list-workflows``): ``limit``, ``created_from``, ``type``,
        ``next_token``, ``with_total``, and ``state`` only when ``list_pages`` must not leave it to the
        server's default."""
        params = {"limit": str(LIST_PAGE_SIZE), "created_from": iso_utc(now - self.lookback)}
        if workflow_type or self.workflow_type:
            params["type"] = workflow_type or self.workflow_type or ""
        if state:
            params["state"] = state
        if token:
            params["next_token"] = token
        if with_total:
            params["with_total"] = "true"
        return params

    def list_scope(self) -> tuple[str, ...]:
        return (self.workflow_type or "", str(self.lookback))

    def list_pages(self, walk: ListWalk) -> ListPager:
        """Runs created within ``lookback`` (optionally of ``workflow_type``), every page; each run's
        state is classified here. A status read asks ``with_total`` on its first page, so it knows how
        many pages follow, and reads a run the list does not show by id.

        Stop-all must also hold if a server applied the spec's defaults (``state`` ``succeeded``,
        ``type`` ``courier.group/run``; unconfirmed: the list page says "Optional", and its ``type``
        tip has the unfiltered list return "workflows (and workflow types)", so a real server most
        likely applies neither). The list is read first without ``state`` (and without ``type`` unless
        ``workflow_type``): one read of every run in the window. Only what it showed tells whether a
        default may have narrowed it: a run that is not ``succeeded`` proves the ``state`` default was
        not applied, a run of another type than ``courier.group/run`` (or an explicit
        ``workflow_type``) the ``type`` default. What is not proved is asked explicitly: the list again
        for each documented state of a run not yet ended (``RUNNING_STATE_FILTERS``), and/or of each
        documented type (``DOCUMENTED_TYPES``), at most 12 more reads, only when the window showed
        nothing but succeeded courier-group runs (or nothing). Under a server that applied the ``type``
        default, a run of a type no public source spells out cannot be listed by any request; nor,
        under the ``state`` default, a run whose state no documented filter value names (``scheduled``
        and ``paused`` may be neither Started nor In progress)."""
        now = time.time()  # one window for every page
        yield from self._list_read(walk, now, with_total=walk.for_status)
        if walk.for_status:
            return
        listed = list(walk.statuses.values())
        state_default = all(normalize_state(s.raw_state or "") == SPEC_DEFAULT_STATE for s in listed)
        type_default = not self.workflow_type and all(
            s.details.get("type") == SPEC_DEFAULT_TYPE for s in listed
        )
        if not (state_default or type_default):
            return
        states: tuple[str | None, ...] = RUNNING_STATE_FILTERS if state_default else (None,)
        types: tuple[str | None, ...] = DOCUMENTED_TYPES if type_default else (None,)
        self.log.info(
            "Amperity: the run list showed %d run(s), %s: reading it again with explicit %s, in case "
            "the server applied the spec's default%s",
            len(listed),
            "none of them running" if listed else "none at all",
            " and ".join(k for k, v in (("state", state_default), ("type", type_default)) if v),
            "s" if state_default and type_default else "",
        )
        for state in states:
            for workflow_type in types:
                yield from self._list_read(walk, now, state=state, workflow_type=workflow_type)

    def _list_read(
        self,
        walk: ListWalk,
        now: float,
        *,
        with_total: bool = False,
        state: str | None = None,
        workflow_type: str | None = None,
    ) -> ListPager:
        """One filtered read of the list, every page (``next_token``)."""
        token: str | None = None
        total: int | None = None
        seen = 0
        for _ in range(MAX_LIST_PAGES):
            params = self.list_params(
                token, now, with_total=with_total and token is None, state=state, workflow_type=workflow_type
            )
            body = yield ApiRequest("GET", "/workflow/runs", params=params), ApiResponse.json
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise MalformedResponseError("Amperity: the workflow run list has no data (a list)")
            statuses = [self._listed(i, r) for i, r in enumerate(body["data"])]
            seen += len(statuses)
            if body.get("total") is not None:
                total = ascii_int(body["total"], "Amperity: the run list's total", maximum=10**9)
            following = optional_text(body.get("next_token"), "Amperity: the run list's next_token")
            left = None if total is None else math.ceil(max(0, total - seen) / LIST_PAGE_SIZE)
            walk.add(statuses, pages_left=left if following else 0)
            if not following:
                return
            if following == token:
                raise MalformedResponseError("Amperity: the run list returned the same next_token twice")
            token = following
        raise MalformedResponseError(f"Amperity: the run list has more than {MAX_LIST_PAGES} pages")

    def _listed(self, index: int, run: Any) -> TargetStatus:
        if not isinstance(run, dict):
            raise MalformedResponseError(
                f"Amperity: the run list's data[{index}] is not an object: {shown(run)}"
            )
        return self._status(answer_id(run.get("id"), f"Amperity: the run list's data[{index}].id"), run)

    def use_listed_status(self, status: TargetStatus) -> bool:
        """Whether list items carry the error object is unconfirmed (the list page's 200 example has
        one, the pagination page's example none; ``view=verbose`` always shows it). A run the list
        shows failed without one is read by id once, for the error that says why; a canceled or
        succeeded run is taken from the list (a canceled run's error only says "Workflow manually
        stopped", which ``details.canceled`` already says), and so is a run still running."""
        return normalize_state(status.raw_state or "") != "failed" or "error" in status.details

    def status_list_requests(self, count: int) -> int | None:
        """Runs created within ``lookback`` in ``limit=100`` pages; every request, list or by id,
        counts against the tenant's 10 a second, so the list is read when it has fewer pages than
        there are runs to read. A run created before the window is not listed: it is read by id."""
        return self.expected_list_pages()

    def build_test_request(self) -> ApiRequest:
        return ApiRequest("GET", "/workflow/runs", params={"limit": "1"})
