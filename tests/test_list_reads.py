"""Waiting on many targets of one connection reads the service's list once per poll, not each id."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.hooks.data import TargetStatus
from airflow_provider_stop.hooks.datasift import DataSiftHook
from airflow_provider_stop.hooks.errors import (
    PermanentBatchStopError,
    ServiceUnavailableError,
    TargetNotFoundError,
    TransientBatchStopError,
)
from airflow_provider_stop.hooks.feldera import FelderaHook
from airflow_provider_stop.hooks.rainforest import RainforestHook
from airflow_provider_stop.testing.amperity import AmperityEmulator
from airflow_provider_stop.testing.datasift import DataSiftEmulator
from airflow_provider_stop.testing.feldera import FelderaEmulator
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from airflow_provider_stop.triggers.wait import StopWaitTrigger
from tests.conftest import FAST_RETRIES, LogCapture, use_connection
from tests.matrix import first_event

LIST = "/v0/pipelines"
BY_ID = "/v0/pipelines/*"


def hook(**kwargs: Any) -> FelderaHook:
    return FelderaHook("feldera_default", **{**FAST_RETRIES, **kwargs})


def test_many_pipelines_cost_one_list_read_a_poll(feldera: FelderaEmulator) -> None:
    names = [f"p{i}" for i in range(200)]
    for name in names:
        feldera.add_pipeline(name)
    h = hook()
    h.stop_many(names, force=True)
    feldera.reset_log()
    statuses = h.wait_until_stopped(names, poll_interval=0.05, deadline=time.time() + 30)
    assert all(s.stopped for s in statuses.values())
    reads = feldera.count("GET", LIST)
    assert reads >= 1 and feldera.count("GET", BY_ID) == 0
    assert feldera.count("GET") == reads  # nothing but list reads: one per poll


def test_the_deferred_wait_reads_the_list_too(feldera: FelderaEmulator) -> None:
    names = [f"q{i}" for i in range(50)]
    for name in names:
        feldera.add_pipeline(name, running=False)
    h = hook()

    async def wait() -> Any:
        async with h.async_client() as client:
            return await h.await_until_stopped(client, names, poll_interval=0.05, deadline=time.time() + 10)

    statuses = asyncio.run(wait())
    assert set(statuses) == set(names)
    assert feldera.count("GET", LIST) == 1 and feldera.count("GET", BY_ID) == 0


def test_a_pipeline_the_list_does_not_show_is_read_by_id(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("a", running=False)
    feldera.add_pipeline("b", running=False)
    h = hook()
    # "ghost" is not on the server: the list cannot show it, so it is read by id and its 404 reported.
    try:
        h.get_statuses(["a", "b", "ghost"])
    except PermanentBatchStopError as exc:
        assert set(exc.failures) == {"ghost"} and set(exc.succeeded) == {"a", "b"}
    else:  # pragma: no cover
        raise AssertionError("an unknown pipeline must fail")
    assert feldera.count("GET", LIST) == 1 and feldera.count("GET", "/v0/pipelines/ghost") == 1
    assert feldera.count("GET", "/v0/pipelines/a") == 0


def test_one_pipeline_is_read_by_id(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("solo", running=False)
    hook().get_statuses(["solo"])
    assert feldera.count("GET", LIST) == 0 and feldera.count("GET", "/v0/pipelines/solo") == 1


# ---- Rainforest: the collection list, paged (undocumented paging), 60 list requests a minute ----
def _fast_rainforest(
    rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch, paging: str = "total_pages"
) -> RainforestHook:
    """Pages of ten; the list's limit and the hook's pace raised so a test does not wait a second a page."""
    rainforest.settings.list_paging = paging  # type: ignore[assignment]
    rainforest.settings.list_limit_per_minute = 100_000
    conn = rainforest.connection()
    conn["extra"] = {**conn["extra"], "list_requests_per_minute": 100_000}
    use_connection(monkeypatch, "rainforest_default", conn)
    return RainforestHook(**FAST_RETRIES)


def _rf_reads(emu: RainforestEmulator) -> tuple[int, int]:
    """(list requests, reads by id)."""
    return emu.count("GET", "/collections"), emu.count("GET", "/collections/*")


@pytest.mark.parametrize("paging", ["total_pages", "pages", "next_page", "none"])
def test_rainforest_waits_read_the_collection_list(
    rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch, paging: str
) -> None:
    h = _fast_rainforest(rainforest, monkeypatch, paging)
    ids = [f"c{i:02d}" for i in range(25)]  # three pages of ten where the list pages
    for cid in ids:
        rainforest.add_collection(cid, status="idle")
    statuses = h.get_statuses(ids)
    assert all(s.stopped and s.raw_state == "idle" for s in statuses.values())
    assert statuses == {cid: h.get_status(cid) for cid in ids}  # what a read by id says, exactly
    rainforest.reset_log()
    h.get_statuses(ids)
    assert _rf_reads(rainforest) == (1 if paging == "none" else 3, 0)


def test_rainforest_a_status_read_takes_at_most_three_list_pages(
    rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = _fast_rainforest(rainforest, monkeypatch)
    ids = [f"c{i:02d}" for i in range(45)]  # five pages
    for cid in ids:
        rainforest.add_collection(cid, status="idle")
    for _ in range(2):
        rainforest.reset_log()
        assert set(h.get_statuses(ids)) == set(ids)
        assert _rf_reads(rainforest) == (3, 15)  # 30 shown by three pages, the rest by id


def test_rainforest_a_list_whose_paging_loops_leaves_the_rest_to_reads_by_id(
    rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = _fast_rainforest(rainforest, monkeypatch, paging="silent")  # pages of ten, no paging fields
    ids = [f"c{i:02d}" for i in range(25)]
    for cid in ids:
        rainforest.add_collection(cid, status="idle")
    assert set(h.get_statuses(ids)) == set(ids)
    assert _rf_reads(rainforest) == (1, 15)  # the first page is all it shows: the rest by id


# ---- DataSift: source/get pages, every call 5 credits ----------------------------------------
def _ds_reads(emu: DataSiftEmulator) -> tuple[list[Any], list[Any]]:
    """(list requests, reads by id) of ``source/get``."""
    gets = [r for r in list(emu.requests) if r.method == "GET" and r.path == "/v1.6/source/get"]
    return [r for r in gets if "id" not in r.query], [r for r in gets if "id" in r.query]


def test_datasift_100_sources_cost_one_list_page_a_poll(datasift: DataSiftEmulator) -> None:
    ids = [f"s{i:03d}" for i in range(100)]
    for sid in ids:
        datasift.add_source(sid)
    datasift.settings.stop_delay_seconds = 0.3
    h = DataSiftHook(**FAST_RETRIES)
    h.stop_many(ids)
    datasift.reset_log()
    statuses = h.wait_until_stopped(ids, poll_interval=0.1, deadline=time.time() + 30)
    assert all(s.raw_state == "stopped" for s in statuses.values())
    lists, by_id = _ds_reads(datasift)
    assert by_id == [] and len(lists) >= 2  # a poll before the stops show, and one after
    assert all(r.query["per_page"] == ["100"] and r.query["page"] == ["1"] for r in lists)


@pytest.mark.parametrize(
    ("max_per_page", "over", "pages_a_read"),
    [(500, "cap", [1, 1]), (20, "cap", [5, 5]), (20, "reject", [6, 5])],
    ids=["accepted", "capped-at-20", "refused-above-20"],
)
def test_datasift_status_reads_hold_whatever_the_server_does_with_per_page(
    datasift: DataSiftEmulator, max_per_page: int, over: str, pages_a_read: list[int]
) -> None:
    """The docs set no maximum for ``per_page``: every plausible server gives the same statuses."""
    datasift.settings.max_per_page = max_per_page
    datasift.settings.over_max_per_page = over
    ids = [f"s{i:03d}" for i in range(100)]
    for sid in ids:
        datasift.add_source(sid, status="stopped")
    h = DataSiftHook(**FAST_RETRIES)
    for expected in pages_a_read:  # the second read remembers what the first learned
        datasift.reset_log()
        statuses = h.get_statuses(ids)
        assert statuses == {sid: h.get_status(sid) for sid in ids}
        lists = [r for r in _ds_reads(datasift)[0]]
        assert len(lists) == expected, [r.query for r in lists]


def test_datasift_few_sources_in_a_long_list_are_read_by_id(datasift: DataSiftEmulator) -> None:
    for i in range(500):  # five pages of 100
        datasift.add_source(f"other{i:03d}", status="stopped")
    h = DataSiftHook(**FAST_RETRIES)
    ids = ["other000", "other499", "other250"]
    h.get_statuses(ids)  # the first page says four more follow: the two missing ones are read by id
    lists, by_id = _ds_reads(datasift)
    assert len(lists) == 1 and len(by_id) <= 2
    datasift.reset_log()
    h.get_statuses(ids)  # five pages remembered: three reads by id are cheaper
    assert [len(x) for x in _ds_reads(datasift)] == [0, 3]


# ---- Amperity: the run list (created within lookback), next_token pages ---------------------
def _stop_and_wait_runs(
    amperity: AmperityEmulator, count: int
) -> tuple[AmperityHook, list[str], dict[str, TargetStatus]]:
    """``count`` running runs stopped, then awaited in one wait (the emulator's log holds the wait's)."""
    ids = [f"wf-{i:03d}" for i in range(count)]
    for run_id in ids:
        amperity.add_run(run_id)
    h = AmperityHook(**FAST_RETRIES)
    h.stop_many(ids)
    amperity.reset_log()
    return h, ids, h.wait_until_stopped(ids, poll_interval=0.05, deadline=time.time() + 30)


def test_amperity_waits_read_the_run_list_and_no_canceled_run_by_id(amperity: AmperityEmulator) -> None:
    amperity.settings.cancel_seconds = 0.3
    h, ids, statuses = _stop_and_wait_runs(amperity, 30)
    assert {s.raw_state for s in statuses.values()} == {"canceled"}
    assert all(s.stopped and s.details["canceled"] is True for s in statuses.values())
    # The list shows every run canceled: no read by id (its error would only say "manually stopped").
    lists = [r for r in list(amperity.requests) if r.path == "/api/workflow/runs"]
    assert len(lists) >= 2 and amperity.count("GET", "/api/workflow/runs/*") == 0
    assert all(r.query["with_total"] == ["true"] and "state" not in r.query for r in lists)
    by_id = h.get_status(ids[0])
    assert by_id.details["error"] == "Workflow manually stopped"
    assert {k: v for k, v in by_id.details.items() if not k.startswith("error")} == statuses[ids[0]].details


@pytest.mark.parametrize("failure_error", [True, False], ids=["with-error", "without-error"])
def test_amperity_a_run_the_list_shows_failed_is_read_by_id_once_for_its_error(
    amperity: AmperityEmulator, failure_error: bool
) -> None:
    """Whether a failed run's own view carries an error object is unconfirmed: without one, the run
    is still reported failed (stopped), after the same one read by id."""
    amperity.settings.failure_error = failure_error
    amperity.add_run("wf-failed", state="failed")
    amperity.add_run("wf-done", state="succeeded")
    for i in range(5):
        amperity.add_run(f"wf-{i}", state="canceled")
    ids = ["wf-failed", "wf-done", *[f"wf-{i}" for i in range(5)]]
    h = AmperityHook(**FAST_RETRIES)
    statuses = h.wait_until_stopped(ids, poll_interval=0.05, deadline=time.time() + 30)
    assert statuses["wf-failed"].raw_state == "failed" and statuses["wf-failed"].stopped
    if failure_error:
        assert statuses["wf-failed"].details["error"].startswith("The credential does not provide access")
    else:
        assert "error" not in statuses["wf-failed"].details
    assert statuses["wf-failed"] == h.get_status("wf-failed")
    assert amperity.count("GET", "/api/workflow/runs/wf-failed") == 2  # once in the wait, once above
    assert amperity.count("GET", "/api/workflow/runs/wf-done") == 0
    assert amperity.count("GET", "/api/workflow/runs/wf-?") == 0


def test_amperity_a_list_with_error_objects_needs_no_read_by_id(amperity: AmperityEmulator) -> None:
    """Whether list items carry the error object is unconfirmed: where they do, the list is enough."""
    amperity.settings.list_view = "verbose"
    h, ids, statuses = _stop_and_wait_runs(amperity, 10)
    assert all(s.details["error"] == "Workflow manually stopped" for s in statuses.values())
    assert amperity.count("GET", "/api/workflow/runs/*") == 0
    assert statuses == {run_id: h.get_status(run_id) for run_id in ids}


def test_amperity_a_run_created_before_the_window_is_read_by_id(amperity: AmperityEmulator) -> None:
    amperity.add_run("old", state="canceled", created_at=time.time() - 8 * 24 * 3600)
    for i in range(5):
        amperity.add_run(f"new{i}", state="running")
    h = AmperityHook(**FAST_RETRIES)
    statuses = h.get_statuses(["old", *[f"new{i}" for i in range(5)]])
    assert statuses["old"].stopped and not statuses["new0"].stopped
    assert amperity.count("GET", "/api/workflow/runs") == 1
    assert amperity.count("GET", "/api/workflow/runs/old") == 1
    assert amperity.count("GET", "/api/workflow/runs/new*") == 0


# ---- every list service: a target the list does not show, and a list read that fails ----------
LISTING = {
    "rainforest": ("/collections", lambda emu, tid: emu.add_collection(tid, status="idle")),
    "datasift": ("/v1.6/source/get", lambda emu, tid: emu.add_source(tid, status="stopped")),
    "amperity": ("/api/workflow/runs", lambda emu, tid: emu.add_run(tid, state="canceled")),
}


@pytest.fixture
def listing(request: pytest.FixtureRequest) -> tuple[str, Any, Any]:
    service = request.param
    emu = request.getfixturevalue(service)
    if service == "rainforest":
        _fast_rainforest(emu, request.getfixturevalue("monkeypatch"), paging="none")
    hook_class = {"rainforest": RainforestHook, "datasift": DataSiftHook, "amperity": AmperityHook}[service]
    return service, emu, hook_class(**FAST_RETRIES)


@pytest.mark.parametrize("listing", list(LISTING), indirect=True)
def test_a_target_the_list_does_not_show_is_read_by_id(listing: tuple[str, Any, Any]) -> None:
    service, emu, h = listing
    path, add = LISTING[service]
    for tid in ("a", "b", "c"):
        add(emu, tid)
    with pytest.raises(PermanentBatchStopError) as caught:
        h.get_statuses(["a", "b", "c", "ghost"])
    assert set(caught.value.failures) == {"ghost"} and set(caught.value.succeeded) == {"a", "b", "c"}
    assert isinstance(caught.value.failures["ghost"], TargetNotFoundError)
    reads = [r for r in list(emu.requests) if r.method == "GET"]
    listed = [r for r in reads if r.path == path and "id" not in r.query]
    assert len(listed) == 1
    by_id = [r for r in reads if r not in listed]
    assert len(by_id) == 1  # only the ghost (Amperity's canceled runs are taken from the list too)


@pytest.mark.parametrize("listing", list(LISTING), indirect=True)
def test_a_failed_list_read_is_every_target_s_failure_as_a_failed_read_by_id_would_be(
    listing: tuple[str, Any, Any],
) -> None:
    service, emu, h = listing
    path, add = LISTING[service]
    ids = ["a", "b", "c"]
    for tid in ids:
        add(emu, tid)
    emu.inject("status", status=500, times=10_000, method="GET", path=path)
    with pytest.raises(TransientBatchStopError) as by_list:
        h.get_statuses(ids)
    assert set(by_list.value.failures) == set(ids) and not by_list.value.succeeded
    for tid, error in by_list.value.failures.items():
        assert isinstance(error, ServiceUnavailableError) and error.status_code == 500, (tid, error)
    assert emu.count("GET", path) == FAST_RETRIES["max_attempts"]  # one list read, retried as a read by id is


@pytest.mark.parametrize("service", list(LISTING))
def test_waits_on_one_connection_share_one_list_read_in_the_triggerer(
    service: str, request: pytest.FixtureRequest
) -> None:
    emu = request.getfixturevalue(service)
    if service == "rainforest":
        _fast_rainforest(emu, request.getfixturevalue("monkeypatch"), paging="none")
    path, add = LISTING[service]
    ids = [f"t{i:02d}" for i in range(20)]
    for tid in ids:
        add(emu, tid)
    hook_path = {
        "rainforest": "airflow_provider_stop.hooks.rainforest.RainforestHook",
        "datasift": "airflow_provider_stop.hooks.datasift.DataSiftHook",
        "amperity": "airflow_provider_stop.hooks.amperity.AmperityHook",
    }[service]
    triggers = [
        StopWaitTrigger(
            hook_class_path=hook_path,
            conn_id=f"{service}_default",
            target_ids=[tid],
            # Every target is already stopped, so one round ends each wait. Long enough that no third
            # round can start while Amperity's twenty reads by id (paced at 8 a second, 2.5 s) go on.
            poll_interval=10.0,
            deadline=time.time() + 40,
            hook_params=dict(FAST_RETRIES),
        )
        for tid in ids
    ]

    async def run_all() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(first_event(t) for t in triggers)))

    emu.reset_log()
    events = asyncio.run(run_all())
    assert [e["status"] for e in events] == ["success"] * len(ids)
    reads = [r for r in list(emu.requests) if r.method == "GET"]
    listed = [r for r in reads if r.path == path and "id" not in r.query]
    # Without the board and the list: twenty reads by id. With them: one list read for all twenty, and
    # at most one more read (by list, or by id for a single late wait) when some waits joined the board
    # after its first round had started: the board's bound of two reads a poll interval. Amperity also
    # reads each run the list shows ended by id, once, for its error object.
    assert len(listed) >= 1
    assert len(reads) <= 2 + (len(ids) if service == "amperity" else 0)


def test_list_reads_keep_the_api_key_out_of_every_log_and_error(
    rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """Rainforest's key is in every list URL: failed, retried and looping list reads never show it."""
    h = _fast_rainforest(rainforest, monkeypatch, paging="silent")
    for cid in ("a", "b", "c"):
        rainforest.add_collection(cid, status="idle")
    h.get_statuses(["a", "b", "c"])
    rainforest.inject("status", status=500, times=10_000, method="GET", path="/collections")
    with pytest.raises(TransientBatchStopError) as caught:
        h.get_statuses(["a", "b", "c"])
    key = rainforest.settings.api_key
    assert key not in logs.text() and key not in str(caught.value)
    assert all(key not in str(e) for e in caught.value.failures.values())
