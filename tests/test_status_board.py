"""The triggerer's status board: the waits on one connection in one event loop share their reads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_stop.testing.feldera import FelderaEmulator
from airflow_provider_stop.triggers import board as board_module
from airflow_provider_stop.triggers.wait import StopWaitTrigger
from tests.conftest import FAST_RETRIES, use_connection
from tests.matrix import first_event

FELDERA = "airflow_provider_stop.hooks.feldera.FelderaHook"


def trigger(name: str, *, conn_id: str = "feldera_default", seconds: float = 20.0, poll: float = 0.2) -> Any:
    return StopWaitTrigger(
        hook_class_path=FELDERA,
        conn_id=conn_id,
        target_ids=[name],
        poll_interval=poll,
        deadline=time.time() + seconds,
        hook_params=dict(FAST_RETRIES),
    )


async def all_events(triggers: list[Any]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(first_event(t) for t in triggers)))


def status_reads(emu: FelderaEmulator) -> list[Any]:
    return [r for r in list(emu.requests) if r.method == "GET"]


def test_many_waits_on_one_connection_share_one_read_a_poll(feldera: FelderaEmulator) -> None:
    feldera.settings.stopping_seconds = 1.0
    names = [f"p{i}" for i in range(100)]
    for name in names:
        feldera.add_pipeline(name)
    from airflow_provider_stop.hooks.feldera import FelderaHook

    FelderaHook("feldera_default", **FAST_RETRIES).stop_many(names, force=True)
    feldera.reset_log()
    started = time.time()
    events = asyncio.run(all_events([trigger(n) for n in names]))
    elapsed = time.time() - started
    assert [e["status"] for e in events] == ["success"] * len(names)
    reads = status_reads(feldera)
    polls = elapsed / 0.2 + 1
    # Old code: one read per wait per poll (100 a poll). Now: the list, at most twice a poll interval.
    assert len(reads) <= 2 * polls, (len(reads), polls)
    # A round left with one pipeline may read it by id (one request either way); the rest read the list.
    assert any(r.path == "/v0/pipelines" for r in reads)


def test_two_connections_to_one_host_never_share_a_board(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = feldera.connection()
    use_connection(monkeypatch, "feldera_a", {**base, "extra": {"tenant": "tenant-a"}})
    use_connection(
        monkeypatch, "feldera_b", {**base, "password": "apikey:s3cret", "extra": {"tenant": "tenant-b"}}
    )
    feldera.add_pipeline("a1", running=False)
    feldera.add_pipeline("b1", running=False)
    keys: list[tuple[str, ...]] = []
    joined = board_module.joined_board

    def spy(key: tuple[str, str, str], poll: float, deadline: float) -> Any:
        keys.append(key)
        return joined(key, poll, deadline)

    monkeypatch.setattr("airflow_provider_stop.triggers.wait.joined_board", spy)
    events = asyncio.run(all_events([trigger("a1", conn_id="feldera_a"), trigger("b1", conn_id="feldera_b")]))
    assert [e["status"] for e in events] == ["success", "success"]
    assert len(set(keys)) == 2 and all("s3cret" not in part for key in keys for part in key)
    # Shared, one tenant's read would have carried the other's pipeline (as one list read).
    for r in status_reads(feldera):
        tenant = r.headers.get("feldera-tenant")
        assert r.path == f"/v0/pipelines/{tenant[-1]}1", (r.path, tenant)


def test_a_failed_read_reaches_every_waiter(feldera: FelderaEmulator) -> None:
    names = [f"f{i}" for i in range(20)]
    for name in names:
        feldera.add_pipeline(name)
    feldera.inject("status", status=500, times=10_000, method="GET")
    events = asyncio.run(all_events([trigger(n) for n in names]))
    assert [e["status"] for e in events] == ["error"] * len(names)
    for name, event in zip(names, events, strict=True):
        assert name in event["message"], event
    # Each waiter got its own failure, but the reads were shared: far fewer than one chain per waiter.
    assert len(status_reads(feldera)) < len(names) * FAST_RETRIES["max_attempts"]


def test_each_wait_keeps_its_own_deadline(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("stuck")
    feldera.add_pipeline("done", running=False)
    feldera.override_state("stuck", "Running")
    started = time.time()
    events = asyncio.run(all_events([trigger("stuck", seconds=0.6), trigger("done", seconds=20)]))
    assert [e["status"] for e in events] == ["timeout", "success"]
    assert events[0]["pending"] == ["stuck"] and time.time() - started < 5
    assert not board_module._boards or all(not boards for boards in board_module._boards.values())


def test_waits_that_started_apart_join_one_list_read(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two groups of waits a moment apart would read in turns, each group its own list read; a round
    of a list-reading board wakes the sleeping waits, so after the first rounds every read serves all."""
    from airflow_provider_stop.hooks.feldera import FelderaHook

    for name in [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]:
        feldera.add_pipeline(name)
        feldera.override_state(name, "Running")  # never stops: every wait reads until its deadline
    reads: list[set[str]] = []
    real = FelderaHook.aread_statuses

    async def spy(self: Any, client: Any, target_ids: Any) -> Any:
        reads.append(set(target_ids))
        return await real(self, client, target_ids)

    monkeypatch.setattr(FelderaHook, "aread_statuses", spy)

    a, b = ([trigger(f"{g}{i}", seconds=3, poll=0.6) for i in range(5)] for g in "ab")  # one deadline

    async def main() -> list[dict[str, Any]]:
        first = [asyncio.ensure_future(first_event(t)) for t in a]
        await asyncio.sleep(0.3)  # the second group starts half a poll later
        return list(await asyncio.gather(*first, *(first_event(t) for t in b)))

    events = asyncio.run(main())
    assert [e["status"] for e in events] == ["timeout"] * 10
    groups = [{name[0] for name in ids} for ids in reads]
    assert len(reads) >= 4 and all(g == {"a", "b"} for g in groups[2:]), groups
