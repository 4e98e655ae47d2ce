"""The shared building blocks as plain functions of data: encoding, validation, parsing, redaction."""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
import urllib.parse
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_stop.hooks.data import ApiResponse, TargetStatus, quote_segment
from airflow_provider_stop.hooks.errors import (
    InvalidInputError,
    MalformedResponseError,
    PermanentBatchStopError,
    StopRejectedError,
    TargetNotFoundError,
    TransientBatchStopError,
    batch_error,
)
from airflow_provider_stop.hooks.feldera import FelderaHook
from airflow_provider_stop.hooks.redaction import REDACTED, Redactor
from airflow_provider_stop.hooks.retrying import parse_retry_after
from airflow_provider_stop.hooks.validation import RENDERED_NONE, normalize_target_ids, validate_target_id

# "None" and "null" are what a template renders for a missing value: refused on purpose (tested apart).
printable_ids = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200
).filter(lambda s: s.strip() and s not in RENDERED_NONE)


@given(printable_ids)
def test_quote_segment_round_trips_and_never_adds_a_path_separator(value: str) -> None:
    encoded = quote_segment(value)
    assert "/" not in encoded and "?" not in encoded and "#" not in encoded
    assert encoded not in {".", ".."}
    assert urllib.parse.unquote(encoded) == value


@pytest.mark.parametrize("value", [".", "..", "a/../b", "x?y=1", "frag#ment", "100%", "a b"])
def test_quote_segment_neutralises_path_tricks(value: str) -> None:
    encoded = quote_segment(value)
    assert "/" not in encoded and encoded not in {".", ".."}
    assert urllib.parse.unquote(encoded) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a\nb", "control characters"),
        ("a\x00b", "control characters"),
        ("x" * 1025, "at most 1024"),
        (42, "must be a string"),
        (None, "must be a string"),
        (["a"], "must be a string"),
    ],
)
def test_validate_target_id_rejects_with_the_parameter_name(value: object, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment) as err:
        validate_target_id(value, "pipeline_name")
    assert "pipeline_name" in str(err.value)


@given(printable_ids)
def test_validate_target_id_passes_good_ids_through_unchanged(value: str) -> None:
    assert validate_target_id(value, "p") == value


def test_normalize_target_ids_accepts_one_a_list_or_a_json_list_and_dedupes() -> None:
    assert normalize_target_ids("a", "p") == ["a"]
    assert normalize_target_ids(["a", "b", "a"], "p") == ["a", "b"]
    assert normalize_target_ids('["a", "b"]', "p") == ["a", "b"]
    assert normalize_target_ids(("x",), "p") == ["x"]
    with pytest.raises(InvalidInputError, match="rendered to None"):
        normalize_target_ids(None, "p")
    with pytest.raises(InvalidInputError, match="at least one"):
        normalize_target_ids([], "p")
    with pytest.raises(InvalidInputError, match="p must be a string"):
        normalize_target_ids([1, 2], "p")


def test_parse_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after(date, now=now) or 0) <= 31
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0


def test_redactor_hides_raw_and_url_encoded_forms() -> None:
    secret = "apikey:s3cr3t/+=value"
    redact = Redactor([secret])
    text = f"raw {secret} quoted {urllib.parse.quote(secret, safe='')} plus {urllib.parse.quote_plus(secret)}"
    out = redact(text)
    assert "s3cr3t" not in out
    assert out.count(REDACTED) == 3


def test_target_status_round_trips_through_json() -> None:
    status = TargetStatus("p1", "Stopped", True, None, {"deployment_error": None})
    assert TargetStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status


def test_batch_error_names_every_failure_and_is_retryable_only_if_one_is() -> None:
    from airflow_provider_stop.hooks.errors import ServiceUnavailableError

    permanent = batch_error("stop", {"a": TargetNotFoundError("gone"), "b": StopRejectedError("no")}, 3)
    assert isinstance(permanent, PermanentBatchStopError) and not permanent.retryable
    assert "2 of 3" in str(permanent) and "'a'" in str(permanent) and "'b'" in str(permanent)
    mixed = batch_error("stop", {"a": TargetNotFoundError("gone"), "c": ServiceUnavailableError("down")}, 2)
    assert isinstance(mixed, TransientBatchStopError) and mixed.retryable


def test_api_response_json_errors_are_named() -> None:
    with pytest.raises(MalformedResponseError, match="empty response body"):
        ApiResponse(200, {}, "").json()
    with pytest.raises(MalformedResponseError, match="not JSON"):
        ApiResponse(502, {}, "<html>Bad Gateway</html>").json()


# ---- Feldera request building and parsing (no network) ------------------------------------
@given(printable_ids, st.booleans())
def test_feldera_stop_request_encodes_the_name_and_sends_force_explicitly(name: str, force: bool) -> None:
    hook = FelderaHook()
    request = hook.build_stop_request(name, {"force": force})
    assert request.method == "POST"
    prefix, _, rest = request.path.partition("/pipelines/")
    assert prefix == "" and rest.endswith("/stop")
    assert urllib.parse.unquote(rest.removesuffix("/stop")) == name
    assert request.params == {"force": "true" if force else "false"}


@given(
    st.sampled_from(
        ["Stopped", "Suspended", "Stopping", "Running", "Paused", "Provisioning", "Brand-New-State"]
    ),
    st.one_of(
        st.none(),
        st.fixed_dictionaries({"message": st.text(max_size=30), "error_code": st.text(max_size=10)}),
    ),
)
def test_feldera_status_parsing(state: str, error: dict[str, str] | None) -> None:
    hook = FelderaHook()
    body = {
        "name": "p",
        "deployment_status": state,
        "deployment_desired_status": "Stopped",
        "deployment_error": error,
    }
    status = hook.parse_status_response("p", ApiResponse(200, {}, json.dumps(body)))
    assert status.stopped == (state in {"Stopped", "Suspended"})
    assert status.raw_state == state
    assert (status.error is None) == (not error)


@pytest.mark.parametrize("body", ["", "[]", '{"name": "p"}', '{"deployment_status": 5}', "<html></html>"])
def test_feldera_status_parsing_rejects_bodies_without_a_state(body: str) -> None:
    with pytest.raises(MalformedResponseError):
        FelderaHook().parse_status_response("p", ApiResponse(200, {}, body))


def test_async_waits_in_one_loop_share_one_client_that_keeps_no_cookies() -> None:
    import asyncio

    import httpx

    from airflow_provider_stop.hooks.client_pool import _async_clients, shared_async_client

    async def main() -> httpx.AsyncClient:
        async with shared_async_client(True) as a, shared_async_client(True) as b:
            async with shared_async_client(False) as other:
                assert a is b and a is not other  # one pool per TLS setting
            request = httpx.Request("GET", "https://service.example/api")
            a.cookies.extract_cookies(httpx.Response(200, headers={"Set-Cookie": "s=1"}, request=request))
            assert len(a.cookies.jar) == 0  # nothing one connection's answer sets rides along another's
        assert not _async_clients.get(asyncio.get_running_loop())  # the last user closed it
        return a

    assert asyncio.run(main()).is_closed


def test_clients_of_several_hosts_share_one_tls_context_per_verify_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A triggerer waiting on five services built five TLS contexts (each loads the CA bundle: 30 to
    60 ms of CPU); the hosts' clients now share one per ``verify`` setting, for as long as one uses it."""
    import asyncio
    import ssl

    import httpx

    from airflow_provider_stop.hooks import client_pool
    from airflow_provider_stop.hooks.client_pool import _client_slots, shared_async_client

    built: list[ssl.SSLContext] = []
    create_ssl_context = httpx.create_ssl_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(create_ssl_context(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(httpx, "create_ssl_context", counted)

    async def context_of(client: httpx.AsyncClient) -> ssl.SSLContext:
        """The TLS context a new lane of ``client`` connects with (httpcore's pool holds it)."""
        async with _client_slots[client].make_lane() as lane:
            return lane._transport._pool._ssl_context

    async def main() -> None:
        hosts = [f"https://service{i}.example" for i in range(5)]
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(shared_async_client(True, h)) for h in hosts]
            unverified = await stack.enter_async_context(shared_async_client(False, hosts[0]))
            assert len({id(c) for c in clients}) == 5  # still a client (a pool) per host
            assert len(built) == 2  # one context for verify=True, one for verify=False
            assert {id(await context_of(c)) for c in clients} == {id(built[0])}
            assert await context_of(unverified) is built[1]
        assert not client_pool._tls_contexts[asyncio.get_running_loop()].contexts  # gone with the last client
        async with shared_async_client(True, hosts[0]):
            assert len(built) == 3  # the next burst reads the CA bundle again

    asyncio.run(main())
