"""Rainforest answers with or without ``request_info``: unconfirmed on successful reads (only the
SerpWow docs and third-party code show it), so every path is run against both answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_stop.hooks.rainforest import RainforestHook
from airflow_provider_stop.notifications.rainforest import RainforestStopCollectionNotifier
from airflow_provider_stop.operators.rainforest import (
    RainforestStopAllCollectionsOperator,
    RainforestStopCollectionOperator,
)
from airflow_provider_stop.sensors.rainforest import RainforestCollectionStoppedSensor
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from tests.conftest import FAST_RETRIES, use_connection
from tests.matrix import run_deferrable

FAST: dict[str, Any] = {"poll_interval": 0.05, "timeout": 10, "hook_params": FAST_RETRIES}
#: One attempt: a read taken for malformed would fail at once instead of being retried.
STRICT: dict[str, Any] = {**FAST_RETRIES, "max_attempts": 1}


@pytest.fixture(params=[True, False], ids=["with-request_info", "without-request_info"])
def emu(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[RainforestEmulator]:
    with RainforestEmulator(queue_seconds=0.0, success_request_info=request.param) as emulator:
        use_connection(monkeypatch, "rainforest_default", emulator.connection())
        yield emulator


def test_hook_reads_status_stops_and_lists(emu: RainforestEmulator) -> None:
    emu.add_collection("c1", name="nightly one")
    emu.add_collection("c2", status="idle")
    h = RainforestHook(**STRICT)
    assert h.get_status("c1").raw_state == "running"
    assert sorted(s.target_id for s in h.list_targets()) == ["c1", "c2"]
    ack = h.stop("c1")
    assert not ack.already_stopped
    assert ack.message == ("Collection stopped" if emu.settings.success_request_info else "stopped")
    assert h.get_status("c1").stopped
    assert h.stop("c2").already_stopped  # the refusal (an error) always carries request_info
    assert h.test_connection()[0]


@pytest.mark.parametrize("path", ["in_place", "deferred", "sensor", "notifier", "notifier_async"])
def test_every_path_stops_and_confirms(emu: RainforestEmulator, path: str) -> None:
    emu.add_collection("c1")
    common: dict[str, Any] = {"collection_id": "c1", "hook_params": STRICT}
    if path in ("in_place", "deferred"):
        task = RainforestStopCollectionOperator(
            task_id="stop", deferrable=path == "deferred", poll_interval=0.05, timeout=10, **common
        )
        assert run_deferrable(task)["c1"]["raw_state"] == "idle"
    elif path == "sensor":
        RainforestHook(**STRICT).stop("c1")
        sensor = RainforestCollectionStoppedSensor(
            task_id="wait", poke_interval=0.05, timeout=10, deferrable=True, **common
        )
        run_deferrable(sensor)
    elif path == "notifier":
        notifier = RainforestStopCollectionNotifier(wait_for_completion=True, poll_interval=0.05, **common)
        notifier.notify({})
        assert notifier.result["error"] is None, notifier.result["error"]
    else:
        notifier = RainforestStopCollectionNotifier(wait_for_completion=True, poll_interval=0.05, **common)
        result = asyncio.run(notifier.async_notify({}))
        assert result["error"] is None, result["error"]
    assert emu.status_of("c1") == "idle"


@pytest.mark.parametrize("name_pattern", [None, "nightly*"], ids=["stopall", "filtered"])
def test_stop_all(emu: RainforestEmulator, name_pattern: str | None) -> None:
    emu.add_collection("n1", name="nightly one")
    emu.add_collection("d1", name="daily one")
    task = RainforestStopAllCollectionsOperator(
        task_id="stop_all", name_pattern=name_pattern, poll_interval=0.05, timeout=10, hook_params=STRICT
    )
    result = task.execute({})
    assert sorted(result) == (["d1", "n1"] if name_pattern is None else ["n1"])
    assert emu.status_of("n1") == "idle"
    assert emu.status_of("d1") == ("idle" if name_pattern is None else "running")
