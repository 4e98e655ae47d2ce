"""The account's rate limit across processes (``hooks/shared_limit.py``) and the process's own pace
(``hooks/pacing.py``): keys without secrets in a real Redis, a storage that is down or slow never
failing a stop (one warning), the slow-down after a 429, and the worker's polling before it defers
going through the same limiter. N processes against the emulator: ``test_shared_limit_processes.py``."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_stop import process_state
from airflow_provider_stop.hooks import shared_limit
from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.hooks.dataforseo import DataForSeoHook
from airflow_provider_stop.hooks.pacing import MIN_FRACTION, RECOVERY_STEP, RatePacer
from airflow_provider_stop.hooks.rainforest import RainforestHook
from airflow_provider_stop.hooks.shared_limit import RateLimit, SharedLimiter
from airflow_provider_stop.testing.amperity import AmperityEmulator
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from e2e.servers import free_port
from tests.conftest import FAST_RETRIES, LogCapture

STORAGE = "AIRFLOW__STOP_PROVIDER__RATE_LIMIT_STORAGE"
TIMEOUT = "AIRFLOW__STOP_PROVIDER__RATE_LIMIT_STORAGE_TIMEOUT"
WARNING = "is not usable"


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Paces and limiters are per process: each test starts as a new process would."""
    process_state.reset()
    yield
    process_state.reset()


def redis_keys(url: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys: list[bytes] = client.keys("*")  # type: ignore[assignment]
        return sorted(k.decode() for k in keys)
    finally:
        client.close()


def forms_of(secret: str) -> list[str]:
    """A secret as it could leak: raw, percent-encoded, base64 (alone and as ``login:secret``)."""
    return [
        secret,
        urllib.parse.quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
    ]


# ---- the process's own pace ---------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_rate_limit_answer_halves_the_pace_once_per_burst_and_answers_win_it_back() -> None:
    clock = Clock()
    pacer = RatePacer(8.0, clock=clock)
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.125, 0.25]
    assert pacer.slow_down() and pacer.rate == 4.0
    assert not pacer.slow_down() and pacer.rate == 4.0  # the same burst of 429s: one signal
    clock.now += 1.0
    assert pacer.slow_down() and pacer.rate == 2.0
    for _ in range(10):
        clock.now += 1.0
        pacer.slow_down()
    assert pacer.rate == 8.0 * MIN_FRACTION  # never below a sixteenth of the pace
    pacer.recover()
    assert pacer.rate == pytest.approx(8.0 * (MIN_FRACTION + RECOVERY_STEP))
    for _ in range(100):
        pacer.recover()
    assert pacer.rate == 8.0


def test_a_429_slows_the_process_down_and_retry_after_is_still_honoured(
    amperity: AmperityEmulator, logs: LogCapture
) -> None:
    amperity.add_run("wf-1")
    hook = AmperityHook(**{**FAST_RETRIES, "retry_max_wait": 5})
    hook.get_status("wf-1")  # the token and one read at the full pace
    limit = hook.rate_limit(hook.build_status_request("wf-1"))
    assert limit is not None and shared_limit.current_pace(limit) == 500
    amperity.inject("status", status=429, retry_after="1", times=1, method="GET")
    assert hook.get_status("wf-1").target_id == "wf-1"
    # halved by the 429, one step back for the answer that followed
    assert shared_limit.current_pace(limit) == pytest.approx(500 / 2 + 500 * RECOVERY_STEP)
    text = logs.text()
    assert "retrying in 1.0s" in text  # Retry-After: 1, not the 0.01 s backoff
    assert "this process now paces requests at 2.5e+02 requests a second" in text


# ---- the shared window ---------------------------------------------------------------------------
def test_two_processes_share_one_window_in_redis(redis_url: str) -> None:
    """Two limiters on one storage are two processes: one slot a window, whoever takes it."""
    limit = RateLimit("amperity", "app.amperity.com", "acme", per_second=1 / 30)
    assert limit.window() == (1, 30)
    first, second = SharedLimiter(redis_url), SharedLimiter(redis_url)
    assert first.take(limit) == (True, 0.0)
    granted, wait = second.take(limit)
    assert not granted and 0 < wait <= 30
    other_tenant = RateLimit("amperity", "app.amperity.com", "globex", per_second=1 / 30)
    assert second.take(other_tenant) == (True, 0.0)
    assert redis_keys(redis_url) == [
        "LIMITS:stop_provider/amperity/app.amperity.com/acme/requests",
        "LIMITS:stop_provider/amperity/app.amperity.com/globex/requests",
    ]


def test_windows_follow_the_pace_never_faster() -> None:
    assert RateLimit("a", "h", "x", 8.0).window() == (8, 1)
    assert RateLimit("a", "h", "x", 8.9).window() == (8, 1)
    assert RateLimit("a", "h", "x", 1.0).window() == (1, 1)
    assert RateLimit("a", "h", "x", 0.4).window() == (1, 3)


def test_an_async_storage_uri_is_used_in_threads(redis_url: str) -> None:
    limit = RateLimit("dataforseo", "api.dataforseo.com", "me@example.com", per_second=30.0)
    shared = SharedLimiter("async+" + redis_url)
    assert shared.uri == redis_url
    assert asyncio.run(shared.aacquire(limit)) and shared.shared == 1


def test_storage_keys_name_service_host_and_account_and_hold_no_secret(
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    amperity: AmperityEmulator,
) -> None:
    monkeypatch.setenv(STORAGE, redis_url)
    rainforest, dfs = RainforestEmulator(queue_seconds=0.05), DataForSeoEmulator(stop_delay_seconds=0.1)
    with rainforest, dfs:
        from tests.conftest import use_connection

        use_connection(monkeypatch, "rainforest_default", rainforest.connection())
        use_connection(
            monkeypatch, "dataforseo_default", {**dfs.connection(), "extra": {"requests_per_second": 1000}}
        )
        rainforest.add_collection("c1", status="running")
        dfs.add_task("t1")
        amperity.add_run("wf-1")

        # Each window expires with its own length (Rainforest's: one second), so the keys are read
        # right after each account's calls, not once at the end (a slow wait let one expire before).
        RainforestHook(**FAST_RETRIES).running_targets()  # the list: Rainforest's limited call
        seen = set(redis_keys(redis_url))
        DataForSeoHook(**FAST_RETRIES).stop("t1")
        seen |= set(redis_keys(redis_url))
        amperity_hook = AmperityHook(**FAST_RETRIES)
        amperity_hook.stop("wf-1")
        assert amperity_hook.wait_until_stopped(["wf-1"], poll_interval=0.05, deadline=time.time() + 10)
        keys = sorted(seen | set(redis_keys(redis_url)))
        secrets = [
            rainforest.connection()["password"],
            dfs.connection()["password"],
            amperity.settings.client_secret,
            amperity.settings.access_token,
            *(token for token in amperity.tokens),
        ]
    rf_host = urllib.parse.urlsplit(rainforest.url).netloc
    digest = RainforestHook(**FAST_RETRIES).config.settings["account"]
    assert len(digest) == 16 and keys == sorted(
        [
            f"LIMITS:stop_provider/amperity/{urllib.parse.urlsplit(amperity.url).netloc}/acme/requests",
            f"LIMITS:stop_provider/dataforseo/{urllib.parse.urlsplit(dfs.url).netloc}/"
            f"{dfs.connection()['login']}/requests",
            f"LIMITS:stop_provider/rainforest/{rf_host}/{digest}/list",
        ]
    )
    for secret in secrets:
        for form in forms_of(secret):
            assert not [k for k in keys if form in k], "a secret is in a storage key"


# ---- a storage that is down or slow ------------------------------------------------------------
def warnings_in(text: str) -> int:
    return text.count(WARNING)


def test_a_storage_that_is_down_never_fails_a_stop_and_warns_once(
    amperity: AmperityEmulator, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    closed = free_port()  # nothing listens there
    monkeypatch.setenv(STORAGE, f"redis://:storage-password@127.0.0.1:{closed}/0")
    for run_id in ("wf-1", "wf-2"):
        amperity.add_run(run_id)
    for run_id in ("wf-1", "wf-2"):  # two tasks of one process
        hook = AmperityHook(**FAST_RETRIES)
        assert hook.stop(run_id).accepted
        hook.wait_until_stopped([run_id], poll_interval=0.05, deadline=time.time() + 10)
    text = logs.text()
    assert warnings_in(text) == 1, text
    assert f"redis://127.0.0.1:{closed}/0" in text and "storage-password" not in text
    used = shared_limit.limiter(f"redis://:storage-password@127.0.0.1:{closed}/0", 0.5)
    assert used.shared == 0 and used.alone >= 1  # asked once, then paced alone for a while


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers (a storage that hangs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def test_a_slow_storage_is_given_up_after_its_timeout_on_the_worker_and_in_the_loop(
    amperity: AmperityEmulator, monkeypatch: pytest.MonkeyPatch, logs: LogCapture, black_hole: int
) -> None:
    monkeypatch.setenv(STORAGE, f"redis://127.0.0.1:{black_hole}")
    monkeypatch.setenv(TIMEOUT, "0.2")
    amperity.add_run("wf-1")
    assert AmperityHook(**FAST_RETRIES).stop("wf-1").accepted
    process_state.reset()  # the triggerer: another process, which has not met the storage yet

    async def in_the_triggerer() -> tuple[str | None, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        running = asyncio.create_task(ticker())
        hook = AmperityHook(**FAST_RETRIES)
        async with hook.async_client() as client:
            status = await hook.aget_status(client, "wf-1")
        running.cancel()
        return status.raw_state, ticks

    state, ticks = asyncio.run(in_the_triggerer())
    assert state in ("canceling", "canceled")
    assert ticks >= 5  # the loop ran other work while the storage did not answer
    assert warnings_in(logs.text()) == 2  # once per process: the worker's, the triggerer's


# ---- every request of a task goes through it: the polling before a deferral too ---------------
def test_the_workers_polling_before_it_defers_takes_the_shared_slots(
    amperity: AmperityEmulator, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_stop.operators.amperity import AmperityStopWorkflowRunOperator

    monkeypatch.setenv(STORAGE, redis_url)
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__WAIT_BEFORE_DEFER", "30")
    amperity.add_run("wf-1")
    operator = AmperityStopWorkflowRunOperator(
        task_id="stop", workflow_run_id="wf-1", deferrable=True, poll_interval=0.05, hook_params=FAST_RETRIES
    )
    context: Any = {}
    result = operator.execute(context)  # done within wait_before_defer: no deferral
    assert result["wf-1"]["raw_state"] == "canceled"
    polls = amperity.count("GET", "/api/workflow/runs/wf-1") + amperity.count("GET", "/api/workflow/runs")
    assert polls >= 2
    used = shared_limit.limiter(redis_url, 0.5)
    assert used.shared == len(amperity.requests) and used.alone == 0  # the token, the stop, every poll


def test_a_read_that_finds_no_slot_before_its_waits_deadline_is_not_sent(redis_url: str) -> None:
    """Many processes held back until one deadline must not all send then: the read ends the wait."""
    from airflow_provider_stop.hooks import bounds
    from airflow_provider_stop.hooks.errors import RequestDeadlineError

    limit = RateLimit("amperity", "app.amperity.com", "acme", per_second=1 / 30)
    assert SharedLimiter(redis_url).acquire(limit)  # another process took the window's one slot
    late = SharedLimiter(redis_url)
    with bounds.wait_deadline(time.time() + 0.2), pytest.raises(RequestDeadlineError, match="deadline"):
        late.acquire(limit)
    assert late.shared == 0 and late.alone == 0
    with bounds.wait_deadline(time.time() + 0.2), pytest.raises(RequestDeadlineError):
        asyncio.run(late.aacquire(limit))
    assert late.acquire(RateLimit("amperity", "app.amperity.com", "globex", per_second=1 / 30))


def test_a_storage_that_cannot_be_made_is_reported_once_and_never_fails_a_request(
    amperity: AmperityEmulator, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """A scheme whose client library is missing (or a typo): the setting is wrong, not the stop."""
    monkeypatch.setenv(STORAGE, "nosuchstorage://:storage-password@127.0.0.1:1/0")
    amperity.add_run("wf-1")
    hook = AmperityHook(**FAST_RETRIES)
    assert hook.stop("wf-1").accepted

    async def in_the_loop() -> str | None:
        async with hook.async_client() as client:
            return (await hook.aget_status(client, "wf-1")).raw_state

    assert asyncio.run(in_the_loop()) in ("canceling", "canceled")
    text = logs.text()
    assert warnings_in(text) == 1 and "storage-password" not in text, text
