"""The transport's own promises, one at a time: every secret form is redacted, a token fetch is retried
by one policy, a credential answer is never quoted, a request ends by the wait's deadline, a large
body is parsed off the event loop, insecure transport is warned about once, URLs lose their user info."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest

from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.hooks.bounds import OFF_LOOP_BYTES
from airflow_provider_stop.hooks.data import ApiResponse, TargetStatus
from airflow_provider_stop.hooks.errors import (
    BatchStopError,
    InvalidInputError,
    MalformedResponseError,
    PermanentBatchStopError,
    RequestDeadlineError,
    ServiceUnavailableError,
    StopTimeoutError,
    TransientBatchStopError,
    batch_error,
)
from airflow_provider_stop.hooks.feldera import FelderaHook
from airflow_provider_stop.hooks.redaction import REDACTED, Redactor, url_without_userinfo
from airflow_provider_stop.hooks.validation import clip
from airflow_provider_stop.testing.amperity import AmperityEmulator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import LogCapture, use_connection

KEY = "apikey:BOUNDSCANARY-7f3a9c"
FAST: dict[str, Any] = {"retry_min_wait": 0.01, "retry_max_wait": 0.02}


@pytest.mark.parametrize(
    "written",
    [
        KEY,
        repr(KEY + "\n"),
        json.dumps(KEY + "\n"),
        "apikey%3ABOUNDSCANARY-7f3a9c",
        "YXBpa2V5OkJPVU5EU0NBTkFSWS03ZjNhOWM=",  # base64 of the key
        "Bearer " + KEY,
    ],
    ids=["raw", "repr-newline", "json-newline", "percent", "base64", "bearer"],
)
def test_every_form_of_a_secret_is_redacted(written: str) -> None:
    redact = Redactor([KEY + "\n", f"Bearer {KEY}\n"])
    text = redact(f"Invalid header value b'{written}'")
    assert "BOUNDSCANARY" not in text and "Qk9VTkRTQ0FOQVJZ" not in text, text


def test_a_batch_error_and_a_status_are_redacted_at_the_one_point() -> None:
    redact = Redactor([KEY])
    inner = ServiceUnavailableError(f"echo {KEY}")
    error = redact.error(batch_error("stop", {"a": inner}, 2))
    assert KEY not in str(error) and KEY not in str(error.failures["a"])
    status = redact.value(TargetStatus("a", "Failed", True, error=f"x {KEY}", details={"m": [KEY]}))
    assert KEY not in json.dumps(status.to_dict())
    assert status.error == f"x {REDACTED}"


def test_service_text_is_truncated_and_cannot_forge_log_lines() -> None:
    shown = clip("ok\n2026-01-01 INFO forged line" + "x" * 1000, 40)
    assert "\n" not in shown and "\\n" in shown and len(shown) <= 40 + 2 and shown.endswith("…")


def test_urls_lose_their_user_info() -> None:
    assert url_without_userinfo("https://u:p4ss@host:8443/api?x=1") == "https://host:8443/api?x=1"
    assert url_without_userinfo("https://host/api") == "https://host/api"


def test_a_host_with_credentials_is_refused_without_repeating_them(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, "feldera_default", {"conn_type": "feldera", "host": "ftp://me:p4ssw0rd@x"})
    with pytest.raises(InvalidInputError) as info:
        FelderaHook().config  # noqa: B018
    assert "p4ssw0rd" not in str(info.value) and "ftp://x" in str(info.value)


@pytest.mark.parametrize(
    "value", [KEY + "\n", " " + KEY, KEY + "\r", "ap\x00ikey"], ids=["lf", "lead", "cr", "nul"]
)
def test_a_credential_with_a_control_character_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    use_connection(
        monkeypatch,
        "feldera_default",
        {"conn_type": "feldera", "host": "http://127.0.0.1:9", "password": value},
    )
    with pytest.raises(InvalidInputError, match="password field") as info:
        FelderaHook().config  # noqa: B018
    assert value.strip() not in str(info.value)


def test_a_token_fetch_is_retried_by_one_policy(amperity: AmperityEmulator) -> None:
    """A token endpoint that keeps failing is asked ``max_attempts`` times in all, not that number
    squared (once per attempt of the request that needed the token)."""
    amperity.inject("status", status=503, path="/api/v0/oauth2/token", times=1000)
    hook = AmperityHook(max_attempts=3, **FAST)
    with pytest.raises(ServiceUnavailableError):
        hook.get_status("wr-1")
    assert amperity.count("POST", "/api/v0/oauth2/token") == 3


def test_a_token_answer_that_is_not_json_is_never_quoted(
    amperity: AmperityEmulator, logs: LogCapture
) -> None:
    body = (
        b"access_token=FORMTOKENCANARY123&expires_in=3600&client_secret="
        + amperity.settings.client_secret.encode()
    )
    amperity.inject("body", status=200, path="/api/v0/oauth2/token", bodies=[body], times=1000)
    hook = AmperityHook(max_attempts=2, **FAST)
    with pytest.raises(MalformedResponseError, match="not shown") as info:
        hook.get_status("wr-1")
    seen = str(info.value) + logs.text()
    assert "FORMTOKENCANARY" not in seen and amperity.settings.client_secret not in seen


def test_a_request_ends_by_the_wait_deadline_not_its_own_timeout(feldera: FelderaEmulator) -> None:
    """A server that drips its answer holds a request past every socket timeout; the wait's deadline
    (1.5 s here, the hook's own timeout is 30 s) still ends the wait, as a timeout naming the target."""
    feldera.add_pipeline("p")
    feldera.inject("drip", delay=0.2, times=1000, method="GET")
    hook = FelderaHook(request_timeout=30.0, **FAST)
    started = time.monotonic()
    with pytest.raises(StopTimeoutError) as info:
        hook.wait_until_stopped(["p"], poll_interval=0.1, deadline=time.time() + 1.5)
    assert time.monotonic() - started < 1.5 + 1.0 + 0.5
    assert info.value.pending == ["p"]


def test_the_async_path_ends_by_the_wait_deadline_too(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    feldera.inject("drip", delay=0.2, times=1000, method="GET")
    hook = FelderaHook(request_timeout=30.0, **FAST)

    async def wait() -> None:
        async with hook.async_client() as client:
            await hook.await_until_stopped(client, ["p"], poll_interval=0.1, deadline=time.time() + 1.5)

    started = time.monotonic()
    with pytest.raises(StopTimeoutError):
        asyncio.run(wait())
    assert time.monotonic() - started < 1.5 + 1.0 + 0.5


def test_a_large_answer_is_parsed_off_the_event_loop(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    hook = FelderaHook(**FAST)
    threads: list[str] = []
    body = json.dumps({"deployment_status": "Running", "pad": "x" * (OFF_LOOP_BYTES + 10)}).encode()
    small = json.dumps({"deployment_status": "Running"}).encode()

    def parse(response: ApiResponse) -> int:
        threads.append(threading.current_thread().name)
        return len(response.text)

    async def read() -> None:
        async with hook.async_client() as client:
            feldera.inject("body", status=200, bodies=[body, small], times=2)
            await hook.asend(client, hook.build_status_request("p"), parse)
            await hook.asend(client, hook.build_status_request("p"), parse)

    asyncio.run(read())
    assert threads[0] != threading.main_thread().name and threads[1] == threading.main_thread().name


def test_plain_http_off_loopback_and_no_tls_verification_are_warned_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conn: dict[str, Any] = {
        "conn_type": "feldera",
        "host": "http://feldera.example.internal:8080",
        "extra": {"verify": "false"},
    }
    use_connection(monkeypatch, "feldera_insecure", conn)
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        FelderaHook("feldera_insecure").config  # noqa: B018
    warnings = [r.getMessage() for r in caplog.records if "feldera_insecure" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert any("plain http" in w for w in warnings) and any("verify" in w for w in warnings)


@pytest.mark.parametrize("cls", [PermanentBatchStopError, TransientBatchStopError, RequestDeadlineError])
def test_an_error_event_becomes_the_same_error_class_on_the_worker(cls: type[Exception]) -> None:
    """A deferred wait that ended in a batch error (some targets failed) raises that class again on
    the worker, not a TypeError about its constructor."""
    from airflow_provider_stop.events import error_payload, raise_from_event

    if issubclass(cls, BatchStopError):
        error: Exception = cls(
            "stop failed for 1 of 2 target(s)", failures={"a": ServiceUnavailableError("x")}
        )
    else:
        error = cls("read did not finish")
    with pytest.raises(cls, match=str(error).split(" ")[0]):
        raise_from_event(error_payload(error))


def test_the_response_size_cap_is_a_declared_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """``[stop_provider] max_response_bytes`` is shown where Airflow lists provider settings, with the
    default the hooks use, and a hook made under a lower setting takes it."""
    from airflow_provider_stop.get_provider_info import get_provider_info
    from airflow_provider_stop.hooks.bounds import MAX_RESPONSE_BYTES
    from airflow_provider_stop.hooks.feldera import FelderaHook

    option = get_provider_info()["config"]["stop_provider"]["options"]["max_response_bytes"]
    assert int(option["default"]) == MAX_RESPONSE_BYTES and option["type"] == "integer"
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__MAX_RESPONSE_BYTES", "4096")
    assert FelderaHook().max_response_bytes == 4096
