"""Rainforest stop-all: a filter never widens into ``stopall``; the list is read page by page.

How ``GET /collections`` pages is not documented: the tests run every plausible form (one answer with
everything; ``?page=N`` with ``current_page``/``total_pages``, with ``page``/``pages``, or with
``next_page``). The emulator is strict: an undocumented query parameter or value is answered 400, a
wrong verb 404, in the ``request_info`` shape.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_stop.hooks.data import ApiResponse
from airflow_provider_stop.hooks.errors import InvalidInputError, StopRejectedError
from airflow_provider_stop.hooks.rainforest import ListPagingError, RainforestHook
from airflow_provider_stop.operators.rainforest import RainforestStopAllCollectionsOperator
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from tests.conftest import FAST_RETRIES, use_connection

PAGINGS = ["none", "total_pages", "pages", "next_page"]
FAST: dict[str, Any] = {"poll_interval": 0.05, "timeout": 10, "hook_params": FAST_RETRIES}


def serve(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[RainforestEmulator]:
    with RainforestEmulator(queue_seconds=0.0, list_page_size=10, **settings) as emu:
        conn = emu.connection()
        conn["extra"] = {**conn["extra"], "list_requests_per_minute": 60_000}  # pace tests fast
        use_connection(monkeypatch, "rainforest_default", conn)
        yield emu


@pytest.fixture(params=PAGINGS)
def paged(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[RainforestEmulator]:
    yield from serve(monkeypatch, list_paging=request.param)


def populate(emu: RainforestEmulator) -> tuple[list[str], list[str], list[str]]:
    """25 collections over three pages: nightly ones running, daily ones running, some idle."""
    nightly = [emu.add_collection(f"n{i:02d}", name=f"nightly {i}").id for i in range(12)]
    daily = [emu.add_collection(f"d{i:02d}", name=f"daily {i}").id for i in range(10)]
    idle = [emu.add_collection(f"i{i:02d}", name=f"nightly idle {i}", status="idle").id for i in range(3)]
    return nightly, daily, idle


def test_running_targets_reads_every_page(paged: RainforestEmulator) -> None:
    nightly, daily, _ = populate(paged)
    h = RainforestHook(**FAST_RETRIES)
    assert sorted(h.running_targets()) == sorted(nightly + daily)
    assert sorted(h.running_targets("nightly*")) == sorted(nightly)
    pages = 1 if paged.settings.list_paging == "none" else 3
    assert paged.count("GET", "/collections") == 2 * pages  # two reads of the whole list


def test_a_filtered_stop_all_stops_each_match_by_id_never_stopall(paged: RainforestEmulator) -> None:
    nightly, daily, idle = populate(paged)
    task = RainforestStopAllCollectionsOperator(task_id="stop_all", name_pattern="nightly*", **FAST)
    result = task.execute({})
    assert sorted(result) == sorted(nightly)
    assert paged.count(path="*/stopall") == 0
    assert all(paged.status_of(c) == "idle" for c in nightly + idle)
    assert all(paged.status_of(c) == "running" for c in daily)  # a non-match is never stopped
    assert {r.path for r in paged.requests if r.path.endswith("/stop")} == {
        f"/collections/{c}/stop" for c in nightly
    }


def test_an_unfiltered_stop_all_calls_stopall_once_and_waits_for_every_page(
    paged: RainforestEmulator,
) -> None:
    nightly, daily, _ = populate(paged)
    result = RainforestStopAllCollectionsOperator(task_id="stop_all", **FAST).execute({})
    assert sorted(result) == sorted(nightly + daily)  # awaited: the ones beyond page 1 too
    assert paged.count("GET", "/collections/stopall") == 1
    assert paged.count(path="/collections/*/stop") == 0
    assert all(r["raw_state"] == "idle" for r in result.values())


def test_the_list_is_paced_to_its_documented_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """60 requests a minute: three pages take at least two seconds, and the service never says 429."""
    with RainforestEmulator(queue_seconds=0.0, list_page_size=10, list_paging="total_pages") as emu:
        use_connection(monkeypatch, "rainforest_default", emu.connection())
        populate(emu)
        h = RainforestHook(**FAST_RETRIES)
        started = time.monotonic()
        assert len(h.running_targets()) == 22
        assert time.monotonic() - started >= 1.9
        assert emu.count("GET", "/collections") == 3


class _Replay(RainforestHook):
    """A hook whose list answers are scripted (paging that a real server might get wrong)."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        super().__init__(**FAST_RETRIES)
        self.bodies = bodies
        self.sent: list[dict[str, str]] = []

    def send(self, request: Any, parse: Any = None) -> Any:
        self.sent.append(dict(request.params))
        body = self.bodies[min(len(self.sent), len(self.bodies)) - 1]
        return parse(ApiResponse(200, {}, __import__("json").dumps(body))) if parse else None


def _page(ids: list[str], **paging: Any) -> dict[str, Any]:
    return {"collections": [{"id": i, "status": "running", "name": i} for i in ids], **paging}


def test_a_service_that_ignores_page_is_an_error_not_a_short_list(rainforest: RainforestEmulator) -> None:
    h = _Replay([_page(["a", "b"], current_page=1, total_pages=3)])
    with pytest.raises(ListPagingError, match="repeats earlier pages"):
        h.list_targets()
    assert h.sent == [{"page_size": "1000"}, {"page": "2", "page_size": "1000"}]


def test_paging_that_goes_backwards_is_an_error(rainforest: RainforestEmulator) -> None:
    h = _Replay([_page(["a"], next_page=2), _page(["b"], next_page=1)])
    with pytest.raises(ListPagingError, match="names page 1 after page 2"):
        h.list_targets()


def test_paging_without_end_stops_at_the_guard(
    rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("airflow_provider_stop.hooks.rainforest.MAX_LIST_PAGES", 5)

    class Endless(_Replay):
        def send(self, request: Any, parse: Any = None) -> Any:
            n = len(self.sent) + 1
            self.sent.append(dict(request.params))
            body = _page([f"c{n}"], total_pages=n + 1, current_page=n)
            return parse(ApiResponse(200, {}, __import__("json").dumps(body)))

    with pytest.raises(ListPagingError, match="more than 5 pages"):
        Endless([]).list_targets()


@pytest.mark.parametrize(
    ("body", "page", "expected"),
    [
        ({"collections": []}, 1, None),
        ({"current_page": 1, "total_pages": 3}, 1, 2),
        ({"current_page": 3, "total_pages": 3}, 3, None),
        ({"page": "2", "pages": "4"}, 2, 3),
        ({"page_count": 2}, 1, 2),
        ({"next_page": 5}, 4, 5),
        ({"next_page": None, "total_pages": 9}, 4, None),
        ({"next_page": "https://api.rainforestapi.com/collections?page=3&api_key=x"}, 2, 3),
        ({"next_page": False}, 2, None),
    ],
)
def test_next_page_reads_every_plausible_form(
    rainforest: RainforestEmulator, body: dict[str, Any], page: int, expected: int | None
) -> None:
    assert RainforestHook().next_page(body, page) == expected


# ---- the emulator is as strict as the documented contract --------------------------------
def test_the_emulator_refuses_what_the_docs_do_not_document(rainforest: RainforestEmulator) -> None:
    key = {"api_key": rainforest.settings.api_key}
    base = rainforest.url
    for params in ({"page": "2"}, {"status": "stopped"}, {"per_page": "100"}, {"search_type": "regex"}):
        answer = requests.get(f"{base}/collections", params={**key, **params}, timeout=5)
        assert answer.status_code == 400, params
        assert answer.json()["request_info"]["success"] is False
    assert requests.get(f"{base}/collections", params={**key, "status": "running"}, timeout=5).ok
    rainforest.add_collection("c1")
    for method in ("POST", "PUT", "DELETE"):  # a wrong verb is a 404 (response-codes page)
        answer = requests.request(method, f"{base}/collections/c1/stop", params=key, timeout=5)
        assert answer.status_code == 404 and answer.json()["request_info"]["success"] is False
    assert requests.get(f"{base}/nothing/here", params=key, timeout=5).status_code == 404
    extra = requests.get(f"{base}/collections/c1", params={**key, "include": "all"}, timeout=5)
    assert extra.status_code == 400
    assert rainforest.status_of("c1") == "running"


def test_leniency_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for emu in serve(monkeypatch, lenient=True):
        answer = requests.get(
            f"{emu.url}/collections", params={"api_key": emu.settings.api_key, "per_page": "5"}, timeout=5
        )
        assert answer.ok


def test_list_requests_per_minute_is_validated(
    rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad in (0, -1, "fast", True):
        conn = rainforest.connection()
        conn["extra"] = {**conn["extra"], "list_requests_per_minute": bad}
        use_connection(monkeypatch, "rainforest_default", conn)
        with pytest.raises(InvalidInputError, match="list_requests_per_minute must be a positive number"):
            RainforestHook().list_targets()
    assert rainforest.count() == 0


def test_a_stop_refused_with_success_false_is_still_an_error(rainforest: RainforestEmulator) -> None:
    """``request_info.success == false`` on a 200 stays a refusal, with or without other fields."""
    h = RainforestHook(**FAST_RETRIES)
    response = ApiResponse(200, {}, '{"request_info": {"success": false, "message": "nope"}}')
    from airflow_provider_stop.hooks.data import ApiRequest

    with pytest.raises(StopRejectedError, match="nope"):
        h.raise_for_response(ApiRequest("GET", "/collections/1/stop", target_id="1"), response)
