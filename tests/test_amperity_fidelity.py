"""Amperity against the documented contract (issue 12): stop-all without an undocumented ``state``
filter, the ``lookback`` window, the documented token URL, and an emulator as strict as the spec."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import requests
import requests.adapters

from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.hooks.errors import InvalidInputError
from airflow_provider_stop.operators.amperity import AmperityStopAllWorkflowRunsOperator
from airflow_provider_stop.testing.amperity import AmperityEmulator, parse_iso
from tests.conftest import FAST_RETRIES, ToEmulator, use_connection

#: Query parameters the spec documents for ``GET /workflow/runs`` (operation ``list-workflows``).
DOCUMENTED_LIST_PARAMS = {
    "limit",
    "next_token",
    "with_total",
    "created_from",
    "created_to",
    "ended_from",
    "ended_to",
    "state",
    "type",
    "api_version",
}
DAY = 24 * 3600.0


def hook(**kwargs: Any) -> AmperityHook:
    return AmperityHook(**{**FAST_RETRIES, **kwargs})


def list_requests(emu: AmperityEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "GET" and r.path == "/api/workflow/runs"]


# ---- item 2: stop-all lists a created_from window and judges each run's state locally ----------
@pytest.mark.parametrize("unknown_state_filter", ["reject", "ignore", "match_nothing"])
def test_stop_all_works_whatever_the_server_does_with_an_unknown_state_filter(
    amperity: AmperityEmulator, unknown_state_filter: str
) -> None:
    """Before: ``state=scheduled|running|paused`` -> a 400 (reject) or nothing stopped (match_nothing)."""
    amperity.settings.unknown_state_filter = unknown_state_filter
    running = [amperity.add_run(f"wf-run-{i}").id for i in range(3)]
    running += [
        amperity.add_run("wf-sched", state="scheduled").id,
        amperity.add_run("wf-paused", state="paused").id,
    ]
    amperity.add_run("wf-done", state="succeeded")
    amperity.add_run("wf-failed", state="failed")
    h = hook()
    found = h.running_targets()
    assert sorted(found) == sorted(running)
    acks = h.stop_all_targets(found)
    assert sorted(acks) == sorted(running)
    assert amperity.runs["wf-done"].stop_at is None and amperity.runs["wf-failed"].stop_at is None
    for request in list_requests(amperity):
        assert set(request.query) <= DOCUMENTED_LIST_PARAMS
        assert "state" not in request.query


def test_stop_all_sees_only_runs_created_within_the_lookback(amperity: AmperityEmulator) -> None:
    amperity.add_run("wf-new")
    amperity.add_run("wf-6d", created_at=time.time() - 6 * DAY)
    amperity.add_run("wf-8d", created_at=time.time() - 8 * DAY)
    amperity.settings.run_seconds = 30 * DAY  # every run above is still running
    assert sorted(hook().running_targets()) == ["wf-6d", "wf-new"]  # default: 7 days
    assert sorted(hook(lookback=timedelta(days=9)).running_targets()) == ["wf-6d", "wf-8d", "wf-new"]
    assert hook(lookback=60).running_targets() == ["wf-new"]
    sent = parse_iso(list_requests(amperity)[0].query["created_from"][0])
    assert sent is not None and abs(sent - (time.time() - 7 * DAY)) < 60


@pytest.mark.parametrize("lookback", [0, -5, "7d", True, timedelta(days=367), float("nan"), None])
def test_a_bad_lookback_fails_before_any_request(amperity: AmperityEmulator, lookback: Any) -> None:
    with pytest.raises(InvalidInputError, match="lookback must be a positive number of seconds"):
        AmperityStopAllWorkflowRunsOperator(task_id="stop_all", lookback=lookback)
    with pytest.raises(InvalidInputError, match="lookback must be"):
        hook(lookback=lookback)
    assert amperity.count() == 0


def test_the_operator_hands_its_lookback_to_the_hook() -> None:
    op = AmperityStopAllWorkflowRunsOperator(task_id="stop_all", lookback=timedelta(hours=2))
    assert op.hook_params["lookback"] == 7200.0
    assert AmperityStopAllWorkflowRunsOperator(task_id="d").hook_params["lookback"] == 7 * DAY


# ---- item 8: the documented token URL ---------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "host", "expected"),
    [
        ({}, None, "https://acme.amperity.com/api/v0/oauth2/token"),
        ({"region": "azure"}, None, "https://acme.amperity.com/api/v0/oauth2/token"),
        ({"region": "australia"}, None, "https://acme.amperity.com/api/v0/oauth2/token"),
        ({}, "https://app.amperity.com", "https://acme.amperity.com/api/v0/oauth2/token"),
        ({}, "https://app-aws-apse2.amperity.com/api", "https://acme.amperity.com/api/v0/oauth2/token"),
        ({}, "https://acme.amperity.com", "https://acme.amperity.com/api/v0/oauth2/token"),
        ({}, "https://proxy.example/amperity/api", "https://proxy.example/amperity/api/v0/oauth2/token"),
        ({"token_url": "https://sso.example/token"}, None, "https://sso.example/token"),
    ],
)
def test_the_default_token_url_is_the_tenant_host_as_documented(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], host: str | None, expected: str
) -> None:
    conn = {"conn_type": "amperity", "host": host, "login": "cid", "password": "secret-123456"}
    use_connection(monkeypatch, "amperity_default", {**conn, "extra": {"tenant": "Acme", **extra}})
    assert hook().config.settings["token_url"] == expected


@pytest.mark.parametrize("token_on_shared_host", [False, True], ids=["tenant-host-only", "both-hosts"])
def test_client_credentials_on_aws_fetch_the_token_from_the_tenant_host(
    monkeypatch: pytest.MonkeyPatch, token_on_shared_host: bool
) -> None:
    """Before: the token request went to app.amperity.com, which the docs never show serving it."""
    with AmperityEmulator(
        cancel_seconds=0, rate_limit_per_second=1000, token_on_shared_host=token_on_shared_host
    ) as emu:
        conn = emu.connection()
        use_connection(
            monkeypatch,
            "amperity_default",
            {**conn, "host": None, "extra": {**conn["extra"], "requests_per_second": 500}},
        )
        emu.add_run("wf-1")
        h = hook()
        assert h.config.base_url == "https://app.amperity.com/api"
        h.get_conn().mount("https://", ToEmulator(emu.url))
        assert h.stop("wf-1").accepted
        assert emu.token_requests == [("acme.amperity.com", "/api/v0/oauth2/token")]
        stop = next(r for r in emu.requests if r.path.endswith("/stop"))
        assert stop.headers["host"] == "app.amperity.com"


def test_the_emulator_refuses_the_token_on_the_shared_host_by_default(amperity: AmperityEmulator) -> None:
    form = {"grant_type": "client_credentials", "client_id": "emulator-client"}
    form["client_secret"] = amperity.settings.client_secret
    headers = {"Host": "app.amperity.com", "X-Amperity-Tenant": "acme"}
    answer = requests.post(amperity.url + "/api/v0/oauth2/token", data=form, headers=headers, timeout=5)
    assert answer.status_code == 404 and set(answer.json()) >= {"status", "message"}
    headers["Host"] = "acme.amperity.com"
    answer = requests.post(amperity.url + "/api/v0/oauth2/token", data=form, headers=headers, timeout=5)
    assert answer.ok and answer.json()["token_type"] == "Bearer"


# ---- the emulator is as strict as the documented contract --------------------------------------
def _headers(emu: AmperityEmulator) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {emu.settings.access_token}",
        "amperity-tenant": emu.settings.tenant,
        "api-version": "2024-04-01",
    }


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/workflow/runs", {"state": "running"}, "Invalid state 'running'"),
        ("/workflow/runs", {"state": "scheduled"}, "Invalid state"),
        ("/workflow/runs", {"status": "running"}, "Unknown query parameter(s): status"),
        ("/workflow/runs", {"created_from": "yesterday"}, "Invalid ISO-8601 timestamp for created_from"),
        ("/workflow/runs", {"with_total": "yes"}, "with_total must be true or false"),
        ("/workflow/runs/wf-1", {"view": "full"}, "Invalid view 'full'"),
        ("/workflow/runs/wf-1", {"verbose": "1"}, "Unknown query parameter(s): verbose"),
    ],
)
def test_undocumented_query_values_are_a_400_in_the_documented_shape(
    amperity: AmperityEmulator, path: str, params: dict[str, str], message: str
) -> None:
    amperity.add_run("wf-1")
    answer = requests.get(amperity.url + "/api" + path, params=params, headers=_headers(amperity), timeout=5)
    assert answer.status_code == 400
    assert answer.json()["status"] == 400 and message in answer.json()["message"]
    amperity.settings.lenient_query = True
    lenient = requests.get(amperity.url + "/api" + path, params=params, headers=_headers(amperity), timeout=5)
    # An invalid parameter is a documented 400 whatever the leniency; an undocumented one is a setting.
    assert lenient.ok != ("ISO-8601" in message)


@pytest.mark.parametrize(
    "value", ["succeeded", "Succeeded", "Started", "In progress", "in_progress", "Stopped"]
)
def test_documented_state_filter_values_are_served(amperity: AmperityEmulator, value: str) -> None:
    amperity.add_run("wf-run")
    amperity.add_run("wf-ok", state="succeeded")
    answer = requests.get(
        amperity.url + "/api/workflow/runs", params={"state": value}, headers=_headers(amperity), timeout=5
    )
    assert answer.ok
    expected = {"succeeded": ["wf-ok"], "started": ["wf-run"], "in progress": ["wf-run"], "stopped": []}
    key = value.lower().replace("_", " ")
    assert [run["id"] for run in answer.json()["data"]] == expected[key]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/workflow/runs/wf-1/stop"),
        ("DELETE", "/workflow/runs/wf-1"),
        ("PUT", "/workflow/runs"),
        ("GET", "/v0/oauth2/token"),
    ],
)
def test_a_wrong_method_is_a_405_in_the_documented_shape(
    amperity: AmperityEmulator, method: str, path: str
) -> None:
    amperity.add_run("wf-1")
    answer = requests.request(method, amperity.url + "/api" + path, headers=_headers(amperity), timeout=5)
    assert answer.status_code == 405 and answer.json()["status"] == 405
    assert amperity.runs["wf-1"].stop_at is None


def test_the_tenant_alias_header_is_a_setting(amperity: AmperityEmulator) -> None:
    amperity.add_run("wf-1")
    headers = {k: v for k, v in _headers(amperity).items() if k != "amperity-tenant"}
    headers["X-Amperity-Tenant"] = "acme"
    url = amperity.url + "/api/workflow/runs/wf-1"
    missing = requests.get(url, headers=headers, timeout=5)
    assert missing.status_code == 400 and missing.json()["message"] == "Missing amperity-tenant header"
    amperity.settings.accept_x_tenant_alias = True
    assert requests.get(url, headers=headers, timeout=5).ok


def test_list_time_windows_follow_the_spec(amperity: AmperityEmulator) -> None:
    now = time.time()
    amperity.add_run("wf-old", created_at=now - 3 * DAY, state="succeeded")
    amperity.add_run("wf-new", created_at=now)
    url = amperity.url + "/api/workflow/runs"

    def ids(**params: str) -> list[str]:
        answer = requests.get(url, params=params, headers=_headers(amperity), timeout=5)
        assert answer.ok, answer.text
        return sorted(run["id"] for run in answer.json()["data"])

    day = time.strftime("%Y-%m-%d", time.gmtime(now - DAY))
    assert ids(created_from=day) == ["wf-new"]
    assert ids(created_to=day) == ["wf-old"]
    assert ids(ended_from="2000") == ["wf-old"]  # partial timestamp; runs without ended_at are left out


# ---- every unconfirmed answer the stop path depends on, each plausible value ---------------------
@pytest.mark.parametrize("cancel_error", [True, False], ids=["error-object", "no-error-object"])
@pytest.mark.parametrize("cancel_seconds", [0.0, 0.3], ids=["canceled-at-once", "canceling-first"])
def test_a_stop_ends_canceled_with_or_without_the_error_object(
    amperity: AmperityEmulator, cancel_error: bool, cancel_seconds: float
) -> None:
    amperity.settings.cancel_error = cancel_error
    amperity.settings.cancel_seconds = cancel_seconds
    amperity.add_run("wf-1")
    h = hook()
    h.stop("wf-1")
    final = h.wait_until_stopped(["wf-1"], poll_interval=0.05, deadline=time.time() + 5)["wf-1"]
    assert final.stopped and final.raw_state == "canceled" and final.error is None
    assert final.details.get("error") == ("Workflow manually stopped" if cancel_error else None)


@pytest.mark.parametrize("request_ids", [True, False], ids=["with-request-id", "spec-shape"])
def test_an_unknown_run_is_not_found_with_either_error_body(
    amperity: AmperityEmulator, request_ids: bool
) -> None:
    from airflow_provider_stop.hooks.errors import TargetNotFoundError

    amperity.settings.request_ids = request_ids
    with pytest.raises(TargetNotFoundError, match="Workflow 'wf-nope' not found") as caught:
        hook().stop("wf-nope")
    assert ("request_id" in str(caught.value)) == request_ids


@pytest.mark.parametrize("retry_after", [None, "1"], ids=["no-retry-after", "retry-after"])
def test_a_429_with_or_without_retry_after_is_retried(
    amperity: AmperityEmulator, retry_after: str | None
) -> None:
    amperity.add_run("wf-1")
    amperity.inject("status", status=429, retry_after=retry_after, path="*/stop")
    assert hook().stop("wf-1").accepted
    assert amperity.count("POST", "*/stop") == 2 and amperity.stop_forms == ["slash"]
