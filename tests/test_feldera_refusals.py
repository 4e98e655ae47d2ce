"""Issue 12, items 3 and 4: the documented ways Feldera refuses a graceful stop, a checkpoint that fails,
and a pipeline that carried an error before the stop; plus the emulator's strictness.

Every answer the real server may give where the facts are unconfirmed is an emulator setting, and the
affected path runs against each: whichever is real, a user who allowed a forced stop gets the pipeline
stopped, and one who did not gets a prompt failure that says what to set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.sdk import DAG, TaskDeferred

from airflow_provider_stop.hooks.errors import (
    PermanentBatchStopError,
    StopFailedError,
    TargetNotRunningError,
    TransientBatchStopError,
)
from airflow_provider_stop.hooks.feldera import FelderaHook, GracefulStopRefusedError
from airflow_provider_stop.notifications.feldera import FelderaStopPipelineNotifier
from airflow_provider_stop.operators.feldera import (
    FelderaStopAllPipelinesOperator,
    FelderaStopPipelineOperator,
)
from airflow_provider_stop.testing.feldera import (
    NO_STORAGE_ANSWERS,
    WHILE_STOPPING_ANSWERS,
    FelderaEmulator,
)
from airflow_provider_stop.triggers.wait import StopWaitTrigger
from tests.conftest import FAST_RETRIES, run_dag, task_states, use_connection, xcom_value

pytestmark = pytest.mark.usefixtures("airflow_db")
FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}
#: A deployment_error the pipeline had before anyone asked it to stop (a runtime failure).
EARLIER = {"message": "worker panicked: out of memory", "error_code": "RuntimeError", "details": {}}
EARLIER_TEXT = "RuntimeError: worker panicked: out of memory"
#: How the user may allow a forced stop (the operator's force_after reaches the hook as an option).
ALLOWS_FORCE = [{"fallback_to_force": True}, {"force_after": 60.0}]
NO_STORAGE = [{"no_storage_graceful_stop": answer} for answer in NO_STORAGE_ANSWERS]


def hook(**kwargs: Any) -> FelderaHook:
    return FelderaHook("feldera_default", **{**FAST_RETRIES, **kwargs})


def wait(h: FelderaHook, names: list[str], seconds: float = 5.0) -> dict[str, Any]:
    return h.wait_until_stopped(names, poll_interval=0.05, deadline=time.time() + seconds)


def stop_forces(emu: FelderaEmulator, name: str) -> list[str]:
    return [
        r.query["force"][0] for r in emu.requests if r.method == "POST" and r.path.endswith(f"/{name}/stop")
    ]


@pytest.fixture
def enterprise(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[FelderaEmulator]:
    """An Enterprise emulator behind ``feldera_default``; ``indirect`` params are its settings."""
    settings = getattr(request, "param", {})
    with FelderaEmulator(edition="Enterprise", suspend_seconds=0.05, stopping_seconds=0.1, **settings) as emu:
        use_connection(monkeypatch, "feldera_default", emu.connection())
        yield emu


def run(dag_id: str, make: Any) -> Any:
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        make()
    return run_dag(dag)


# ---- (a) an Unavailable pipeline: 503 PipelineUnavailable is a refusal, not an outage ---------------
@pytest.mark.parametrize(
    "enterprise",
    [{"retry_after_on_503": True}, {"retry_after_on_503": False}],
    ids=["retry-after", "no-retry-after"],
    indirect=True,
)
def test_unavailable_pipeline_refuses_a_graceful_stop_at_once_saying_what_to_set(
    enterprise: FelderaEmulator,
) -> None:
    enterprise.add_pipeline("p", state="Unavailable")
    started = time.monotonic()
    with pytest.raises(GracefulStopRefusedError) as err:
        hook(retry_min_wait=1.0).stop("p", force=False)
    assert time.monotonic() - started < 1.0  # not retried (with or without the manager's Retry-After: 5)
    assert err.value.status_code == 503 and err.value.error_code == "PipelineUnavailable"
    assert err.value.reason == "unavailable" and not err.value.retryable
    assert "fallback_to_force=True" in str(err.value) and "force_after" in str(err.value)
    assert stop_forces(enterprise, "p") == ["false"]


@pytest.mark.parametrize("allow", ALLOWS_FORCE, ids=["fallback_to_force", "force_after"])
def test_unavailable_pipeline_is_forced_when_allowed(
    enterprise: FelderaEmulator, allow: dict[str, Any]
) -> None:
    enterprise.add_pipeline("p", state="Unavailable")
    h = hook()
    ack = h.stop("p", force=False, **allow)
    assert ack.options == {"force": True} and "graceful stop refused: unavailable" in str(ack.message)
    assert stop_forces(enterprise, "p") == ["false", "true"]
    status = wait(h, ["p"])["p"]
    assert status.raw_state == "Stopped" and status.error is None


def test_unavailable_pipeline_async_path_is_the_same(enterprise: FelderaEmulator) -> None:
    enterprise.add_pipeline("p", state="Unavailable")
    enterprise.add_pipeline("q", state="Unavailable")
    h = hook()

    async def scenario() -> Any:
        async with h.async_client() as client:
            with pytest.raises(GracefulStopRefusedError):
                await h.astop(client, "q", force=False)
            return await h.astop(client, "p", force=False, fallback_to_force=True)

    assert asyncio.run(scenario()).options == {"force": True}
    assert stop_forces(enterprise, "q") == ["false"] and stop_forces(enterprise, "p") == ["false", "true"]


@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_operator_with_force_after_forces_an_unavailable_pipeline(
    enterprise: FelderaEmulator, deferrable: bool
) -> None:
    enterprise.add_pipeline("p", state="Unavailable")
    dr = run(
        f"unavailable_{deferrable}",
        lambda: FelderaStopPipelineOperator(
            task_id="stop", pipeline_name="p", force_after=300, deferrable=deferrable, timeout=20, **FAST
        ),
    )
    assert task_states(dr) == {"stop": "success"}
    assert xcom_value(dr, "stop")["p"]["raw_state"] == "Stopped"
    assert stop_forces(enterprise, "p") == ["false", "true"]


# ---- (b) a pipeline without storage: three plausible answers --------------------------------------
@pytest.mark.parametrize(
    "enterprise",
    [{"no_storage_graceful_stop": a} for a in NO_STORAGE_ANSWERS],
    ids=NO_STORAGE_ANSWERS,
    indirect=True,
)
@pytest.mark.parametrize("allow", ALLOWS_FORCE, ids=["fallback_to_force", "force_after"])
def test_no_storage_pipeline_ends_stopped_whatever_the_server_answers(
    enterprise: FelderaEmulator, allow: dict[str, Any]
) -> None:
    enterprise.add_pipeline("p", storage=False)
    op = FelderaStopPipelineOperator(
        task_id="stop",
        pipeline_name="p",
        deferrable=False,
        fallback_to_force=bool(allow.get("fallback_to_force")),
        force_after=allow.get("force_after"),
        **FAST,
    )
    result = op.execute({})["p"]
    assert result["raw_state"] == "Stopped" and result["stopped"] and result["error"] is None
    answer = enterprise.settings.no_storage_graceful_stop
    if answer == "refuse":  # 405, then a forced stop
        assert stop_forces(enterprise, "p") == ["false", "true"]
    else:  # 202; the checkpoint fails ("fail": reported as the fallback it is) or is masked ("clean")
        assert stop_forces(enterprise, "p") == ["false"]
        assert result["details"].get("fell_back_to_force", False) is (answer == "fail")
    if answer == "fail":
        assert result["details"]["graceful_stop_error"].startswith("SuspendError:")


@pytest.mark.parametrize(
    "enterprise",
    [{"no_storage_graceful_stop": a} for a in NO_STORAGE_ANSWERS],
    ids=NO_STORAGE_ANSWERS,
    indirect=True,
)
def test_no_storage_pipeline_without_permission_to_force(enterprise: FelderaEmulator) -> None:
    enterprise.add_pipeline("p", storage=False)
    op = FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", deferrable=False, **FAST)
    answer = enterprise.settings.no_storage_graceful_stop
    if answer == "refuse":
        with pytest.raises(
            PermanentBatchStopError, match=r"(?s)405 UnsupportedPipelineAction.*fallback_to_force"
        ):
            op.execute({})
    elif answer == "fail":
        with pytest.raises(
            StopFailedError, match="graceful stop failed, so Feldera stopped the pipeline forcefully"
        ):
            op.execute({})
    else:  # the server reports nothing wrong: nothing to report
        assert op.execute({})["p"]["error"] is None
    assert stop_forces(enterprise, "p") == ["false"]


def test_a_failed_checkpoint_with_fallback_allowed_is_reported_not_failed(
    enterprise: FelderaEmulator,
) -> None:
    """The suspension errors, Feldera stops the pipeline forcefully with the error set: with
    ``fallback_to_force`` that is the fallback the user allowed, and the result says so."""
    enterprise.add_pipeline(
        "p", graceful_stop_error={"message": "checkpoint failed", "error_code": "SuspendError"}
    )
    op = FelderaStopPipelineOperator(
        task_id="stop", pipeline_name="p", fallback_to_force=True, deferrable=False, **FAST
    )
    result = op.execute({})["p"]
    assert result["error"] is None and result["details"]["fell_back_to_force"] is True
    assert result["details"]["graceful_stop_error"] == "SuspendError: checkpoint failed"


# ---- (c) already stopping: refused (the spec's wording, older servers) or accepted (current source) --
@pytest.mark.parametrize(
    "enterprise",
    [{"graceful_stop_while_stopping": a} for a in WHILE_STOPPING_ANSWERS],
    ids=WHILE_STOPPING_ANSWERS,
    indirect=True,
)
@pytest.mark.parametrize("allow", ALLOWS_FORCE, ids=["fallback_to_force", "force_after"])
def test_already_stopping_pipeline_is_waited_on_when_allowed(
    enterprise: FelderaEmulator, allow: dict[str, Any]
) -> None:
    enterprise.add_pipeline("p", state="Stopping")
    h = hook()
    ack = h.stop("p", force=False, **allow)
    assert stop_forces(enterprise, "p") == ["false"]  # no second stop: the one under way is waited on
    if enterprise.settings.graceful_stop_while_stopping == "refuse":
        assert ack.accepted is False and "already stopping" in str(ack.message)
    assert wait(h, ["p"])["p"].raw_state == "Stopped"


@pytest.mark.parametrize(
    "enterprise",
    [{"graceful_stop_while_stopping": a} for a in WHILE_STOPPING_ANSWERS],
    ids=WHILE_STOPPING_ANSWERS,
    indirect=True,
)
def test_already_stopping_pipeline_without_permission(enterprise: FelderaEmulator) -> None:
    enterprise.add_pipeline("p", state="Stopping")
    if enterprise.settings.graceful_stop_while_stopping == "refuse":
        with pytest.raises(
            GracefulStopRefusedError, match=r"IllegalPipelineAction.*fallback_to_force"
        ) as err:
            hook().stop("p", force=False)
        assert err.value.reason == "already_stopping"
    else:
        assert hook().stop("p", force=False).message == "Pipeline is forcefully stopping"
    assert stop_forces(enterprise, "p") == ["false"]


@pytest.mark.parametrize("enterprise", [{"graceful_stop_while_stopping": "refuse"}], indirect=True)
def test_refused_graceful_stop_of_a_stopped_pipeline_is_nothing_to_stop(enterprise: FelderaEmulator) -> None:
    enterprise.add_pipeline("idle", running=False)
    assert hook().stop("idle", force=False).already_stopped
    with pytest.raises(TargetNotRunningError):
        hook().stop("idle", force=False, fail_if_not_running=True)


@pytest.mark.parametrize("enterprise", [{"graceful_stop_while_stopping": "refuse"}], indirect=True)
def test_refused_graceful_stop_of_a_provisioning_pipeline_is_forced_when_allowed(
    enterprise: FelderaEmulator,
) -> None:
    enterprise.add_pipeline("p", state="Provisioning")
    h = hook()
    assert h.stop("p", force=False, fallback_to_force=True).options == {"force": True}
    assert stop_forces(enterprise, "p") == ["false", "true"]
    assert wait(h, ["p"])["p"].raw_state == "Stopped"


# ---- item 4: an error that was there before the stop is reported, not failed --------------------
@pytest.mark.parametrize("state", ["Stopped", "Stopping"])
@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_stopping_a_pipeline_that_failed_earlier_succeeds_and_reports_the_error(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch, state: str, deferrable: bool
) -> None:
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__TRIGGER_MIN_DELAY", "0")
    feldera.add_pipeline("p", state=state, error=EARLIER)
    dr = run(
        f"prior_{state}_{deferrable}",
        lambda: FelderaStopPipelineOperator(
            task_id="stop", pipeline_name="p", force=True, deferrable=deferrable, **FAST
        ),
    )
    assert task_states(dr) == {"stop": "success"}
    result = xcom_value(dr, "stop")["p"]
    assert result["raw_state"] == "Stopped" and result["error"] is None
    assert result["details"]["prior_error"] == EARLIER_TEXT
    assert (
        result["details"]["deployment_error"]["error_code"] == "RuntimeError"
    )  # still shown as Feldera has it


def test_prior_error_travels_through_the_trigger_to_a_fresh_operator(
    feldera: FelderaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deferred path resumes on another worker: the prior error must ride in the trigger's event."""
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__WAIT_BEFORE_DEFER", "0")
    monkeypatch.setenv("AIRFLOW__STOP_PROVIDER__TRIGGER_MIN_DELAY", "0")
    feldera.add_pipeline("p", state="Stopping", error=EARLIER)

    def make() -> FelderaStopPipelineOperator:
        return FelderaStopPipelineOperator(
            task_id="stop", pipeline_name="p", force=True, deferrable=True, **FAST
        )

    with pytest.raises(TaskDeferred) as deferred:
        make().execute({})
    _, kwargs = deferred.value.trigger.serialize()
    trigger = StopWaitTrigger(**kwargs)  # as the triggerer rebuilds it

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    result = make().execute_complete({}, event)["p"]  # a fresh instance, no defer kwargs
    assert result["error"] is None and result["details"]["prior_error"] == EARLIER_TEXT


@pytest.mark.parametrize("fail_on_stop_error", [True, False])
def test_an_error_the_stop_itself_produced_still_fails(
    feldera: FelderaEmulator, fail_on_stop_error: bool
) -> None:
    pipeline = feldera.add_pipeline("p", state="Stopping", error=EARLIER)
    new_error = {"message": "deprovisioning failed", "error_code": "RunnerError", "details": {}}
    pipeline.timeline[-1].error = new_error  # the stop under way ends with another error
    op = FelderaStopPipelineOperator(
        task_id="stop",
        pipeline_name="p",
        force=True,
        deferrable=False,
        fail_on_stop_error=fail_on_stop_error,
        **FAST,
    )
    if fail_on_stop_error:
        with pytest.raises(StopFailedError, match="RunnerError: deprovisioning failed"):
            op.execute({})
        return
    result = op.execute({})["p"]
    assert result["error"] == "RunnerError: deprovisioning failed"
    assert result["details"]["prior_error"] == EARLIER_TEXT


def test_stop_all_stops_a_pipeline_stopping_because_of_an_error(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("nightly_failed", state="Stopping", error=EARLIER)
    feldera.add_pipeline("nightly_ok")
    op = FelderaStopAllPipelinesOperator(
        task_id="stop_all", name_pattern="nightly_*", force=True, deferrable=False, **FAST
    )
    result = op.execute({})
    assert sorted(result) == ["nightly_failed", "nightly_ok"]
    assert result["nightly_failed"]["error"] is None
    assert result["nightly_failed"]["details"]["prior_error"] == EARLIER_TEXT
    assert "prior_error" not in result["nightly_ok"]["details"]


def test_notifier_reports_the_earlier_error_as_such(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p", state="Stopping", error=EARLIER)
    notifier = FelderaStopPipelineNotifier(
        pipeline_name="p", force=True, wait_for_completion=True, poll_interval=0.05, hook_params=FAST_RETRIES
    )
    notifier.notify({})
    assert notifier.result["error"] is None
    stopped = notifier.result["stopped"]["p"]
    assert stopped["error"] is None and stopped["details"]["prior_error"] == EARLIER_TEXT

    feldera.add_pipeline("q", state="Stopping", error=EARLIER)
    notifier.pipeline_name = "q"
    body = asyncio.run(notifier.async_notify({}))
    assert body["stopped"]["q"]["details"]["prior_error"] == EARLIER_TEXT


def test_no_status_read_before_a_stop_that_is_not_waited_on(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    FelderaStopPipelineOperator(
        task_id="stop", pipeline_name="p", force=True, wait_for_completion=False, **FAST
    ).execute({})
    assert feldera.count("GET") == 0


# ---- the emulator is as strict as the documented contract --------------------------------------
def test_emulator_refuses_undocumented_query_values_and_methods(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    with httpx.Client(base_url=feldera.url) as client:
        bad_force = client.post("/v0/pipelines/p/stop", params={"force": "yes"})
        assert bad_force.status_code == 400 and bad_force.text.startswith("Query deserialize error")
        bad_selector = client.get("/v0/pipelines/p", params={"selector": "everything"})
        assert bad_selector.status_code == 400 and "unknown variant" in bad_selector.text
        assert client.get("/v0/pipelines/p/stop").status_code == 404  # actix: no route for GET
        assert client.post("/v0/nothing-here").status_code == 404
        unknown = client.post("/v0/pipelines/ghost/stop", params={"force": "true"})
        assert unknown.status_code == 404
        assert set(unknown.json()) == {"message", "error_code", "details"}
    assert feldera.status_of("p") == "Running"  # none of it stopped anything


def test_emulator_wrong_method_status_is_a_setting() -> None:
    with FelderaEmulator(wrong_method_status=405) as emu, httpx.Client(base_url=emu.url) as client:
        assert client.get("/v0/pipelines/p/stop").status_code == 405
        assert client.get("/v0/unknown").status_code == 404
    with pytest.raises(ValueError, match="no_storage_graceful_stop"):
        FelderaEmulator(no_storage_graceful_stop="maybe")


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        ({"state": "Unavailable"}, 503, "PipelineUnavailable"),
        ({"storage": False}, 405, "UnsupportedPipelineAction"),
        ({"state": "Stopping"}, 400, "IllegalPipelineAction"),
    ],
    ids=["unavailable", "no-storage", "already-stopping"],
)
def test_emulator_refusals_are_in_feldera_error_shape(
    enterprise: FelderaEmulator, setup: dict[str, Any], status: int, code: str
) -> None:
    enterprise.add_pipeline("p", **setup)
    with httpx.Client(base_url=enterprise.url) as client:
        answer = client.post("/v0/pipelines/p/stop", params={"force": "false"})
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"message", "error_code", "details"} and body["error_code"] == code
    assert (answer.headers.get("retry-after") == "5") is (status == 503)  # retry_after_on_503 default


def test_standby_pipeline_refuses_a_graceful_stop_and_is_forced_when_allowed(
    enterprise: FelderaEmulator,
) -> None:
    """400 InvalidTransition (the pipeline's own /suspend from Standby) is a refusal like the others."""
    enterprise.add_pipeline("p", state="Standby")
    with pytest.raises(GracefulStopRefusedError, match="InvalidTransition") as err:
        hook().stop("p", force=False)
    assert err.value.reason == "standby"
    h = hook()
    assert h.stop("p", force=False, fallback_to_force=True).options == {"force": True}
    assert wait(h, ["p"])["p"].raw_state == "Stopped"


@pytest.mark.parametrize(
    "enterprise",
    [{"suspended_seconds": 0.0}, {"suspended_seconds": 0.5}],
    ids=["never-suspended", "suspended-shown"],
    indirect=True,
)
def test_graceful_stop_ends_whether_or_not_suspended_is_shown(enterprise: FelderaEmulator) -> None:
    """The lifecycle guide says Suspended is normally not observed; if a server shows it, it is final."""
    enterprise.add_pipeline("p")
    h = hook()
    h.stop("p", force=False)
    status = wait(h, ["p"])["p"]
    assert status.stopped and status.error is None
    expected = "Suspended" if enterprise.settings.suspended_seconds else "Stopped"
    assert status.raw_state == expected


def test_when_the_status_before_the_stop_cannot_be_read_no_stop_is_sent(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p")
    feldera.inject("status", status=503, times=1000, method="GET")
    op = FelderaStopPipelineOperator(task_id="stop", pipeline_name="p", force=True, deferrable=False, **FAST)
    with pytest.raises(TransientBatchStopError, match=r"(?s)status check before the stop.*HTTP 503"):
        op.execute({})
    assert feldera.count("POST") == 0 and feldera.status_of("p") == "Running"


def test_an_unknown_name_in_the_read_before_the_stop_is_left_to_the_stop(feldera: FelderaEmulator) -> None:
    feldera.add_pipeline("p", running=False, error=EARLIER)
    op = FelderaStopPipelineOperator(
        task_id="stop",
        pipeline_name=["p", "ghost"],
        force=True,
        deferrable=False,
        fail_on_partial_failure=False,
        **FAST,
    )
    result = op.execute({})
    assert result["p"]["details"]["prior_error"] == EARLIER_TEXT and result["p"]["error"] is None
    assert "Unknown pipeline name 'ghost'" in result["ghost"]["error"]
    assert feldera.count("POST", "*/ghost/stop") == 1
