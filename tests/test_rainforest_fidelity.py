"""Rainforest: unconfirmed answer details, each run against every plausible answer."""

from __future__ import annotations

import time

import pytest

from airflow_provider_stop.hooks.rainforest import RainforestHook
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from tests.conftest import FAST_RETRIES, LogCapture, use_connection


@pytest.mark.parametrize("object_key", [None, "batch", "collection"], ids=["default", "batch", "collection"])
def test_batches_are_read_whichever_key_the_object_comes_under(
    monkeypatch: pytest.MonkeyPatch, object_key: str | None
) -> None:
    """``batch`` for the batches products is inferred from third-party code; ``collection`` is read too."""
    with RainforestEmulator(resource="batches", object_key=object_key, queue_seconds=0.0) as emu:
        use_connection(monkeypatch, "rainforest_default", emu.connection())
        emu.add_collection("b1")
        h = RainforestHook(**{**FAST_RETRIES, "max_attempts": 1})
        assert h.get_status("b1").raw_state == "running"
        h.stop("b1")
        assert h.wait_until_stopped(["b1"], poll_interval=0.05, deadline=time.time() + 5)["b1"].stopped


@pytest.mark.parametrize("refund_message", [True, False], ids=["says-refunded", "silent"])
def test_a_refund_is_reported_only_when_the_answer_says_so(
    monkeypatch: pytest.MonkeyPatch, refund_message: bool
) -> None:
    with RainforestEmulator(refund_message=refund_message) as emu:
        use_connection(monkeypatch, "rainforest_default", emu.connection())
        emu.add_collection("q1", status="queued")
        ack = RainforestHook(**FAST_RETRIES).stop("q1")
        assert ack.options["credits_refunded"] is (True if refund_message else None)
        assert emu.status_of("q1") == "idle"


@pytest.mark.parametrize("stop_delay", [0.0, 0.3], ids=["immediate", "delayed"])
def test_the_wait_holds_whether_the_stop_is_immediate_or_not(
    monkeypatch: pytest.MonkeyPatch, stop_delay: float
) -> None:
    with RainforestEmulator(stop_delay_seconds=stop_delay, queue_seconds=0.0) as emu:
        use_connection(monkeypatch, "rainforest_default", emu.connection())
        emu.add_collection("c1")
        h = RainforestHook(**FAST_RETRIES)
        h.stop("c1")
        assert h.wait_until_stopped(["c1"], poll_interval=0.05, deadline=time.time() + 5)["c1"].stopped
        assert emu.count("GET", "/collections/c1") >= (2 if stop_delay else 1)


def test_an_undocumented_status_is_logged_and_counted_as_running(
    rainforest: RainforestEmulator, logs: LogCapture
) -> None:
    """Only idle, queued and running are documented; any other spelling is never taken for stopped."""
    rainforest.add_collection("c1", status_override="paused")
    status = RainforestHook(**FAST_RETRIES).get_status("c1")
    assert status.raw_state == "paused" and not status.stopped
    assert "unknown status 'paused'; treating it as running" in logs.text()
