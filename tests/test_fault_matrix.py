"""Every service, every path, every fault: the right final state or a named error, within the deadline,
never a stop sent again once the service answered it, and retries that end at the budget."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_stop.testing.base import Emulator
from tests.conftest import use_connection
from tests.matrix import DRIVERS, HOOK, PATHS, Driver, NotifierReported, run_path


@dataclass(frozen=True)
class Fault:
    """One fault, how to inject it, and what every path must end with."""

    name: str
    kind: str | None = None
    inject: dict[str, Any] | None = None
    #: None: success; otherwise the words the error (or the notifier's report) must contain.
    error: tuple[str, ...] | None = None


FAULTS = [
    Fault("429 with Retry-After", "status", {"status": 429, "retry_after": "0.05"}),
    Fault("429 without Retry-After", "status", {"status": 429}),
    Fault("500", "status", {"status": 500}),
    Fault("503 burst inside the retry budget", "status", {"status": 503, "times": HOOK["max_attempts"] - 1}),
    Fault("503 burst beyond the retry budget", "status", {"status": 503, "times": 1000}, ("HTTP 503",)),
    Fault("connection refused", None, None, ("ConnectionError", "ConnectError")),
    Fault("dropped before the response", "drop"),
    Fault("dropped mid-body", "drop_mid_body"),
    Fault("read timeout", "slow", {"delay": HOOK["request_timeout"] * 3}),
    Fault("malformed JSON", "malformed"),
    Fault("HTML error page", "html", {"status": 502}),
    Fault("empty body", "empty"),
    Fault("unknown state string", None, None, ("timed out", "still running")),
]
#: The operator's / sensor's / notifier's timeout: long enough for every retry, short for a clean test.
TIMEOUT = 2.0


@pytest.fixture(scope="module", params=list(DRIVERS))
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Driver, Emulator]]:
    """One emulator per service for the module; every scenario resets its log and faults."""
    drv = DRIVERS[request.param]
    emu = drv.make()
    emu.start()
    yield drv, emu
    emu.stop()


_ids = itertools.count()


def describe(outcome: Any) -> str:
    return f"{type(outcome).__name__}: {outcome}" if isinstance(outcome, BaseException) else repr(outcome)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault(
    served: tuple[Driver, Emulator], path: str, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    drv, emu = served
    tid = f"fm-{drv.service}-{next(_ids)}"
    drv.add(emu, tid)
    conn = drv.connection(emu)
    use_connection(monkeypatch, f"{drv.service}_default", conn)
    if path == "sensor":  # a sensor sends no stop: the stop went out (cleanly) before it
        drv.hook().stop(tid, **drv.options)
    if fault.name == "connection refused":  # nothing listens on the discard port
        use_connection(monkeypatch, f"{drv.service}_default", {**conn, "host": "http://127.0.0.1:9"})
    if fault.name == "unknown state string":
        drv.report_unknown_state(emu, tid)
    emu.clear_faults()
    assert emu.wait_idle()
    emu.reset_log()
    if fault.kind is not None:
        emu.inject(fault.kind, **(fault.inject or {}))  # type: ignore[arg-type]

    started = time.monotonic()
    outcome: Any
    try:
        outcome = run_path(drv, path, tid, TIMEOUT)
    except Exception as exc:  # the outcome is compared below
        outcome = exc
    elapsed = time.monotonic() - started
    emu.clear_faults()
    assert emu.wait_idle()  # a stop the client gave up on still lands: count it here

    # Nothing hangs: every path ends within its own timeout plus the retry budget of one request.
    assert elapsed < TIMEOUT + 5, f"{path} took {elapsed:.1f}s"
    stops = drv.stops_handled(emu)
    expected_stops = 0 if path == "sensor" else 1
    error = fault.error
    if fault.name == "unknown state string":
        if drv.refuses_stop_in_unknown_state and path != "sensor":
            # The service refuses the stop (the target is not running as far as it knows), and the
            # confirming GET reads a state the hook does not know: never taken for stopped.
            error = ("stop failed for 1 of 1", tid)
        elif path == "stop":  # not waiting: the stop is accepted, and the state is not claimed
            assert not isinstance(outcome, BaseException), describe(outcome)
            assert outcome[tid]["stopped"] is False and stops == 1
            return
    if error is None:
        assert not isinstance(outcome, BaseException), describe(outcome)
        assert tid in outcome
        if path != "stop":
            assert outcome[tid]["stopped"] is True, outcome
        # The stop reached the service once. A read timeout is the one fault where the service acted
        # but the client never saw the answer, so a second (idempotent) stop is legitimate.
        if fault.kind == "slow" and path != "sensor":
            assert stops in (1, 2)
        else:
            assert stops == expected_stops
        waited = drv.hook().wait_until_stopped([tid], poll_interval=0.05, deadline=time.time() + 5)
        assert waited[tid].stopped
        return
    # A named error with a clear message naming the target, or the notifier's report of it.
    assert isinstance(outcome, BaseException), f"expected an error, got {outcome!r}"
    text = describe(outcome)
    assert any(word in text for word in error), text
    if fault.name != "connection refused":
        assert tid in text or isinstance(outcome, NotifierReported), text
    if fault.name == "503 burst beyond the retry budget":
        # Retries stop at the budget: the first request was tried exactly max_attempts times.
        assert len(emu.requests) == HOOK["max_attempts"], [r.path for r in emu.requests]
        assert stops == 0
    if fault.name == "unknown state string":
        assert stops == expected_stops
