"""Every service's stop-all: a filter never widens on the server.

With a ``name_pattern`` or a list filter (DataSift ``source_type``, Amperity ``workflow_type``), a
stop-all sends no service-wide stop and stops no target that does not match; the final states in the
emulators are the proof. Without a filter, a service-wide stop (Rainforest ``stopall``) may be used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_stop.hooks.errors import InvalidInputError, TooManyTargetsError
from airflow_provider_stop.operators.amperity import AmperityStopAllWorkflowRunsOperator
from airflow_provider_stop.operators.datasift import DataSiftStopAllSourcesOperator
from airflow_provider_stop.operators.feldera import FelderaStopAllPipelinesOperator
from airflow_provider_stop.operators.rainforest import RainforestStopAllCollectionsOperator
from airflow_provider_stop.operators.stop_all import StopAllOperatorBase
from tests.conftest import FAST_RETRIES

FAST: dict[str, Any] = {"poll_interval": 0.05, "timeout": 20, "hook_params": FAST_RETRIES}


@dataclass(frozen=True)
class Case:
    fixture: str
    operator: type[StopAllOperatorBase]
    #: Creates running targets; returns (matching ids, non-matching ids).
    setup: Callable[[Any], tuple[list[str], list[str]]]
    is_stopped: Callable[[Any, str], bool]
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: Raw-path globs of calls that stop more than one named target.
    service_wide: tuple[str, ...] = ()


def _feldera(emu: Any) -> tuple[list[str], list[str]]:
    for name in ("nightly_a", "nightly_b", "daily_a", "adhoc"):
        emu.add_pipeline(name)
    return ["nightly_a", "nightly_b"], ["daily_a", "adhoc"]


def _rainforest(emu: Any) -> tuple[list[str], list[str]]:
    for cid, name in (("1", "nightly prices"), ("2", "nightly offers"), ("3", "daily"), ("4", "adhoc")):
        emu.add_collection(cid, name=name)
    return ["1", "2"], ["3", "4"]


def _datasift_by_name(emu: Any) -> tuple[list[str], list[str]]:
    for sid, name in (("s1", "nightly a"), ("s2", "nightly b"), ("s3", "daily"), ("s4", "adhoc")):
        emu.add_source(sid, name=name)
    return ["s1", "s2"], ["s3", "s4"]


def _datasift_by_type(emu: Any) -> tuple[list[str], list[str]]:
    emu.add_source("ig1", source_type="instagram")
    emu.add_source("ig2", source_type="instagram")
    emu.add_source("fb1", source_type="facebook_page")
    return ["ig1", "ig2"], ["fb1"]


def _amperity_by_name(emu: Any) -> tuple[list[str], list[str]]:
    for rid, name in (("wf-1", "nightly stitch"), ("wf-2", "nightly send"), ("wf-3", "daily"), ("wf-4", "x")):
        emu.add_run(rid, name=name)
    return ["wf-1", "wf-2"], ["wf-3", "wf-4"]


def _amperity_by_type(emu: Any) -> tuple[list[str], list[str]]:
    emu.add_run("wf-c1", type="campaign.send")
    emu.add_run("wf-c2", type="campaign.send")
    emu.add_run("wf-o1", type="amperity.orchestration.orchestration/run")
    return ["wf-c1", "wf-c2"], ["wf-o1"]


CASES = {
    "feldera-name": Case(
        "feldera",
        FelderaStopAllPipelinesOperator,
        _feldera,
        lambda emu, t: emu.status_of(t) == "Stopped",
        {"name_pattern": "nightly_*", "force": True},
    ),
    "rainforest-name": Case(
        "rainforest",
        RainforestStopAllCollectionsOperator,
        _rainforest,
        lambda emu, t: emu.status_of(t) == "idle",
        {"name_pattern": "nightly*"},
        ("*/stopall",),
    ),
    "datasift-name": Case(
        "datasift",
        DataSiftStopAllSourcesOperator,
        _datasift_by_name,
        lambda emu, t: emu.status_of(t) == "stopped",
        {"name_pattern": "nightly*"},
    ),
    "datasift-source_type": Case(
        "datasift",
        DataSiftStopAllSourcesOperator,
        _datasift_by_type,
        lambda emu, t: emu.status_of(t) == "stopped",
        {"source_type": "instagram"},
    ),
    "amperity-name": Case(
        "amperity",
        AmperityStopAllWorkflowRunsOperator,
        _amperity_by_name,
        lambda emu, t: emu.state_of(t) == "canceled",
        {"name_pattern": "nightly*"},
    ),
    "amperity-workflow_type": Case(
        "amperity",
        AmperityStopAllWorkflowRunsOperator,
        _amperity_by_type,
        lambda emu, t: emu.state_of(t) == "canceled",
        {"workflow_type": "campaign.send"},
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_filtered_stop_all_stops_only_the_matches(case: Case, request: pytest.FixtureRequest) -> None:
    emu = request.getfixturevalue(case.fixture)
    matching, others = case.setup(emu)
    stop_calls: list[tuple[str, Any]] = []
    task = case.operator(task_id="stop_all", **case.kwargs, **FAST)
    assert task.filtered()
    original = task.send_stops

    def spy(hook: Any, target_ids: list[str]) -> Any:
        stop_calls.append(("send_stops", sorted(target_ids)))
        return original(hook, target_ids)

    task.send_stops = spy  # type: ignore[method-assign]
    result = task.execute({})
    assert sorted(result) == sorted(matching)
    assert stop_calls == [("send_stops", sorted(matching))]
    assert all(case.is_stopped(emu, t) for t in matching)
    assert not any(case.is_stopped(emu, t) for t in others), "a target outside the filter was stopped"
    for glob in case.service_wide:
        assert emu.count(path=glob) == 0, f"a service-wide stop ({glob}) was sent for a filtered stop-all"


def test_without_a_filter_rainforest_uses_one_stopall(request: pytest.FixtureRequest) -> None:
    emu = request.getfixturevalue("rainforest")
    matching, others = _rainforest(emu)
    task = RainforestStopAllCollectionsOperator(task_id="stop_all", **FAST)
    assert not task.filtered()
    assert sorted(task.execute({})) == sorted(matching + others)
    assert emu.count(path="*/stopall") == 1 and emu.count(path="/collections/*/stop") == 0


def test_the_hook_default_stops_by_id_even_when_told_nothing_was_filtered(
    request: pytest.FixtureRequest,
) -> None:
    """Services without a service-wide stop call never stop more than the ids they are given."""
    from airflow_provider_stop.hooks.datasift import DataSiftHook

    emu = request.getfixturevalue("datasift")
    matching, others = _datasift_by_name(emu)
    DataSiftHook(**FAST_RETRIES).stop_all_targets(matching, filtered=False)
    assert all(emu.status_of(t) == "stopped" for t in matching)
    assert all(emu.status_of(t) == "running" for t in others)


# ---- safety rails: a dry run, and a ceiling ------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_dry_run_lists_the_matches_and_sends_no_stop(case: Case, request: pytest.FixtureRequest) -> None:
    emu = request.getfixturevalue(case.fixture)
    matching, _ = case.setup(emu)
    before = len(emu.requests)
    result = case.operator(task_id="stop_all", dry_run=True, **case.kwargs, **FAST).execute({})
    assert sorted(result) == sorted(matching)
    assert all(r["details"]["dry_run"] and not r["stopped"] and r["raw_state"] for r in result.values())
    sent = [r for r in emu.requests[before:] if r.method != "GET"]
    assert sent == [] or all(r.path.endswith("/token") for r in sent), sent  # Amperity's OAuth token only
    assert not any(case.is_stopped(emu, t) for t in matching)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_more_matches_than_max_targets_fails_before_any_stop(
    case: Case, request: pytest.FixtureRequest
) -> None:
    emu = request.getfixturevalue(case.fixture)
    matching, _ = case.setup(emu)
    with pytest.raises(TooManyTargetsError) as caught:
        case.operator(task_id="stop_all", max_targets=1, **case.kwargs, **FAST).execute({})
    message = str(caught.value)
    assert f"{len(matching)} running" in message and "max_targets=1" in message
    assert all(repr(t) in message for t in matching)
    assert not any(case.is_stopped(emu, t) for t in matching)
    # at the limit, it stops them
    case.operator(task_id="stop_all2", max_targets=len(matching), **case.kwargs, **FAST).execute({})
    assert all(case.is_stopped(emu, t) for t in matching)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"dry_run": "yes"}, "dry_run must be True or False"),
        ({"dry_run": 1}, "dry_run must be True or False"),
        ({"max_targets": 0}, "max_targets must be a whole number"),
        ({"max_targets": "²"}, "max_targets must be a whole number"),
        ({"max_targets": 2.5}, "max_targets must be a whole number"),
        ({"max_targets": True}, "max_targets must be a whole number"),
    ],
)
def test_bad_safety_rails_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidInputError, match=error):
        FelderaStopAllPipelinesOperator(task_id="stop_all", **kwargs)


def test_templated_safety_rails_are_rendered_then_checked(feldera: Any) -> None:
    feldera.add_pipeline("a")
    feldera.add_pipeline("b")
    op = FelderaStopAllPipelinesOperator(
        task_id="stop_all",
        force=True,
        dry_run="{{ params.preview }}",
        max_targets="{{ params.most }}",
        **FAST,
    )
    assert {"dry_run_only", "max_targets"} <= set(op.template_fields)
    op.dry_run_only, op.max_targets = "False", "1"  # as Jinja renders them
    with pytest.raises(TooManyTargetsError):
        op.execute({})
    op.dry_run_only = "True"
    assert sorted(op.execute({})) == ["a", "b"]
