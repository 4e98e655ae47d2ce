"""A service's answer is untrusted input: every parser turns wrong types, odd digits and impossible
values into the provider's own ``MalformedResponseError`` naming the field (never a Python error),
and text the service sent reaches messages and logs short and escaped. Pure: no network, no emulator.

The ids parameter's rendered template is bounded too (length, nesting, count) before any decoder runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.hooks.data import (
    ApiRequest,
    ApiResponse,
    ClientConfig,
    ListWalk,
    StopAck,
    TargetStatus,
)
from airflow_provider_stop.hooks.dataforseo import DataForSeoHook
from airflow_provider_stop.hooks.datasift import DataSiftHook
from airflow_provider_stop.hooks.errors import (
    AuthenticationError,
    InvalidInputError,
    MalformedResponseError,
    StopProviderError,
)
from airflow_provider_stop.hooks.feldera import FelderaHook
from airflow_provider_stop.hooks.rainforest import RainforestHook
from airflow_provider_stop.hooks.validation import MAX_TARGET_IDS, normalize_target_ids

#: What must never reach a message, a log line or a status: a raw control or line-break character.
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: What an id never holds (``validate_target_id``), listed by a service or not.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Service text shown is cut to 200 characters; a message has some words around it.
SHORT = 1000


def answer(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> ApiResponse:
    """An answer whose body is ``body`` as JSON (NaN and Infinity as Python's json writes them), or
    the text itself when ``body`` is a string starting with ``=``."""
    text = body[1:] if isinstance(body, str) and body.startswith("=") else json.dumps(body)
    return ApiResponse(status, {k.lower(): v for k, v in (headers or {}).items()}, text)


def rainforest() -> RainforestHook:
    hook = RainforestHook()
    hook._config = ClientConfig(
        "https://api.rainforestapi.com",
        settings={"resource": "collections", "list_requests_per_minute": 60.0},
    )
    return hook


def walk(hook: Any, bodies: list[Any], *, for_status: bool = False) -> ListWalk:
    """Drive ``hook.list_pages`` with ``bodies`` as the answers, one a page (the last one repeated)."""
    listed = ListWalk(for_status=for_status)
    pager = hook.list_pages(listed)
    try:
        _, parse = next(pager)
        for n in range(20):
            _, parse = pager.send(parse(answer(bodies[min(n, len(bodies) - 1)])))
    except StopIteration:
        pass
    finally:
        pager.close()
    return listed


def malformed(call: Callable[[], Any], *fields: str) -> str:
    """The call's ``MalformedResponseError`` message, which names each of ``fields``, short and safe."""
    with pytest.raises(MalformedResponseError) as caught:
        call()
    message = str(caught.value)
    assert all(f in message for f in fields), message
    assert len(message) < SHORT and not UNSAFE.search(message), message
    return message


def dfs_envelope(**task: Any) -> dict[str, Any]:
    return {"status_code": 20000, "tasks": [{"id": "t1", "status_code": 20000, **task}]}


# ---- the audit's crashes, one by one -------------------------------------------------------------
DFS_STATUS_CODES = [
    pytest.param("oops", id="string"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="infinity"),
    pytest.param(1e308, id="1e308"),
    pytest.param(10**30, id="huge-int"),
    pytest.param(4.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param("٤٠٤٠١", id="arabic-indic-digits"),
]


@pytest.mark.parametrize("code", DFS_STATUS_CODES)
def test_dataforseo_task_status_code_of_a_wrong_type_is_malformed(code: Any) -> None:
    hook = DataForSeoHook()
    malformed(lambda: hook.parse_status_response("t1", answer(dfs_envelope(status_code=code))), "status_code")
    body = answer(dfs_envelope(status_code=code, data={"id": "t1"}))
    malformed(lambda: hook.parse_batch_stop_response(["t1"], body, {}), "tasks[0].status_code")


@pytest.mark.parametrize("code", DFS_STATUS_CODES)
def test_dataforseo_envelope_status_code_of_a_wrong_type_is_malformed(code: Any) -> None:
    body = answer({"status_code": code, "tasks": []})
    malformed(lambda: DataForSeoHook().parse_status_response("t1", body), "envelope", "status_code")


@pytest.mark.parametrize(
    ("task", "field"),
    [
        pytest.param("t1", "tasks[0]", id="task-is-a-string"),
        pytest.param(["t1"], "tasks[0]", id="task-is-a-list"),
        pytest.param({"id": "t1", "status_code": 20000, "data": [1]}, "tasks[0].data", id="data-is-a-list"),
        pytest.param({"id": ["t1"], "status_code": 20000}, "tasks[0].id", id="id-is-a-list"),
    ],
)
def test_dataforseo_batch_stop_answer_with_a_task_of_the_wrong_shape(task: Any, field: str) -> None:
    body = answer({"status_code": 20000, "tasks": [task]})
    malformed(lambda: DataForSeoHook().parse_batch_stop_response(["t1"], body, {}), field)


@pytest.mark.parametrize(
    ("result", "field"),
    [
        pytest.param("abc", "result", id="result-is-a-string"),
        pytest.param({"crawl_progress": "finished"}, "result", id="result-is-an-object"),
        pytest.param([None], "result[0]", id="summary-is-null"),
        pytest.param(
            [{"crawl_progress": "finished", "crawl_status": [1]}], "crawl_status", id="crawl-status"
        ),
    ],
)
def test_dataforseo_summary_of_the_wrong_shape(result: Any, field: str) -> None:
    body = answer(dfs_envelope(result=result))
    malformed(lambda: DataForSeoHook().parse_status_response("t1", body), field)


def test_dataforseo_status_message_is_shown_short_and_escaped() -> None:
    body = answer(dfs_envelope(status_code=40501, status_message="forged\nINFO - all stopped" * 100))
    with pytest.raises(StopProviderError) as caught:
        DataForSeoHook().parse_status_response("t1", body)
    assert len(str(caught.value)) < SHORT and not UNSAFE.search(str(caught.value))


@pytest.mark.parametrize("value", ["²", "١٢", "9" * 400], ids=["superscript", "arabic-indic", "400-digits"])
def test_datasift_budget_headers_with_odd_digits_are_ignored(value: str) -> None:
    hook = DataSiftHook()
    names = ("X-RateLimit-Remaining", "X-RateLimit-Cost", "X-RateLimit-Reset", "X-RateLimit-Reset-TTL")
    hook.observe_response(answer({}, headers=dict.fromkeys(names, value)))
    assert (hook.remaining, hook.cost, hook.reset_at) == (None, 5, None)
    hook.observe_response(answer({}, headers={"X-RateLimit-Remaining": "12", "X-RateLimit-Cost": "5"}))
    assert (hook.remaining, hook.cost) == (12, 5)  # ASCII digits still count


def test_datasift_403_with_an_odd_cost_header_is_the_auth_error_not_a_crash() -> None:
    response = answer({"error": "no"}, 403, {"X-RateLimit-Cost": "²", "X-RateLimit-Remaining": "1"})
    with pytest.raises(AuthenticationError):
        DataSiftHook().raise_for_response(ApiRequest("GET", "/source/get", target_id="s1"), response)


def test_datasift_api_version_takes_ascii_digits_only() -> None:
    from airflow.providers.common.compat.sdk import Connection

    conn = Connection(
        conn_id="d",
        conn_type="datasift",
        login="u",
        password="k" * 8,
        extra='{"api_version": "v\u0661.\u0666"}',
    )
    with pytest.raises(InvalidInputError, match="api_version"):
        DataSiftHook().build_config(conn)


@pytest.mark.parametrize(
    ("page", "field"),
    [
        pytest.param(
            {"sources": [{"id": "s1", "status": "running"}], "pages": "²"}, "pages", id="pages-superscript"
        ),
        pytest.param(
            {"sources": [{"id": "s1", "status": "running"}], "pages": "١٢"}, "pages", id="pages-arabic"
        ),
        pytest.param(
            {"sources": [{"id": "s1", "status": "running"}], "pages": 10**30}, "pages", id="pages-huge"
        ),
        pytest.param(
            {"sources": [{"id": "s1", "status": "running"}], "pages": 2.5}, "pages", id="pages-float"
        ),
        pytest.param({"sources": [{"status": "running"}]}, "sources[0].id", id="id-missing"),
        pytest.param({"sources": [{"id": 7, "status": "running"}]}, "sources[0].id", id="id-number"),
        pytest.param({"sources": ["s1"]}, "sources[0]", id="source-is-a-string"),
    ],
)
def test_datasift_list_page_of_the_wrong_shape(page: dict[str, Any], field: str) -> None:
    malformed(lambda: walk(DataSiftHook(), [page]), field)


@pytest.mark.parametrize(
    "body", [pytest.param([1], id="list"), pytest.param("stopped", id="string"), pytest.param(5, id="number")]
)
def test_datasift_and_amperity_stop_answers_that_are_no_object(body: Any) -> None:
    malformed(lambda: DataSiftHook().parse_stop_response("s1", answer(body), {}), "stop answer")
    malformed(lambda: AmperityHook().parse_stop_response("r1", answer(body), {}), "stop answer")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"total_pages": "²"}, "total_pages", id="total-superscript"),
        pytest.param({"total_pages": "١٢"}, "total_pages", id="total-arabic"),
        pytest.param({"total_pages": 10**30}, "total_pages", id="total-huge"),
        pytest.param({"total_pages": 3.0}, "total_pages", id="total-float"),
        pytest.param({"total_pages": [3]}, "total_pages", id="total-list"),
        pytest.param({"total_pages": 3, "current_page": -5}, "current_page", id="current-negative"),
        pytest.param({"pages": "4", "page": True}, "page", id="current-bool"),
        pytest.param({"next_page": "²"}, "next_page", id="next-superscript"),
        pytest.param({"next_page": "https://x/collections?page=²"}, "next_page", id="next-url-superscript"),
        pytest.param({"next_page": "http://[::1/collections?page=2"}, "next_page", id="next-bad-url"),
        pytest.param({"next_page": {}}, "next_page", id="next-object"),
        pytest.param({"next_page": True}, "next_page", id="next-bool"),
    ],
)
def test_rainforest_paging_fields_of_the_wrong_type(body: dict[str, Any], field: str) -> None:
    malformed(lambda: rainforest().next_page(body, 1), field)


@pytest.mark.parametrize(
    ("items", "field"),
    [
        pytest.param(["c1"], "collections[0]", id="item-is-a-string"),
        pytest.param([{"status": "running"}], "collections[0].id", id="id-missing"),
        pytest.param([{"id": ["c1"], "status": "running"}], "collections[0].id", id="id-list"),
        pytest.param([{"id": "c" * 2000, "status": "running"}], "collections[0].id", id="id-absurdly-long"),
    ],
)
def test_rainforest_list_items_of_the_wrong_shape(items: list[Any], field: str) -> None:
    malformed(lambda: rainforest().parse_list_response(answer({"collections": items})), field)
    malformed(lambda: walk(rainforest(), [{"collections": items}]), field)


def test_rainforest_pages_left_is_bounded() -> None:
    page = {"collections": [{"id": "c1", "status": "running"}], "current_page": 1, "total_pages": 10**30}
    malformed(lambda: walk(rainforest(), [page], for_status=True), "total_pages")


@pytest.mark.parametrize(
    "info", [pytest.param({"message": ["x"]}, id="message-list"), pytest.param([1], id="info-list")]
)
def test_rainforest_request_info_of_the_wrong_type(info: Any) -> None:
    body = answer({"request_info": info})
    malformed(lambda: rainforest().parse_stop_response("c1", body, {}), "request_info")


def test_rainforest_stopall_count_takes_ascii_digits_only(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = rainforest()
    said = {"request_info": {"success": True, "message": "١٢ collections stopped\nforged line"}}
    monkeypatch.setattr(hook, "send", lambda request, parse=None: answer(said))
    acks = hook.stop_all_targets(["c1"], filtered=False)
    assert acks["c1"].options["stopped_count"] is None
    assert not UNSAFE.search(acks["c1"].message or "")


def test_rainforest_refusal_message_is_short_and_escaped() -> None:
    body = answer({"request_info": {"success": False, "message": "no\n2026 INFO forged" * 50}})
    with pytest.raises(StopProviderError) as caught:
        rainforest().raise_for_response(ApiRequest("GET", "/collections/c1/stop", target_id="c1"), body)
    assert len(str(caught.value)) < SHORT and not UNSAFE.search(str(caught.value))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param([{"deployment_status": "Running"}], "pipelines[0].name", id="name-missing"),
        pytest.param([{"name": 7, "deployment_status": "Running"}], "pipelines[0].name", id="name-number"),
        pytest.param(["p1"], "pipelines[0]", id="item-is-a-string"),
        pytest.param(
            [{"name": "p1", "deployment_status": "Running", "deployment_error": [1]}],
            "deployment_error",
            id="error-list",
        ),
    ],
)
def test_feldera_list_items_of_the_wrong_shape(body: list[Any], field: str) -> None:
    malformed(lambda: FelderaHook().parse_list_response(answer(body)), field)


def test_feldera_texts_are_short_and_escaped() -> None:
    hook = FelderaHook()
    ack = hook.parse_stop_response("p1", answer("stopping\nINFO forged " * 100), {})
    status = hook.parse_status_response(
        "p1", answer({"deployment_status": "Stopped", "deployment_error": {"message": "x\n" * 500}})
    )
    for text in (ack.message or "", status.error or ""):
        assert len(text) < SHORT and not UNSAFE.search(text)


@pytest.mark.parametrize(
    ("page", "field"),
    [
        pytest.param({"data": [{"state": "running"}]}, "data[0].id", id="id-missing"),
        pytest.param({"data": ["r1"]}, "data[0]", id="run-is-a-string"),
        pytest.param({"data": [], "total": 10**30, "next_token": "t"}, "total", id="total-huge"),
        pytest.param({"data": [], "total": -5, "next_token": "t"}, "total", id="total-negative"),
        pytest.param({"data": [], "total": 1e308, "next_token": "t"}, "total", id="total-1e308"),
        pytest.param({"data": [], "next_token": ["t"]}, "next_token", id="next-token-list"),
        pytest.param({"data": [], "next_token": 5}, "next_token", id="next-token-number"),
    ],
)
def test_amperity_run_list_of_the_wrong_shape(page: dict[str, Any], field: str) -> None:
    malformed(lambda: walk(AmperityHook(), [page], for_status=True), field)


def test_amperity_run_error_and_stop_state_of_the_wrong_type() -> None:
    hook = AmperityHook()
    malformed(lambda: hook.parse_status_response("r1", answer({"state": "failed", "error": [1]})), "error")
    malformed(lambda: hook.parse_stop_response("r1", answer({"state": ["x"]}), {}), "state")


def test_amperity_error_details_are_short_and_escaped() -> None:
    body = {"error": "bad\n", "error_description": "INFO forged\n" * 100, "request_id": "q\n" * 100}
    message, _ = AmperityHook().error_details(answer(body, 400))
    assert len(message) < SHORT and not UNSAFE.search(message)


# ---- any JSON value in any field: a result or the provider's own error, never a Python one --------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["²", "١٢"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def overrides(slots: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(slots), JSON, max_size=3)


def check(result: Any) -> None:
    """What a parser returns holds only safe, short text the service sent."""
    for item in (
        result.values() if isinstance(result, dict) else result if isinstance(result, list) else [result]
    ):
        if isinstance(item, TargetStatus):
            texts = [item.target_id, item.raw_state, item.error]
        elif isinstance(item, StopAck):
            texts = [item.target_id, item.message]
        else:
            continue
        assert all(isinstance(t, str | None) for t in texts), texts
        assert not CONTROL.search(item.target_id) and len(item.target_id) <= 1024, texts
        assert not any(UNSAFE.search(t) or len(t) > SHORT for t in texts[1:] if t), texts


def survives(call: Callable[[], Any]) -> None:
    try:
        check(call())
    except MalformedResponseError as exc:
        assert len(str(exc)) < 2 * SHORT and not UNSAFE.search(str(exc)), str(exc)
    except StopProviderError:
        pass


DFS_SLOTS = ["envelope_code", "tasks", "task", "status_code", "status_message", "id", "data", "result"]
DFS_SLOTS += ["summary", "crawl_progress", "crawl_status", "domain_info"]


def dfs_body(v: dict[str, Any]) -> Any:
    summary = {"crawl_progress": v.get("crawl_progress", "finished"), "crawl_stop_reason": "force_stopped"}
    summary |= {"crawl_status": v.get("crawl_status", {}), "domain_info": v.get("domain_info", {})}
    task = {"id": v.get("id", "t1"), "status_code": v.get("status_code", 20000), "data": v.get("data", {})}
    task |= {
        "status_message": v.get("status_message", "Ok."),
        "result": v.get("result", [v.get("summary", summary)]),
    }
    return {"status_code": v.get("envelope_code", 20000), "tasks": v.get("tasks", [v.get("task", task)])}


@HYPOTHESIS
@given(overrides(DFS_SLOTS))
@example({"status_code": "oops"})
@example({"task": "t1"})
def test_any_value_in_a_dataforseo_answer(values: dict[str, Any]) -> None:
    hook, body = DataForSeoHook(), answer(dfs_body(values))
    survives(lambda: hook.parse_status_response("t1", body))
    survives(lambda: hook.parse_batch_stop_response(["t1"], body, {}))
    survives(lambda: hook.raise_for_response(ApiRequest("POST", "/v3/on_page/force_stop"), body))


@HYPOTHESIS
@given(overrides(["status", "id", "name", "source", "sources", "pages", "body"]), st.text(max_size=6))
@example({"pages": "²"}, "²")
def test_any_value_in_a_datasift_answer(values: dict[str, Any], header: str) -> None:
    source = {
        "id": values.get("id", "s1"),
        "status": values.get("status", "running"),
        "name": values.get("name"),
    }
    page = {"sources": values.get("sources", [values.get("source", source)]), "pages": values.get("pages", 1)}
    hook = DataSiftHook()
    survives(lambda: hook.parse_status_response("s1", answer(values.get("body", source))))
    survives(lambda: hook.parse_stop_response("s1", answer(values.get("body", source)), {}))
    survives(lambda: walk(hook, [values.get("body", page)]).statuses)
    budget = answer({}, 403, {"X-RateLimit-Remaining": header, "X-RateLimit-Cost": header})
    survives(lambda: hook.observe_response(budget))
    survives(lambda: hook.raise_for_response(ApiRequest("GET", "/source/get"), budget))


RAINFOREST_SLOTS = ["status", "id", "item", "collections", "request_info", "message", "success"]
RAINFOREST_SLOTS += ["total_pages", "current_page", "page", "pages", "next_page", "body"]


@HYPOTHESIS
@given(overrides(RAINFOREST_SLOTS))
@example({"total_pages": "²"})
@example({"next_page": "²"})
def test_any_value_in_a_rainforest_answer(values: dict[str, Any]) -> None:
    item = {"id": values.get("id", "c1"), "status": values.get("status", "running")}
    info = {"success": values.get("success", True), "message": values.get("message", "Collection stopped")}
    body = {"request_info": values.get("request_info", info), "collection": values.get("item", item)}
    body |= {"collections": values.get("collections", [values.get("item", item)])}
    body |= {
        k: values[k] for k in ("total_pages", "current_page", "page", "pages", "next_page") if k in values
    }
    whole = values.get("body", body)
    hook = rainforest()
    survives(lambda: hook.parse_status_response("c1", answer(whole)))
    survives(lambda: hook.parse_stop_response("c1", answer(whole), {}))
    survives(lambda: walk(hook, [whole]).statuses)
    survives(lambda: hook.raise_for_response(ApiRequest("GET", "/collections/c1/stop"), answer(whole, 402)))
    survives(lambda: hook.raise_for_response(ApiRequest("GET", "/collections/c1/stop"), answer(whole)))


@HYPOTHESIS
@given(overrides(["deployment_status", "deployment_error", "error_code", "message", "name", "item", "body"]))
@example({"deployment_error": "x\nforged"})
def test_any_value_in_a_feldera_answer(values: dict[str, Any]) -> None:
    error = {"error_code": values.get("error_code", "E"), "message": values.get("message", "m")}
    pipeline = {
        "name": values.get("name", "p1"),
        "deployment_status": values.get("deployment_status", "Running"),
    }
    pipeline["deployment_error"] = values.get("deployment_error", error)
    hook = FelderaHook()
    survives(lambda: hook.parse_status_response("p1", answer(values.get("body", pipeline))))
    survives(lambda: hook.parse_list_response(answer(values.get("body", [values.get("item", pipeline)]))))
    survives(lambda: hook.parse_stop_response("p1", answer(values.get("body", error)), {}))
    survives(lambda: hook.raise_for_response(ApiRequest("POST", "/pipelines/p1/stop"), answer(error, 400)))


@HYPOTHESIS
@given(overrides(["state", "id", "error", "run", "data", "total", "next_token", "body"]))
@example({"state": "running\nforged"})
@example({"next_token": ["t"]})
def test_any_value_in_an_amperity_answer(values: dict[str, Any]) -> None:
    run = {
        "id": values.get("id", "r1"),
        "state": values.get("state", "running"),
        "error": values.get("error"),
    }
    page = {"data": values.get("data", [values.get("run", run)]), "total": values.get("total", 1)}
    page["next_token"] = values.get("next_token")
    hook = AmperityHook()
    survives(lambda: hook.parse_status_response("r1", answer(values.get("body", run))))
    survives(lambda: hook.parse_stop_response("r1", answer(values.get("body", run)), {}))
    survives(lambda: walk(hook, [values.get("body", page)], for_status=True).statuses)
    survives(lambda: hook.error_details(answer(values.get("body", run), 400)))


# ---- the ids parameter's rendered template: bounded before any decoder --------------------------
@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param("[" * 3000 + "]" * 3000, "nest", id="3000-deep-list"),
        pytest.param('["a", ' + "[" * 3000 + "]" * 3000 + "]", "nest", id="3000-deep-after-an-id"),
        pytest.param("[{[]: 1}]", "nest", id="unhashable-key"),
        pytest.param('["' + "a" * (2 * 1024 * 1024) + '"]', "at most 1048576", id="2-MiB-text"),
        pytest.param(
            json.dumps([f"i{n}" for n in range(MAX_TARGET_IDS + 1)]), "at most 100000", id="100001-ids"
        ),
        pytest.param([f"i{n}" for n in range(MAX_TARGET_IDS + 1)], "at most 100000", id="100001-ids-list"),
        pytest.param([["x"] * 100_000], "must be a string", id="nested-list-value"),
    ],
)
def test_ids_templates_are_bounded(value: Any, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words) as caught:
        normalize_target_ids(value, "pipeline_names")
    assert "pipeline_names" in str(caught.value) and len(str(caught.value)) < SHORT


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[](){}'\",\\ a1:-*+.", max_size=40).map(lambda s: "[" + s + "]"))
@example("[" * 3000 + "]" * 3000)
@example("[{[]: 1}]")
def test_any_rendered_ids_text_gives_ids_or_the_input_error(text: str) -> None:
    try:
        ids = normalize_target_ids(text, "ids")
    except InvalidInputError as exc:
        assert "ids" in str(exc) and len(str(exc)) < SHORT
    else:
        assert ids and all(isinstance(i, str) for i in ids)


def test_ids_nesting_counts_brackets_outside_quotes_only() -> None:
    with pytest.raises(InvalidInputError, match="nest"):
        normalize_target_ids('["a", [["b"]]]', "ids")
    assert normalize_target_ids('["[[[a]]]", "b\\"[["]', "ids") == ["[[[a]]]", 'b"[[']
    assert normalize_target_ids("['[[[a', 'b\\'[[']", "ids") == ["[[[a", "b'[["]
