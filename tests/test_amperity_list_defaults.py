"""Amperity stop-all against a server that applies the spec's list defaults (issue 28).

The OpenAPI file in amperity-docs (``downloads/openapi/control-plane-2024-04-01-openapi.json``,
``list-workflows``) gives ``state`` the default ``succeeded`` and ``type`` the default
``courier.group/run``; the list page (``amperity_api/source/endpoint_get_workflows_list.rst``) says only
"Optional", and its ``type`` tip has the unfiltered list return "workflows (and workflow types)". Which
a server does is unconfirmed: the emulator's ``list_defaults`` serves none, either, or both, and
stop-all must find the running runs of every documented type in each case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.hooks.amperity import AmperityHook
from airflow_provider_stop.operators.amperity import AmperityStopAllWorkflowRunsOperator
from airflow_provider_stop.testing.amperity import SPEC_LIST_DEFAULTS, AmperityEmulator
from tests.conftest import FAST_RETRIES, run_dag, task_states, xcom_value

#: Every workflow type whose wire value a public source shows (see the ledger).
TYPES = ("courier.group/run", "campaign.send", "campaign.fetch", "amperity.orchestration.orchestration/run")
DEFAULTS = {
    "no-defaults": {},
    "state-default": {"state": SPEC_LIST_DEFAULTS["state"]},
    "type-default": {"type": SPEC_LIST_DEFAULTS["type"]},
    "spec-defaults": dict(SPEC_LIST_DEFAULTS),
}
#: List requests stop-all makes on the tenant below: the read without filters, then (when what it showed
#: could be the defaults' doing) one read per documented running state and/or documented type.
REQUESTS = {"no-defaults": 1, "state-default": 1 + 3, "type-default": 1 + 4, "spec-defaults": 1 + 3 * 4}


def hook(**kwargs: Any) -> AmperityHook:
    return AmperityHook(**{**FAST_RETRIES, **kwargs})


def list_requests(emu: AmperityEmulator) -> list[Any]:
    return [r for r in list(emu.requests) if r.method == "GET" and r.path == "/api/workflow/runs"]


def tenant(emu: AmperityEmulator) -> list[str]:
    """A running run of each documented type, and runs that ended (succeeded of two types, failed,
    canceled); the running ones' ids."""
    emu.add_run("wf-ok-courier", state="succeeded", type="courier.group/run")
    emu.add_run("wf-ok-campaign", state="succeeded", type="campaign.send")
    emu.add_run("wf-failed", state="failed", type="campaign.send")
    emu.add_run("wf-canceled", state="canceled", type="amperity.orchestration.orchestration/run")
    return [emu.add_run(f"wf-run-{i}", type=t).id for i, t in enumerate(TYPES)]


@pytest.mark.parametrize("defaults", list(DEFAULTS))
def test_stop_all_finds_running_runs_of_every_type_whatever_defaults_the_server_applies(
    amperity: AmperityEmulator, defaults: str
) -> None:
    """Before: with the ``state`` default only succeeded runs were listed (nothing stopped); with the
    ``type`` default only courier-group runs."""
    amperity.settings.list_defaults = DEFAULTS[defaults]
    running = tenant(amperity)
    h = hook()
    found = h.running_targets()
    assert sorted(found) == sorted(running)
    sent = list_requests(amperity)
    assert len(sent) == REQUESTS[defaults]
    first = sent[0].query
    assert "state" not in first and "type" not in first  # the documented reading: no filter needed
    assert all(set(r.query) <= {"limit", "created_from", "state", "type"} for r in sent)
    acks = h.stop_all_targets(found)
    assert sorted(acks) == sorted(running)
    assert all(amperity.runs[r].stop_at is None for r in ("wf-ok-courier", "wf-failed", "wf-canceled"))


def test_the_reads_that_cannot_be_the_defaults_doing_are_explicit(amperity: AmperityEmulator) -> None:
    amperity.settings.list_defaults = dict(SPEC_LIST_DEFAULTS)
    tenant(amperity)
    hook().running_targets()
    explicit = {(r.query["state"][0], r.query["type"][0]) for r in list_requests(amperity)[1:]}
    assert explicit == {(s, t) for s in ("started", "in progress", "stopping") for t in TYPES}


@pytest.mark.parametrize("defaults", list(DEFAULTS))
def test_a_workflow_type_filter_needs_only_the_state_reads(amperity: AmperityEmulator, defaults: str) -> None:
    amperity.settings.list_defaults = DEFAULTS[defaults]
    tenant(amperity)
    h = hook(workflow_type="campaign.send")
    assert h.running_targets() == ["wf-run-1"]
    sent = list_requests(amperity)
    assert all(r.query["type"] == ["campaign.send"] for r in sent)
    # campaign.send shows a failed run unless the state default hides it: then three reads by state.
    assert len(sent) == (4 if "state" in DEFAULTS[defaults] else 1)


@pytest.mark.parametrize("defaults", ["no-defaults", "spec-defaults"])
def test_a_window_that_shows_nothing_running_is_read_again_by_state_and_type(
    amperity: AmperityEmulator, defaults: str
) -> None:
    """What the hook cannot tell apart: nothing ran but succeeded courier-group runs (or nothing at
    all), or the server applied its defaults. Either way it asks explicitly, 12 small reads, once."""
    amperity.settings.list_defaults = DEFAULTS[defaults]
    amperity.add_run("wf-ok", state="succeeded", type="courier.group/run")
    assert hook().running_targets() == []
    assert len(list_requests(amperity)) == 13
    amperity.reset_log()
    amperity.runs.clear()
    assert hook().running_targets() == []
    assert len(list_requests(amperity)) == 13


def test_status_reads_never_read_the_list_again_by_state(amperity: AmperityEmulator) -> None:
    """A wait reads a run the list does not show by id: it needs no second reading of the list."""
    amperity.settings.list_defaults = dict(SPEC_LIST_DEFAULTS)
    running = tenant(amperity)
    statuses = hook().get_statuses(running)
    assert all(not s.stopped for s in statuses.values())
    assert len(list_requests(amperity)) == 1
    assert all("state" not in r.query for r in list_requests(amperity))


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_the_stop_all_operator_stops_every_running_run_under_the_spec_defaults(
    amperity: AmperityEmulator, deferrable: bool
) -> None:
    amperity.settings.list_defaults = dict(SPEC_LIST_DEFAULTS)
    running = tenant(amperity)
    with DAG(dag_id=f"amperity_spec_defaults_{deferrable}", schedule=None, start_date=datetime(2026, 1, 1)):
        task = AmperityStopAllWorkflowRunsOperator(
            task_id="stop_all", deferrable=deferrable, poll_interval=0.05, hook_params=FAST_RETRIES
        )
    dr = run_dag(task.dag)
    assert task_states(dr) == {"stop_all": "success"}
    result = xcom_value(dr, "stop_all")
    assert sorted(result) == sorted(running)
    assert all(r["raw_state"] == "canceled" for r in result.values())


# ---- the emulator --------------------------------------------------------------------------------
def _ids(emu: AmperityEmulator, **params: str) -> list[str]:
    headers = {
        "Authorization": f"Bearer {emu.settings.access_token}",
        "amperity-tenant": emu.settings.tenant,
        "api-version": "2024-04-01",
    }
    answer = requests.get(emu.url + "/api/workflow/runs", params=params, headers=headers, timeout=5)
    assert answer.ok, answer.text
    return sorted(run["id"] for run in answer.json()["data"])


def test_the_emulator_applies_the_spec_defaults_only_when_told(amperity: AmperityEmulator) -> None:
    running = tenant(amperity)
    everything = sorted([*running, "wf-ok-courier", "wf-ok-campaign", "wf-failed", "wf-canceled"])
    assert _ids(amperity) == everything
    amperity.settings.list_defaults = dict(SPEC_LIST_DEFAULTS)
    assert _ids(amperity) == ["wf-ok-courier"]
    assert _ids(amperity, type="campaign.send") == ["wf-ok-campaign"]
    assert _ids(amperity, state="in progress") == ["wf-run-0"]
    assert _ids(amperity, state="in progress", type="campaign.send") == ["wf-run-1"]
