"""Amperity sandboxes (issue 28): a sandbox tenant id never becomes a host name.

amperity-docs ``amperity_api/source/base_url.rst``, "Base URL and sandboxes": "The base URL for a
sandbox is the same as the base URL for production", and the sandbox's tenant id (``socktown-sb-12345``)
goes in the ``amperity-tenant`` header. The token example (``amperity_reference/source/api.rst``:
``POST /api/v0/oauth2/token``, ``Host: acme.amperity.com``, ``X-Amperity-Tenant: acme2``) shows the
token host is not the tenant header either. No host ``socktown-sb-12345.amperity.com`` exists: the
emulator refuses a request to one (421) and records it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import requests.adapters

from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.testing.amperity import AmperityEmulator
from tests.conftest import FAST_RETRIES, ToEmulator, use_connection

SANDBOX = "acme-sb-12345"
#: Where each region's API calls go for the sandbox (the production tenant's hosts).
API_HOSTS = {
    "aws": "app.amperity.com",
    "azure": "acme.amperity.com",
    "australia": "app-aws-apse2.amperity.com",
}


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[AmperityEmulator]:
    from airflow_provider_stop import process_state

    process_state.reset()
    with AmperityEmulator(tenant=SANDBOX, cancel_seconds=0, rate_limit_per_second=1000) as emu:
        yield emu


def _connect(monkeypatch: pytest.MonkeyPatch, emu: AmperityEmulator, auth: str, **extra: Any) -> AmperityHook:
    conn = emu.connection(auth)
    extra = {**conn["extra"], "requests_per_second": 500, **extra}
    use_connection(monkeypatch, "amperity_default", {**conn, "host": extra.pop("host", None), "extra": extra})
    hook = AmperityHook(**FAST_RETRIES)
    hook.get_conn().mount("https://", ToEmulator(emu.url))
    return hook


@pytest.mark.parametrize("auth", ["client_credentials", "token"])
@pytest.mark.parametrize("region", ["aws", "azure", "australia"])
def test_a_sandbox_is_reached_on_its_production_tenant_s_hosts(
    monkeypatch: pytest.MonkeyPatch, sandbox: AmperityEmulator, region: str, auth: str
) -> None:
    """Before: Azure built ``https://acme-sb-12345.amperity.com/api`` and every region fetched its token
    there: a DNS failure on a real network, a refused request here."""
    sandbox.add_run("wf-1")
    hook = _connect(monkeypatch, sandbox, auth, region=region)
    assert hook.stop("wf-1").accepted
    assert hook.get_status("wf-1").stopped
    assert sandbox.sandbox_hosts == []
    api = [r for r in sandbox.requests if r.path.startswith("/api/workflow/")]
    assert api and {r.headers["host"] for r in api} == {API_HOSTS[region]}
    assert {r.headers["amperity-tenant"] for r in api} == {SANDBOX}  # the sandbox id, in the header only
    tokens = [r for r in sandbox.requests if r.path == "/api/v0/oauth2/token"]
    if auth == "token":
        assert tokens == []
    else:
        assert [(r.headers["host"], r.headers["x-amperity-tenant"]) for r in tokens] == [
            ("acme.amperity.com", SANDBOX)
        ]


@pytest.mark.parametrize(
    ("tenant", "extra", "host", "base_url", "token_url"),
    [
        (SANDBOX, {}, None, "https://app.amperity.com/api", "https://acme.amperity.com/api/v0/oauth2/token"),
        (
            SANDBOX,
            {"region": "azure"},
            None,
            "https://acme.amperity.com/api",
            "https://acme.amperity.com/api/v0/oauth2/token",
        ),
        (
            SANDBOX,
            {"region": "australia"},
            None,
            "https://app-aws-apse2.amperity.com/api",
            "https://acme.amperity.com/api/v0/oauth2/token",
        ),
        (
            "Acme-SB-7",
            {"region": "azure"},
            None,
            "https://acme.amperity.com/api",
            "https://acme.amperity.com/api/v0/oauth2/token",
        ),
        # Explicit values win, even one that names the sandbox.
        (
            SANDBOX,
            {},
            "https://acme-sb-12345.amperity.com",
            "https://acme-sb-12345.amperity.com/api",
            "https://acme-sb-12345.amperity.com/api/v0/oauth2/token",
        ),
        (
            SANDBOX,
            {"region": "azure", "token_url": "https://sso.example/token"},
            None,
            "https://acme.amperity.com/api",
            "https://sso.example/token",
        ),
        (
            SANDBOX,
            {},
            "https://app-aws-apse2.amperity.com",
            "https://app-aws-apse2.amperity.com/api",
            "https://acme.amperity.com/api/v0/oauth2/token",
        ),
        # Not sandbox ids: kept whole.
        ("acme-sb", {"region": "azure"}, None, "https://acme-sb.amperity.com/api", None),
        ("acme-sb-x1", {"region": "azure"}, None, "https://acme-sb-x1.amperity.com/api", None),
    ],
)
def test_where_each_value_comes_from(
    monkeypatch: pytest.MonkeyPatch,
    tenant: str,
    extra: dict[str, Any],
    host: str | None,
    base_url: str,
    token_url: str | None,
) -> None:
    conn = {"conn_type": "amperity", "host": host, "login": "cid", "password": "secret-123456"}
    use_connection(monkeypatch, "amperity_default", {**conn, "extra": {"tenant": tenant, **extra}})
    config = AmperityHook().config
    assert config.base_url == base_url
    assert config.headers["amperity-tenant"] == tenant
    if token_url is not None:
        assert config.settings["token_url"] == token_url


@pytest.mark.parametrize(
    ("tenant", "production"),
    [
        ("acme-sb-12345", "acme"),
        ("socktown-sb-1", "socktown"),
        ("Acme-SB-7", "acme"),
        ("acme", "acme"),
        ("acme-sb", "acme-sb"),
        ("acme-sb-", "acme-sb-"),
        ("sb-12", "sb-12"),
        ("acme-sb-1x", "acme-sb-1x"),
    ],
)
def test_the_production_tenant_of_a_sandbox_id(tenant: str, production: str) -> None:
    from airflow_provider_stop.hooks.amperity import production_tenant

    assert production_tenant(tenant) == production


def test_the_emulator_serves_a_sandbox_on_the_production_host_only(sandbox: AmperityEmulator) -> None:
    sandbox.add_run("wf-1")
    s = sandbox.settings
    api = {
        "Authorization": f"Bearer {s.access_token}",
        "amperity-tenant": SANDBOX,
        "api-version": "2024-04-01",
    }
    url = sandbox.url + "/api/workflow/runs/wf-1"
    for host in ("acme.amperity.com", "app.amperity.com", "app-aws-apse2.amperity.com"):
        assert requests.get(url, headers={**api, "Host": host}, timeout=5).ok, host
    refused = requests.get(url, headers={**api, "Host": "acme-sb-12345.amperity.com"}, timeout=5)
    assert refused.status_code == 421 and set(refused.json()) >= {"status", "message"}
    form = {"grant_type": "client_credentials", "client_id": s.client_id, "client_secret": s.client_secret}
    token_url = sandbox.url + "/api/v0/oauth2/token"
    headers = {"X-Amperity-Tenant": SANDBOX}
    ok = requests.post(token_url, data=form, headers={**headers, "Host": "acme.amperity.com"}, timeout=5)
    assert ok.ok and ok.json()["token_type"] == "Bearer"
    bad = requests.post(
        token_url, data=form, headers={**headers, "Host": "acme-sb-12345.amperity.com"}, timeout=5
    )
    assert bad.status_code == 421
    assert sandbox.sandbox_hosts == ["acme-sb-12345.amperity.com"] * 2
