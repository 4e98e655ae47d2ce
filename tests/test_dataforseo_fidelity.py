"""DataForSEO against the documented contract (issue 12): force_stop of a finished or a queued task,
whatever the service answers, on the sync and the async batch paths; an emulator as strict as the docs."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.hooks.data import TargetStatus
from airflow_provider_stop.hooks.dataforseo import DataForSeoHook
from airflow_provider_stop.hooks.errors import (
    InvalidInputError,
    PermanentBatchStopError,
    StopRejectedError,
    StopTimeoutError,
    TargetNotFoundError,
    TargetNotRunningError,
)
from airflow_provider_stop.notifications.dataforseo import DataForSeoStopOnPageTasksNotifier
from airflow_provider_stop.operators.dataforseo import DataForSeoStopOnPageTasksOperator
from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
from tests.conftest import FAST_RETRIES, run_dag, task_states, use_connection, xcom_value

STOP = "/v3/on_page/force_stop"
SUMMARY = "/v3/on_page/summary/*"
#: Plausible force_stop answers for a task that already finished (undocumented).
FINISHED_CODES = [20000, 40501, 40400, 40401, 40403]
FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}
FAST_RETRIES_KW: dict[str, Any] = {"hook_params": FAST_RETRIES}


def hook(**kwargs: Any) -> DataForSeoHook:
    return DataForSeoHook(**{**FAST_RETRIES, **kwargs})


def serve(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> DataForSeoEmulator:
    emu = DataForSeoEmulator(**{"stop_delay_seconds": 0.1, **settings}).start()
    use_connection(
        monkeypatch,
        "dataforseo_default",
        {**emu.connection(), "extra": {"requests_per_second": 10_000}},
    )
    return emu


def add_finished(emu: DataForSeoEmulator, task_id: str = "done") -> None:
    emu.add_task(task_id, posted_at=time.time() - 2 * emu.settings.crawl_seconds)  # crawled to its limit


async def astop_many(h: DataForSeoHook, ids: list[str], **kwargs: Any) -> dict[str, Any]:
    async with h.async_client() as client:
        return await h.astop_many(client, ids, **kwargs)


# ---- item 5: a task that already finished ------------------------------------------------------
@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("finished_stop_code", FINISHED_CODES)
def test_stopping_a_finished_task_is_success_whatever_force_stop_answers(
    monkeypatch: pytest.MonkeyPatch, finished_stop_code: int, path: str
) -> None:
    """Before: any code but 20000 failed the id (no "already stopped" path for batch stops)."""
    with serve(monkeypatch, finished_stop_code=finished_stop_code) as emu:
        add_finished(emu)
        emu.add_task("running")
        h = hook()
        ids = ["done", "running"]
        acks = h.stop_many(ids) if path == "sync" else asyncio.run(astop_many(h, ids))
        assert acks["running"].accepted and not acks["running"].already_stopped
        if finished_stop_code != 20000:
            assert acks["done"].already_stopped and not acks["done"].accepted
            assert f"force_stop answered {finished_stop_code}" in (acks["done"].message or "")
            assert "summary: finished (limit_exceeded)" in (acks["done"].message or "")
            assert emu.count("GET", SUMMARY) == 1  # only the refused id was read
        statuses = h.wait_until_stopped(ids, poll_interval=0.05, deadline=time.time() + 5)
        assert statuses["done"].details["crawl_stop_reason"] == "limit_exceeded"
        assert statuses["running"].details["crawl_stop_reason"] == "force_stopped"


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("finished_stop_code", FINISHED_CODES)
def test_a_finished_task_fails_with_fail_if_not_running(
    monkeypatch: pytest.MonkeyPatch, finished_stop_code: int, path: str
) -> None:
    with serve(monkeypatch, finished_stop_code=finished_stop_code) as emu:
        add_finished(emu)
        emu.add_task("running")
        h = hook()
        with pytest.raises(PermanentBatchStopError) as caught:
            if path == "sync":
                h.stop_many(["done", "running"], fail_if_not_running=True)
            else:
                asyncio.run(astop_many(h, ["done", "running"], fail_if_not_running=True))
        assert isinstance(caught.value.failures["done"], TargetNotRunningError)
        assert set(caught.value.succeeded) == {"running"}


@pytest.mark.parametrize("code", [40400, 40401])
def test_an_unknown_id_still_fails_when_a_finished_one_gets_the_same_code(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """The summary read tells the two apart: a finished task is stopped, an unknown id is not found."""
    with serve(monkeypatch, finished_stop_code=code, unknown_id_code=code) as emu:
        add_finished(emu)
        with pytest.raises(PermanentBatchStopError) as caught:
            hook().stop_many(["done", "ghost"])
        assert isinstance(caught.value.failures["ghost"], TargetNotFoundError)
        assert caught.value.succeeded["done"].already_stopped


def test_a_refusal_of_a_running_task_is_kept() -> None:
    """A summary that says in_progress (or cannot be read) never turns a refused stop into success."""
    h = DataForSeoHook()
    refusal = StopRejectedError("DataForSEO: 40501 Invalid Field.", target_id="t", error_code="40501")
    running = TargetStatus("t", "in_progress", False, None, {})
    assert h._settled(refusal, running, {}) is refusal
    assert h._settled(refusal, TargetNotFoundError("gone", target_id="t"), {}) is refusal


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
@pytest.mark.parametrize("finished_stop_code", [20000, 40501])
def test_operator_with_finished_tasks(
    monkeypatch: pytest.MonkeyPatch, deferrable: bool, finished_stop_code: int
) -> None:
    with serve(monkeypatch, finished_stop_code=finished_stop_code) as emu:
        add_finished(emu)
        emu.add_task("running")
        dag_id = f"dfs_finished_{deferrable}_{finished_stop_code}"
        with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1)) as dag:
            DataForSeoStopOnPageTasksOperator(
                task_id="stop", crawl_task_ids=["done", "running"], deferrable=deferrable, **FAST
            )
            DataForSeoStopOnPageTasksOperator(
                task_id="strict", crawl_task_ids=["done"], fail_if_not_running=True, **FAST
            )
        dr = run_dag(dag)
        assert task_states(dr) == {"stop": "success", "strict": "failed"}
        result = xcom_value(dr, "stop")
        assert result["done"]["details"]["crawl_stop_reason"] == "limit_exceeded"
        assert result["running"]["details"]["crawl_stop_reason"] == "force_stopped"


@pytest.mark.parametrize("finished_stop_code", [20000, 40501, 40400])
def test_async_notifier_with_a_finished_task(
    monkeypatch: pytest.MonkeyPatch, finished_stop_code: int
) -> None:
    with serve(monkeypatch, finished_stop_code=finished_stop_code) as emu:
        add_finished(emu)
        emu.add_task("running")
        notifier = DataForSeoStopOnPageTasksNotifier(
            crawl_task_ids=["done", "running"],
            wait_for_completion=True,
            poll_interval=0.05,
            **FAST_RETRIES_KW,
        )
        result = asyncio.run(notifier.async_notify({}))
        assert result["error"] is None
        assert result["stopped"]["done"]["raw_state"] == "finished"
        assert result["stopped"]["running"]["details"]["crawl_stop_reason"] == "force_stopped"


# ---- item 5: a task still in the queue ---------------------------------------------------------
QUEUED = [
    pytest.param(code, summary, after, id=f"stop{code}-summary{summary}-{after}")
    for code in (20000, 40602)
    for summary in ("40602", "empty")
    for after in ("finished", "queued")
]


@pytest.mark.parametrize(("queued_stop_code", "queued_summary", "queued_after_stop"), QUEUED)
def test_a_queued_task_is_stopped_and_the_wait_ends_before_the_deadline(
    monkeypatch: pytest.MonkeyPatch, queued_stop_code: int, queued_summary: str, queued_after_stop: str
) -> None:
    """Before: 40602 from force_stop failed the id; a queued task never reported finished held the
    wait until its deadline."""
    settings: dict[str, Any] = {"queue_seconds": 3600, "queued_stop_code": queued_stop_code}
    settings |= {"queued_summary": queued_summary, "queued_after_stop": queued_after_stop}
    with serve(monkeypatch, **settings) as emu:
        emu.add_task("q")
        h = hook(queued_grace=0.5)
        assert h.get_status("q").raw_state == "in_queue" and not h.get_status("q").stopped
        ack = h.stop_many(["q"])["q"]
        assert ack.accepted and not ack.already_stopped
        started = time.monotonic()
        status = h.wait_until_stopped(["q"], poll_interval=0.05, deadline=time.time() + 30)["q"]
        assert time.monotonic() - started < 5
        if queued_after_stop == "finished":
            assert status.raw_state == "finished" and status.details["crawl_stop_reason"] == "force_stopped"
        else:
            assert status.raw_state == "in_queue" and status.stopped and status.details["never_started"]


@pytest.mark.parametrize("queued_summary", ["40602", "empty"])
def test_without_a_grace_a_queued_task_is_not_stopped(
    monkeypatch: pytest.MonkeyPatch, queued_summary: str
) -> None:
    """Sensors (no ``queued_grace``): a task waiting in the queue will crawl; it is not stopped."""
    with serve(monkeypatch, queue_seconds=3600, queued_summary=queued_summary) as emu:
        emu.add_task("q")
        with pytest.raises(StopTimeoutError, match=r"'q' \(in_queue\)"):
            hook().wait_until_stopped(["q"], poll_interval=0.05, deadline=time.time() + 0.5)


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
@pytest.mark.parametrize("queued_stop_code", [20000, 40602])
def test_operator_with_a_task_never_reported_finished(
    monkeypatch: pytest.MonkeyPatch, deferrable: bool, queued_stop_code: int
) -> None:
    settings = {"queue_seconds": 3600, "queued_stop_code": queued_stop_code, "queued_after_stop": "queued"}
    with serve(monkeypatch, **settings) as emu:
        emu.add_task("q")
        emu.add_task("running", posted_at=time.time() - 3600)
        with DAG(
            dag_id=f"dfs_queued_{deferrable}_{queued_stop_code}",
            schedule=None,
            start_date=datetime(2026, 1, 1),
        ) as dag:
            DataForSeoStopOnPageTasksOperator(
                task_id="stop",
                crawl_task_ids=["q", "running"],
                deferrable=deferrable,
                queued_grace=0.5,
                timeout=60,
                **FAST,
            )
        started = time.monotonic()
        dr = run_dag(dag)
        assert task_states(dr) == {"stop": "success"}
        assert time.monotonic() - started < 45
        result = xcom_value(dr, "stop")
        assert result["q"]["raw_state"] == "in_queue" and result["q"]["details"]["never_started"] is True
        assert result["running"]["details"]["crawl_stop_reason"] == "force_stopped"


@pytest.mark.parametrize("queued_stop_code", [20000, 40602])
def test_async_notifier_with_a_queued_task(monkeypatch: pytest.MonkeyPatch, queued_stop_code: int) -> None:
    settings = {"queue_seconds": 3600, "queued_stop_code": queued_stop_code, "queued_after_stop": "queued"}
    with serve(monkeypatch, **settings) as emu:
        emu.add_task("q")
        notifier = DataForSeoStopOnPageTasksNotifier(
            crawl_task_ids=["q"],
            wait_for_completion=True,
            poll_interval=0.05,
            queued_grace=0.3,
            **FAST_RETRIES_KW,
        )
        result = asyncio.run(notifier.async_notify({}))
        assert result["error"] is None and result["stopped"]["q"]["details"]["never_started"] is True


@pytest.mark.usefixtures("airflow_db")
def test_a_queued_task_that_ignores_the_stop_and_crawls_gets_it_again_with_escalate_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If force_stop of a queued task does nothing (``ignored``), the task crawls once it leaves the
    queue: ``escalate_after`` sends force_stop once more to what still runs.

    The crawl is posted right before the stop task runs (its ``pre_execute``), so how long
    ``dag.test()`` takes to start a task (seconds, for a session's first run) cannot empty the queue
    before the first force_stop, which must find the task still queued."""
    with serve(monkeypatch, queue_seconds=1.0, queued_stop_code=40602, queued_after_stop="ignored") as emu:
        with DAG(dag_id="dfs_queued_ignored", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
            DataForSeoStopOnPageTasksOperator(
                task_id="stop",
                crawl_task_ids=["q"],
                queued_grace=None,
                escalate_after=2.0,
                timeout=20,
                pre_execute=lambda context: emu.add_task("q"),
                **FAST,
            )
        dr = run_dag(dag)
        assert task_states(dr) == {"stop": "success"}
        first_stop = next(r.at for r in emu.requests if r.path == STOP)
        assert first_stop < emu.tasks["q"].posted_at + 1.0  # the first stop found the crawl queued
        assert xcom_value(dr, "stop")["q"]["details"]["crawl_stop_reason"] == "force_stopped"
        assert emu.count("POST", STOP) == 2


@pytest.mark.parametrize("grace", [0, -1, "soon", float("inf")])
def test_a_bad_queued_grace_fails_before_any_request(grace: Any) -> None:
    with pytest.raises(InvalidInputError, match="queued_grace"):
        DataForSeoStopOnPageTasksOperator(task_id="stop", crawl_task_ids=["a"], queued_grace=grace)
    with pytest.raises(InvalidInputError, match="queued_grace"):
        DataForSeoHook(queued_grace=grace)


# ---- the emulator is as strict as the documented contract --------------------------------------
def test_the_emulator_refuses_what_the_docs_do_not_allow(dfs: DataForSeoEmulator) -> None:
    dfs.add_task("t")
    auth = (dfs.settings.login, dfs.settings.password)
    wrong_method = requests.get(dfs.url + STOP, auth=auth, timeout=5)
    assert wrong_method.status_code == 404 and wrong_method.json()["status_code"] == 40400
    query = requests.get(dfs.url + "/v3/on_page/summary/t", params={"x": "1"}, auth=auth, timeout=5)
    assert query.status_code == 200 and query.json()["status_code"] == 40501
    extra_field = requests.post(dfs.url + STOP, json=[{"id": "t", "force": True}], auth=auth, timeout=5)
    assert extra_field.json()["status_code"] == 40506
    legacy = requests.post(dfs.url + STOP, json={"0": {"id": "t"}}, auth=auth, timeout=5)
    assert legacy.json()["status_code"] == 40503  # the inferred object-keyed form: a setting, off
    assert dfs.tasks["t"].stopped_at is None
    dfs.settings.lenient = True
    assert (
        requests.get(dfs.url + "/v3/on_page/summary/t", params={"x": "1"}, auth=auth, timeout=5).json()[
            "status_code"
        ]
        == 20000
    )
    assert (
        requests.post(dfs.url + STOP, json=[{"id": "t", "force": True}], auth=auth, timeout=5).json()[
            "tasks"
        ][0]["status_code"]
        == 20000
    )


@pytest.mark.parametrize("stop_delay_seconds", [0.0, 0.4], ids=["finished-at-once", "in-progress-first"])
def test_the_wait_follows_a_stop_that_shows_at_once_or_later(
    monkeypatch: pytest.MonkeyPatch, stop_delay_seconds: float
) -> None:
    with serve(monkeypatch, stop_delay_seconds=stop_delay_seconds) as emu:
        emu.add_task("t")
        h = hook()
        h.stop_many(["t"])
        assert (h.get_status("t").raw_state == "finished") == (stop_delay_seconds == 0)
        status = h.wait_until_stopped(["t"], poll_interval=0.05, deadline=time.time() + 5)["t"]
        assert status.details["crawl_stop_reason"] == "force_stopped"
