"""Rainforest list reads ask for the largest page the API takes (issue 28).

SerpWow's List Batches page (https://docs.trajectdata.com/serpwow/batches-api/batches/list; the same API
family and answer shape, ``current_page``/``total_pages``) documents ``page_size`` up to 1000, 25 a
page by default. The collections pages do not mention it, so the emulator serves every plausible
answer: ``honoured`` (the documented one), ``ignored`` (accepted, 25 a page) and ``refused`` (400). At
the documented 60 list requests a minute, 10,000 collections cost 10 list requests instead of 400.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_stop import process_state
from airflow_provider_stop.hooks.rainforest import RainforestHook
from airflow_provider_stop.operators.rainforest import RainforestStopAllCollectionsOperator
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from tests.conftest import FAST_RETRIES, LogCapture, use_connection

FAST: dict[str, Any] = {"poll_interval": 0.05, "timeout": 30, "hook_params": FAST_RETRIES}


def serve(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[RainforestEmulator]:
    """The documented list: pages of 25 unless ``page_size`` (at most 1000) asks otherwise, with
    ``current_page``/``total_pages``; the list's limit and the hook's pace raised so tests run fast."""
    process_state.reset()
    defaults: dict[str, Any] = {
        "queue_seconds": 0.0,
        "list_paging": "total_pages",
        "list_page_size": 1000,
        "default_page_size": 25,
        "list_limit_per_minute": 100_000,
    }
    with RainforestEmulator(**{**defaults, **settings}) as emu:
        conn = emu.connection()
        conn["extra"] = {**conn["extra"], "list_requests_per_minute": 100_000}
        use_connection(monkeypatch, "rainforest_default", conn)
        yield emu


@pytest.fixture(params=["honoured", "ignored", "refused"])
def answer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[RainforestEmulator]:
    yield from serve(monkeypatch, page_size_param=request.param)


def lists(emu: RainforestEmulator) -> list[Any]:
    return [r for r in list(emu.requests) if r.method == "GET" and r.path == "/collections"]


def populate(emu: RainforestEmulator, count: int, status: str = "running") -> list[str]:
    """``count`` collections; one in a thousand (ids ending 777) is named ``nightly …``."""
    ids = [f"c{i:05d}" for i in range(count)]
    for cid in ids:
        emu.add_collection(
            cid, status=status, name=f"nightly {cid}" if cid.endswith("777") else f"daily {cid}"
        )
    return ids


# ---- stop-all's list: 1000 a page where the server takes it, 25 a page where it does not -------
def test_stop_all_lists_1000_collections_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: no ``page_size``, so 2,500 collections took 100 list requests of 25."""
    for emu in serve(monkeypatch):
        ids = populate(emu, 2500)
        assert sorted(RainforestHook(**FAST_RETRIES).running_targets()) == ids
        sent = lists(emu)
        assert [r.query.get("page_size") for r in sent] == [["1000"]] * 3
        assert [r.query.get("page", ["1"]) for r in sent] == [["1"], ["2"], ["3"]]


def test_every_answer_to_page_size_still_reads_every_collection(answer: RainforestEmulator) -> None:
    ids = populate(answer, 60)
    h = RainforestHook(**FAST_RETRIES)
    assert sorted(h.running_targets()) == ids
    sent = lists(answer)
    mode = answer.settings.page_size_param
    if mode == "honoured":
        assert [r.query["page_size"] for r in sent] == [["1000"]]
    elif mode == "ignored":  # asked every page, answered 25 a page: every page is read
        assert [r.query["page_size"] for r in sent] == [["1000"]] * 3
    else:  # refused once (400), then the default pages, without the parameter
        assert [r.query.get("page_size") for r in sent] == [["1000"], None, None, None]


def test_a_refused_page_size_is_remembered_for_the_connection(
    monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """The refusal costs one list request, once a process and connection (the list's budget is 60 a
    minute): later reads, stop-all or status, go without it."""
    for emu in serve(monkeypatch, page_size_param="refused"):
        ids = populate(emu, 60)
        assert sorted(RainforestHook(**FAST_RETRIES).running_targets()) == ids
        assert "page_size=1000 was refused" in logs.text()
        emu.reset_log()
        assert sorted(RainforestHook(**FAST_RETRIES).running_targets()) == ids
        assert [r.query.get("page_size") for r in lists(emu)] == [None, None, None]
        emu.reset_log()
        RainforestHook(**FAST_RETRIES).get_statuses(ids[:30])
        assert all("page_size" not in r.query for r in lists(emu))


def test_another_list_failure_is_not_taken_for_a_refused_page_size(monkeypatch: pytest.MonkeyPatch) -> None:
    for emu in serve(monkeypatch):
        populate(emu, 3)
        emu.inject("status", status=402, times=1, method="GET", path="/collections")
        from airflow_provider_stop.hooks.errors import PaymentRequiredError

        with pytest.raises(PaymentRequiredError):
            RainforestHook(**FAST_RETRIES).running_targets()
        emu.reset_log()
        RainforestHook(**FAST_RETRIES).running_targets()
        assert [r.query.get("page_size") for r in lists(emu)] == [["1000"]]  # still asked


def test_a_filtered_stop_all_over_10000_collections_reads_10_list_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's figure: 10,000 collections (the account limit) are 400 list requests of 25, about 7
    minutes at the documented 60 a minute; with ``page_size=1000`` they are 10."""
    for emu in serve(monkeypatch):
        populate(emu, 10_000)
        task = RainforestStopAllCollectionsOperator(task_id="stop_all", name_pattern="nightly*", **FAST)
        result = task.execute({})
        assert len(result) == 10 and all(r["raw_state"] == "idle" for r in result.values())
        assert emu.count(path="*/stopall") == 0
        stop_all_list = lists(emu)[:10]
        assert [r.query["page_size"] for r in stop_all_list] == [["1000"]] * 10
        assert [r.query.get("page", ["1"])[0] for r in stop_all_list] == [str(p) for p in range(1, 11)]


# ---- status reads: the same pages, so a read stops early and still costs fewer requests ----------
def test_a_status_read_sees_far_more_collections_per_list_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """30 collections spread over 2,500: three list pages of 1000 show them all, nothing is read by
    id. Before: one page of 25 showed one of them, and the other 29 were read by id."""
    for emu in serve(monkeypatch):
        ids = populate(emu, 2500, status="idle")
        wanted = ids[::84][:30]
        h = RainforestHook(**FAST_RETRIES)
        statuses = h.get_statuses(wanted)
        assert set(statuses) == set(wanted) and all(s.stopped for s in statuses.values())
        by_id = [r for r in list(emu.requests) if r.path.startswith("/collections/")]
        assert len(lists(emu)) == 3 and by_id == []


def test_a_status_read_takes_at_most_three_pages_of_1000(monkeypatch: pytest.MonkeyPatch) -> None:
    for emu in serve(monkeypatch):
        ids = populate(emu, 5000, status="idle")
        wanted = ids[::100]  # 50, 10 of them beyond the third page
        statuses = RainforestHook(**FAST_RETRIES).get_statuses(wanted)
        assert set(statuses) == set(wanted)
        by_id = [r for r in list(emu.requests) if r.path.startswith("/collections/")]
        assert len(lists(emu)) == 3 and len(by_id) == 20


def test_the_documented_pace_of_large_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the documented 60 list requests a minute: 2,500 collections in three pages take about two
    seconds (the pacer's first request is free), not 99."""
    for emu in serve(monkeypatch, list_limit_per_minute=60):
        conn = emu.connection()
        use_connection(monkeypatch, "rainforest_default", conn)  # the default pace: 60 a minute
        populate(emu, 2500)
        started = time.monotonic()
        assert len(RainforestHook(**FAST_RETRIES).running_targets()) == 2500
        assert 1.9 <= time.monotonic() - started < 10
        assert len(lists(emu)) == 3


# ---- the emulator --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "page_size", "status", "items"),
    [
        ("honoured", None, 200, 25),
        ("honoured", "1000", 200, 1000),
        ("honoured", "7", 200, 7),
        ("honoured", "1001", 400, None),
        ("honoured", "0", 400, None),
        ("honoured", "ten", 400, None),
        ("ignored", "1000", 200, 25),
        ("ignored", "1001", 200, 25),
        ("refused", "1000", 400, None),
        ("refused", None, 200, 25),
    ],
)
def test_the_emulator_serves_each_answer_to_page_size(
    monkeypatch: pytest.MonkeyPatch, mode: str, page_size: str | None, status: int, items: int | None
) -> None:
    for emu in serve(monkeypatch, page_size_param=mode):
        populate(emu, 1200, status="idle")
        params = {"api_key": emu.settings.api_key}
        if page_size is not None:
            params["page_size"] = page_size
        answer = requests.get(f"{emu.url}/collections", params=params, timeout=10)
        assert answer.status_code == status
        body = answer.json()
        if status != 200:
            assert body["request_info"]["success"] is False
            return
        assert len(body["collections"]) == items
        assert body["current_page"] == 1 and body["total_pages"] == -(-1200 // items)


def test_the_emulator_s_largest_page_caps_what_page_size_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    for emu in serve(monkeypatch, list_page_size=10):
        populate(emu, 30)
        params = {"api_key": emu.settings.api_key, "page_size": "1000"}
        body = requests.get(f"{emu.url}/collections", params=params, timeout=5).json()
        assert len(body["collections"]) == 10 and body["total_pages"] == 3
