"""FelderaHook against the emulator: every documented answer, retries, faults, request counts."""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_stop.hooks.errors import (
    AuthenticationError,
    FeatureUnavailableError,
    MalformedResponseError,
    PermanentBatchStopError,
    RateLimitedError,
    ServiceUnavailableError,
    StopRejectedError,
    StopTimeoutError,
    TargetNotFoundError,
    TargetNotRunningError,
)
from airflow_provider_stop.hooks.feldera import FelderaHook
from airflow_provider_stop.hooks.validation import RENDERED_NONE
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import FAST_RETRIES, LogCapture, use_connection

STOP = "*/stop"


def hook(**kwargs: Any) -> FelderaHook:
    return FelderaHook("feldera_default", **{**FAST_RETRIES, **kwargs})


def wait(h: FelderaHook, names: list[str], seconds: float = 5.0) -> dict[str, Any]:
    return h.wait_until_stopped(names, poll_interval=0.05, deadline=time.time() + seconds)


def test_forced_stop_goes_running_stopping_stopped(feldera: FelderaEmulator, logs: LogCapture) -> None:
    feldera.add_pipeline("p1")
    h = hook()
    ack = h.stop("p1", force=True)
    assert ack.message == "Pipeline is forcefully stopping"
    statuses = wait(h, ["p1"])
    assert statuses["p1"].raw_state == "Stopped" and statuses["p1"].stopped and statuses["p1"].error is None
    assert feldera.count("POST", STOP) == 1
    post = next(r for r in feldera.requests if r.method == "POST")
    assert post.query == {"force": ["true"]}
    text = logs.text()
    assert "pipeline 'p1' is Stopping" in text and "pipeline 'p1' is Stopped (stopped)" in text


def test_stopping_an_already_stopped_pipeline_is_success(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("idle", running=False)
    h = hook()
    h.stop("idle", force=True)
    assert wait(h, ["idle"])["idle"].stopped
    with pytest.raises(TargetNotRunningError, match="'idle' is not running"):
        h.stop("idle", force=True, fail_if_not_running=True)
    assert feldera.count("POST", STOP) == 1  # fail_if_not_running checks before sending


def test_graceful_stop_on_open_source_is_a_clear_501(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1")
    with pytest.raises(FeatureUnavailableError) as err:
        hook().stop("p1", force=False)
    assert err.value.status_code == 501 and err.value.error_code == "EnterpriseFeature"
    assert "set force=True" in str(err.value) and "fallback_to_force=True" in str(err.value)
    assert not err.value.retryable
    assert feldera.count("POST", STOP) == 1


def test_fallback_to_force_resends_as_forced(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1")
    h = hook()
    ack = h.stop("p1", force=False, fallback_to_force=True)
    assert ack.options == {"force": True}
    assert [r.query["force"] for r in feldera.requests if r.method == "POST"] == [["false"], ["true"]]
    assert wait(h, ["p1"])["p1"].raw_state == "Stopped"


def test_enterprise_graceful_stop_checkpoints_then_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    with FelderaEmulator(edition="Enterprise", suspend_seconds=0.2) as emu:
        use_connection(monkeypatch, "feldera_default", emu.connection())
        emu.add_pipeline("p1")
        h = hook()
        assert h.stop("p1", force=False).message == "Pipeline is suspending"
        desired = set()
        deadline = time.time() + 5
        while time.time() < deadline:
            status = h.get_status("p1")
            desired.add((status.raw_state, status.details["deployment_desired_status"]))
            if status.stopped:
                break
            time.sleep(0.02)
        assert ("Running", "Suspended") in desired and ("Stopping", "Stopped") in desired
        assert status.raw_state == "Stopped" and status.error is None


def test_graceful_stop_that_fails_reports_deployment_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with FelderaEmulator(edition="Enterprise") as emu:
        use_connection(monkeypatch, "feldera_default", emu.connection())
        emu.add_pipeline(
            "p1",
            graceful_stop_error={
                "message": "checkpoint failed: no storage",
                "error_code": "CheckpointFailed",
            },
        )
        h = hook()
        h.stop("p1", force=False)
        status = wait(h, ["p1"])["p1"]
        assert status.stopped and status.error == "CheckpointFailed: checkpoint failed: no storage"


def test_unknown_pipeline_is_not_found_and_not_retried(feldera: FelderaEmulator) -> None:
    with pytest.raises(TargetNotFoundError, match="Unknown pipeline name 'ghost'") as err:
        hook().stop("ghost", force=True)
    assert err.value.status_code == 404 and err.value.error_code == "UnknownPipelineName"
    assert feldera.count("POST", STOP) == 1


def test_a_batch_stops_everything_it_can_and_names_what_failed(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("a")
    feldera.add_pipeline("b")
    h = hook()
    with pytest.raises(PermanentBatchStopError) as err:
        h.stop_many(["a", "ghost", "b"], force=True)
    assert "1 of 3" in str(err.value) and "'ghost'" in str(err.value)
    assert set(err.value.succeeded) == {"a", "b"}
    assert wait(h, ["a", "b"]) and feldera.status_of("a") == feldera.status_of("b") == "Stopped"


def test_api_key_auth_and_tenant_header(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "apikey:" + "k" * 40
    with FelderaEmulator(api_key=key) as emu:
        emu.add_pipeline("p1")
        use_connection(monkeypatch, "feldera_default", {**emu.connection(), "extra": {"tenant": "team-a"}})
        h = hook()
        h.stop("p1", force=True)
        assert emu.requests[-1].headers["authorization"] == f"Bearer {key}"
        assert emu.requests[-1].headers["feldera-tenant"] == "team-a"
        assert h.test_connection()[0] is True

        use_connection(
            monkeypatch, "feldera_default", {**emu.connection(), "password": "apikey:wrong-key-123"}
        )
        bad = hook()
        emu.reset_log()
        with pytest.raises(AuthenticationError, match="Unauthorized API key") as err:
            bad.stop("p1", force=True)
        assert "wrong-key-123" not in str(err.value)
        assert emu.count() == 1  # 401 is never retried
        ok, message = bad.test_connection()
        assert ok is False and "401" in message and "wrong-key-123" not in message


def test_retry_after_on_503_is_honoured_then_the_stop_succeeds(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1")
    feldera.inject("status", status=503, retry_after="0.2", times=2, path=STOP)
    hook(retry_max_wait=5).stop("p1", force=True)
    posts = [r.at for r in feldera.requests if r.method == "POST"]
    assert len(posts) == 3
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(posts))  # Retry-After, not the 0.01 s backoff


def test_429_without_retry_after_backs_off_and_succeeds(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1")
    feldera.inject("status", status=429, times=2, path=STOP)
    hook().stop("p1", force=True)
    assert feldera.count("POST", STOP) == 3


def test_a_burst_longer_than_the_budget_fails_after_exactly_max_attempts(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1")
    feldera.inject("status", status=502, times=50, path=STOP)
    with pytest.raises(ServiceUnavailableError, match="HTTP 502") as err:
        hook().stop("p1", force=True)
    assert err.value.retryable
    assert feldera.count("POST", STOP) == FAST_RETRIES["max_attempts"]


def test_rate_limit_past_the_budget_is_a_rate_limit_error(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1")
    feldera.inject("status", status=429, retry_after="0", times=50)
    with pytest.raises(RateLimitedError):
        hook().stop("p1", force=True)


@pytest.mark.parametrize("kind", ["drop", "drop_mid_body", "malformed", "html", "empty"])
def test_transport_and_body_faults_on_a_status_read_are_retried(feldera: FelderaEmulator, kind: str) -> None:
    feldera.add_pipeline("p1", running=False)
    feldera.inject(kind, status=502, times=1, method="GET")  # type: ignore[arg-type]
    assert hook().get_status("p1").raw_state == "Stopped"
    assert feldera.count("GET") == 2


def test_malformed_body_every_time_is_a_named_error(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1", running=False)
    feldera.inject("malformed", times=50, method="GET")
    with pytest.raises(MalformedResponseError, match="not JSON"):
        hook().get_status("p1")


def test_read_timeout_is_retried_within_the_request_timeout(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1", running=False)
    feldera.inject("slow", delay=1.0, times=1, method="GET")
    h = hook(request_timeout=0.3)
    started = time.monotonic()
    assert h.get_status("p1").stopped
    assert time.monotonic() - started < 1.0
    assert feldera.count("GET") == 2


def test_connection_refused_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    emu = FelderaEmulator().start()
    conn = emu.connection()
    emu.stop()
    use_connection(monkeypatch, "feldera_default", conn)
    with pytest.raises(ServiceUnavailableError, match="ConnectionError"):
        hook(max_attempts=2).stop("p1", force=True)


def test_unknown_state_is_logged_and_treated_as_running(feldera: FelderaEmulator, logs: LogCapture) -> None:
    feldera.add_pipeline("p1", status_override="Hibernating")
    with pytest.raises(StopTimeoutError) as err:
        wait(hook(), ["p1"], seconds=0.3)
    assert err.value.pending == ["p1"]
    assert "'p1' (Hibernating)" in str(err.value)
    assert "unknown deployment_status 'Hibernating'; treating it as running" in logs.text()


def test_redirects_are_not_followed(feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.responses import RedirectResponse

    feldera.error_response = lambda *a, **k: RedirectResponse("http://elsewhere.invalid/v0", status_code=307)  # type: ignore[method-assign]
    feldera.inject("status", status=307, times=1)
    with pytest.raises(StopRejectedError, match="redirects are not followed"):
        hook().stop("p1", force=True)
    assert feldera.count() == 1


def test_running_targets_filters_stopped_and_by_glob(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("nightly_a")
    feldera.add_pipeline("nightly_b", paused=True)
    feldera.add_pipeline("nightly_c", running=False)
    feldera.add_pipeline("daily_a")
    h = hook()
    assert sorted(h.running_targets()) == ["daily_a", "nightly_a", "nightly_b"]
    assert sorted(h.running_targets("nightly_*")) == ["nightly_a", "nightly_b"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(
        lambda name: bool(name.strip()) and name not in RENDERED_NONE  # those are refused as bad input
    )
)
def test_odd_names_reach_the_server_unchanged(feldera: FelderaEmulator, name: str) -> None:
    feldera.add_pipeline(name)
    feldera.reset_log()
    hook().stop(name, force=True)
    (post,) = [r for r in feldera.requests if r.method == "POST"]
    segment = post.path.removeprefix("/v0/pipelines/").removesuffix("/stop")
    assert "/" not in segment and urllib.parse.unquote(segment) == name


def test_async_stop_and_wait_share_the_same_rules(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p1")
    feldera.inject("status", status=503, retry_after="0", times=1, path=STOP)
    h = hook()

    async def scenario() -> Any:
        async with h.async_client() as client:
            await h.astop(client, "p1", force=True)
            with pytest.raises(TargetNotFoundError):
                await h.astop(client, "ghost", force=True)
            return await h.await_until_stopped(client, ["p1"], poll_interval=0.05, deadline=time.time() + 5)

    statuses = asyncio.run(scenario())
    assert statuses["p1"].raw_state == "Stopped"
    assert feldera.count("POST", "*/p1/stop") == 2  # one 503, one accepted


def test_a_hanging_service_does_not_hold_up_waits_on_another_in_the_same_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in a triggerer: many waits on a hanging host, one on a healthy host, one event loop."""
    import asyncio

    with FelderaEmulator() as hanging, FelderaEmulator() as healthy:
        use_connection(monkeypatch, "feldera_default", hanging.connection())
        use_connection(monkeypatch, "feldera_other", healthy.connection())
        for i in range(24):
            hanging.add_pipeline(f"h{i}", running=False)
        healthy.add_pipeline("ok", running=False)
        hanging.inject("slow", delay=2.0, times=1000)
        answered_by_hanging_when_healthy_done: list[int] = []

        async def wait(hook: FelderaHook, name: str) -> None:
            async with hook.async_client() as client:
                await hook.await_until_stopped(client, [name], poll_interval=0.05, deadline=time.time() + 30)

        async def healthy_wait() -> None:
            await wait(FelderaHook("feldera_other", request_timeout=10), "ok")
            answered_by_hanging_when_healthy_done.append(hanging.handled_count())

        async def main() -> None:
            waits = [wait(FelderaHook(request_timeout=10), f"h{i}") for i in range(24)]
            await asyncio.gather(*waits, healthy_wait())

        asyncio.run(main())
        hanging.clear_faults()
    assert answered_by_hanging_when_healthy_done == [0]  # it never queued behind the hanging host


def test_the_shared_client_gives_each_request_in_flight_its_own_connection_and_reuses_them(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpcore walks its whole pool whenever a request starts or ends, with a keep-alive check
    quadratic in the pool's size; a triggerer's shared client gives each request in flight a lane of
    one connection instead. Counted: httpcore's connection-state checks a request (about 1,000 a
    request with one pool of 16), requests in flight, connections opened, TLS contexts built."""
    import ssl

    from httpcore._async.connection import AsyncHTTPConnection

    from airflow_provider_stop.hooks.client_pool import SHARED_POOL_SIZE

    checks = 0
    is_idle = AsyncHTTPConnection.is_idle

    def counted(self: AsyncHTTPConnection) -> bool:
        nonlocal checks
        checks += 1
        return is_idle(self)

    monkeypatch.setattr(AsyncHTTPConnection, "is_idle", counted)
    contexts = 0
    create_default_context = ssl.create_default_context

    def counted_context(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        nonlocal contexts
        contexts += 1
        return create_default_context(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted_context)
    names = [f"p{i}" for i in range(48)]
    for name in names:
        feldera.add_pipeline(name)
    feldera.latency = 0.05  # the reads overlap
    h = FelderaHook()

    async def rounds() -> None:
        async with h.async_client() as client:
            for _ in range(3):
                await asyncio.gather(*(h.aget_status(client, n) for n in names))

    feldera.reset_log()
    asyncio.run(rounds())
    assert len(feldera.requests) == 3 * len(names)
    assert feldera.peak_in_flight == SHARED_POOL_SIZE  # as many in flight as before, never more
    assert len({r.client for r in feldera.requests}) == SHARED_POOL_SIZE  # each kept and reused
    assert checks / len(feldera.requests) < 20
    assert contexts == 1  # one TLS context for all the lanes (each costs about 50 ms to build)


def test_waits_that_start_together_share_one_connection_lookup(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A triggerer restart brings back every wait at once: they look the connection up once (one call
    to the secrets backend), and a wait that starts later looks it up again (a rotated credential is
    seen); a failed lookup fails each of them."""
    from airflow_provider_stop import _compat

    asked: list[str] = []
    lookup = _compat.get_async_connection

    async def counted(conn_id: str, **kwargs: Any) -> Any:
        asked.append(conn_id)
        return await lookup(conn_id, **kwargs)

    monkeypatch.setattr(_compat, "get_async_connection", counted)
    use_connection(monkeypatch, "feldera_other", feldera.connection())

    async def main() -> None:
        hooks = [FelderaHook() for _ in range(50)] + [FelderaHook("feldera_other") for _ in range(3)]
        configs = await asyncio.gather(*(h.aconfig() for h in hooks))
        assert {c.base_url for c in configs} == {feldera.url + "/v0"}
        assert sorted(asked) == ["feldera_default", "feldera_other"]
        await FelderaHook().aconfig()
        assert asked.count("feldera_default") == 2
        missing = [FelderaHook("no_such_connection").aconfig() for _ in range(3)]
        failures = await asyncio.gather(*missing, return_exceptions=True)
        assert all("no_such_connection" in str(f) for f in failures)  # each wait hears of it
        assert asked.count("no_such_connection") == 1

    asyncio.run(main())
