"""Rainforest API (Traject Data): the key in the URL, idle collections, the product family, stop-all."""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_stop.hooks.errors import (
    AuthenticationError,
    PaymentRequiredError,
    ServiceUnavailableError,
    StopProviderError,
    StopRejectedError,
    TargetNotFoundError,
    TargetNotRunningError,
)
from airflow_provider_stop.hooks.rainforest import RainforestHook
from airflow_provider_stop.notifications.rainforest import RainforestStopCollectionNotifier
from airflow_provider_stop.operators.rainforest import (
    RainforestStopAllCollectionsOperator,
    RainforestStopCollectionOperator,
)
from airflow_provider_stop.sensors.rainforest import RainforestCollectionStoppedSensor
from airflow_provider_stop.testing.rainforest import RainforestEmulator
from tests.conftest import FAST_RETRIES, LogCapture, run_dag, task_states, use_connection, xcom_value

FAST: dict[str, Any] = {"poll_interval": 0.05, "hook_params": FAST_RETRIES}


def hook(**kwargs: Any) -> RainforestHook:
    return RainforestHook(**{**FAST_RETRIES, **kwargs})


def wait(h: RainforestHook, ids: list[str]) -> dict[str, Any]:
    return h.wait_until_stopped(ids, poll_interval=0.05, deadline=time.time() + 5)


def test_stop_a_running_collection_until_idle(rainforest: RainforestEmulator) -> None:
    rainforest.add_collection("123456")
    h = hook()
    ack = h.stop("123456")
    assert ack.message == "Collection stopped" and not ack.already_stopped
    assert wait(h, ["123456"])["123456"].raw_state == "idle"
    stop = next(r for r in rainforest.requests if r.path.endswith("/stop"))
    assert stop.method == "GET" and stop.path == "/collections/123456/stop"
    assert stop.query["api_key"] == [rainforest.settings.api_key]


def test_stopping_a_queued_collection_reports_the_refund(rainforest: RainforestEmulator) -> None:
    rainforest.add_collection("q1", status="queued")
    assert hook().stop("q1").options["credits_refunded"] is True


@pytest.mark.parametrize("idle_status", [400, 409, 200])
def test_an_idle_collection_is_already_stopped_once_a_get_confirms_it(
    monkeypatch: pytest.MonkeyPatch, idle_status: int
) -> None:
    with RainforestEmulator(idle_stop_status=idle_status) as emu:
        use_connection(monkeypatch, "rainforest_default", emu.connection())
        emu.add_collection("idle1", status="idle")
        ack = hook().stop("idle1")
        assert ack.already_stopped and "not queued or running" in (ack.message or "")
        assert emu.count("GET", "/collections/idle1") == 1  # the confirming GET
        with pytest.raises(TargetNotRunningError, match="'idle1' is not running"):
            hook().stop("idle1", fail_if_not_running=True)


def test_unknown_collection(rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TargetNotFoundError, match="not found"):
        hook().stop("999")
    with RainforestEmulator(unknown_id_status=400) as emu:
        use_connection(monkeypatch, "rainforest_default", emu.connection())
        with pytest.raises(StopRejectedError, match="not found"):
            hook().stop("999")


def test_bad_key_and_payment(rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(
        monkeypatch, "rainforest_default", {**rainforest.connection(), "password": "BADKEY-1234567"}
    )
    with pytest.raises(AuthenticationError, match="API Key supplied with your request is not valid") as err:
        hook().stop("1")
    assert "BADKEY-1234567" not in str(err.value)
    use_connection(monkeypatch, "rainforest_default", rainforest.connection())
    rainforest.inject("status", status=402)
    with pytest.raises(PaymentRequiredError):
        hook().stop("1")


def test_the_key_never_appears_even_in_transport_errors(
    monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    key = "RFLEAKCANARY" + "k" * 24
    emu = RainforestEmulator(api_key=key).start()
    emu.add_collection("c1")
    use_connection(monkeypatch, "rainforest_default", emu.connection())
    texts: list[str] = [json.dumps(hook().stop("c1").as_status().to_dict())]
    for call in (lambda: hook().stop("c1", fail_if_not_running=True), lambda: hook().get_status("nope")):
        try:
            call()
        except StopProviderError as exc:
            texts.append("".join(traceback.format_exception(exc)))
    emu.add_collection("c2")
    async_result = asyncio.run(  # the httpx path (triggerer, DeadlineAlert) logs full URLs at INFO
        RainforestStopCollectionNotifier(
            collection_id="c2", wait_for_completion=True, poll_interval=0.05, hook_params=FAST_RETRIES
        ).async_notify({})
    )
    assert async_result["error"] is None
    texts.append(json.dumps(async_result))
    emu.stop()  # now every request fails at the transport level, URL (and key) in requests' message
    with pytest.raises(ServiceUnavailableError) as err:
        hook(max_attempts=2).stop("c1")
    texts.append("".join(traceback.format_exception(err.value)))
    texts.append(hook(max_attempts=1).test_connection()[1])
    assert "api_key=***" in str(err.value) or "Connection" in str(err.value)
    haystack = "\n".join([logs.text(), *texts])
    assert "RFLEAKCANARY" not in haystack


def test_sister_product_batches_under_a_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    with RainforestEmulator(resource="batches", path_prefix="/live") as emu:  # SerpWow
        use_connection(monkeypatch, "rainforest_default", emu.connection())
        emu.add_collection("b1")
        h = hook()
        h.stop("b1")
        assert wait(h, ["b1"])["b1"].stopped
        assert {r.path for r in emu.requests} == {"/live/batches/b1/stop", "/live/batches/b1"}


def test_connection_settings_are_validated_before_any_request(
    rainforest: RainforestEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(
        monkeypatch, "rainforest_default", {**rainforest.connection(), "extra": {"resource": "jobs"}}
    )
    with pytest.raises(Exception, match="resource must be one of"):
        hook().stop("1")
    use_connection(
        monkeypatch, "rainforest_default", {**rainforest.connection(), "extra": {"path_prefix": "../x"}}
    )
    with pytest.raises(Exception, match="path_prefix must look like"):
        hook().stop("1")
    assert rainforest.count() == 0


# ---- under Airflow ----------------------------------------------------------------------------
@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", [False, True], ids=["in-place", "deferred"])
def test_stop_all_lists_once_stops_once_and_polls_the_list(
    rainforest: RainforestEmulator, deferrable: bool
) -> None:
    rainforest.add_collection("r1")
    rainforest.add_collection("r2", status="queued")
    rainforest.add_collection("i1", status="idle")
    rainforest.settings.stop_delay_seconds = 0.2  # stopped collections take a moment to read idle
    with DAG(dag_id=f"rf_stop_all_{deferrable}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        RainforestStopAllCollectionsOperator(task_id="stop_all", deferrable=deferrable, **FAST)
    dr = run_dag(dag)
    assert task_states(dr) == {"stop_all": "success"}
    result = xcom_value(dr, "stop_all")
    assert sorted(result) == ["r1", "r2"]
    assert all(r["raw_state"] == "idle" for r in result.values())
    assert rainforest.count("GET", "/collections/stopall") == 1
    # Stop-all reads the list once; the wait on two collections reads it too (one page a poll, paced
    # to the list's limit), which costs fewer requests than a read of each.
    assert rainforest.count("GET", "/collections") >= 2
    assert rainforest.count("GET", "/collections/r1") == rainforest.count("GET", "/collections/r2") == 0


@pytest.mark.usefixtures("airflow_db")
def test_operator_sensor_and_notifier(rainforest: RainforestEmulator) -> None:
    rainforest.add_collection("a")
    rainforest.add_collection("b")
    rainforest.add_collection("c")
    with DAG(dag_id="rf_all_paths", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        stop = RainforestStopCollectionOperator(
            task_id="stop", collection_id=["a", "b"], deferrable=True, **FAST
        )
        sensor = RainforestCollectionStoppedSensor(
            task_id="wait", collection_id=["a", "b"], poke_interval=0.05, timeout=10, mode="reschedule"
        )
        stop >> sensor
    dr = run_dag(dag)
    assert task_states(dr) == {"stop": "success", "wait": "success"}
    assert xcom_value(dr, "stop")["a"]["raw_state"] == "idle"
    notifier = RainforestStopCollectionNotifier(collection_id="c", hook_params=FAST_RETRIES)
    notifier.notify({})
    assert notifier.result["error"] is None and rainforest.status_of("c") == "idle"
