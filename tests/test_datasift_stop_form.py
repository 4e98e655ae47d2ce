"""DataSift's stop form is unconfirmed (docs: PUT with a form body; official clients: POST with JSON).

The default (``stop_form`` ``auto``) must stop the source whichever form the server takes: on every
path (hook sync and async, operator in place and deferred, notifier sync and async), against a server
that takes only PUT-form, only POST-JSON, both, or JSON bodies only, refusing the other method with 405
or 404. The form a host took is remembered for the process and logged once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_stop.hooks.datasift import DataSiftHook, forget_stop_forms, learned_stop_form
from airflow_provider_stop.hooks.errors import StopRejectedError, TargetNotFoundError, TargetNotRunningError
from airflow_provider_stop.notifications.datasift import DataSiftStopSourceNotifier
from airflow_provider_stop.operators.datasift import DataSiftStopSourceOperator
from airflow_provider_stop.testing.datasift import DataSiftEmulator
from tests.conftest import FAST_RETRIES, LogCapture, use_connection
from tests.matrix import run_deferrable

STOP = "/v1.6/source/stop"
PUT_ONLY = ("PUT form",)
POST_ONLY = ("POST json",)
BOTH = ("PUT form", "POST json")
JSON_ONLY = ("PUT json", "POST json")  # both methods route, only JSON bodies are read: PUT form -> 400
#: (accepted forms, answer to a method the server does not take)
SERVERS = [
    pytest.param((PUT_ONLY, 405), id="put-form-only-405"),
    pytest.param((PUT_ONLY, 404), id="put-form-only-404"),
    pytest.param((POST_ONLY, 405), id="post-json-only-405"),
    pytest.param((POST_ONLY, 404), id="post-json-only-404"),
    pytest.param((BOTH, 405), id="both"),
    pytest.param((JSON_ONLY, 405), id="json-bodies-only-400"),
]
PATHS = ["hook", "hook_async", "operator", "operator_deferred", "notifier", "notifier_async"]


@pytest.fixture(autouse=True)
def _fresh_memory() -> Iterator[None]:
    """What a host took is process-wide: no test may inherit or leave behind another's."""
    forget_stop_forms()
    yield
    forget_stop_forms()


@pytest.fixture
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[DataSiftEmulator]:
    forms, wrong_method = request.param
    with DataSiftEmulator(accepted_stop_forms=forms, wrong_method_status=wrong_method) as emu:
        use_connection(monkeypatch, "datasift_default", emu.connection())
        yield emu


def hook() -> DataSiftHook:
    return DataSiftHook(**FAST_RETRIES)


def stop_via(path: str, source_id: str) -> None:
    """Stop one source the way ``path`` does; raise if it did not go through."""
    common: dict[str, Any] = {"source_id": source_id, "hook_params": FAST_RETRIES}
    if path == "hook":
        hook().stop(source_id)
    elif path == "hook_async":

        async def run() -> None:
            h = hook()
            async with h.async_client() as client:
                await h.astop(client, source_id)

        asyncio.run(run())
    elif path in ("operator", "operator_deferred"):
        task = DataSiftStopSourceOperator(
            task_id="stop", poll_interval=0.05, timeout=10, deferrable=path == "operator_deferred", **common
        )
        result = run_deferrable(task)
        assert result[source_id]["raw_state"] == "stopped"
    elif path == "notifier":
        notifier = DataSiftStopSourceNotifier(**common)
        notifier.notify({})
        assert notifier.result["error"] is None, notifier.result["error"]
    else:
        result = asyncio.run(DataSiftStopSourceNotifier(**common).async_notify({}))
        assert result["error"] is None, result["error"]


def taken(forms: tuple[str, ...]) -> str:
    """The form the hook should settle on against a server taking ``forms``."""
    return "put_form" if "PUT form" in forms else "post_json"


@pytest.mark.parametrize("server", SERVERS, indirect=True)
@pytest.mark.parametrize("path", PATHS)
def test_the_default_stops_whichever_form_the_server_takes(
    server: DataSiftEmulator, path: str, logs: LogCapture
) -> None:
    forms = server.settings.accepted_stop_forms
    server.add_source("s1")
    server.add_source("s2")
    stop_via(path, "s1")
    assert server.status_of("s1") == "stopped"
    first = server.count(path=STOP)
    assert first == (1 if "PUT form" in forms else 2)  # the documented form first, the other once
    assert learned_stop_form(server.url + "/v1.6") == taken(forms)
    if taken(forms) == "post_json":
        assert "stopping sources there with POST with a JSON body" in logs.text()
    stop_via(path, "s2")  # remembered: one request, in the form the host took
    assert server.status_of("s2") == "stopped"
    assert server.count(path=STOP) == first + 1
    last_stop = [r for r in server.requests if r.path == STOP][-1]
    assert last_stop.method == ("PUT" if taken(forms) == "put_form" else "POST")


@pytest.mark.parametrize("server", SERVERS, indirect=True)
def test_a_source_already_stopped_is_success_whichever_form(server: DataSiftEmulator) -> None:
    """The 409 "not in a stoppable state" may come from the second form: a GET still decides."""
    server.add_source("done", status="stopped")
    ack = hook().stop("done")
    assert ack.already_stopped
    forget_stop_forms()
    with pytest.raises(TargetNotRunningError):
        hook().stop("done", fail_if_not_running=True)


@pytest.mark.parametrize("server", SERVERS, indirect=True)
def test_an_unknown_source_is_not_found_whichever_form(server: DataSiftEmulator) -> None:
    """A 404 for the source and a 405/404 for the form must not hide each other."""
    with pytest.raises(TargetNotFoundError, match="Could not find the specified source instance"):
        hook().stop("nope")


@pytest.mark.parametrize("server", [pytest.param((BOTH, 405), id="both")], indirect=True)
def test_a_host_that_changed_its_form_is_followed(server: DataSiftEmulator, logs: LogCapture) -> None:
    server.add_source("a")
    server.add_source("b")
    hook().stop("a")  # learns PUT form
    server.settings.accepted_stop_forms = POST_ONLY
    hook().stop("b")
    assert server.status_of("b") == "stopped"
    assert learned_stop_form(server.url + "/v1.6") == "post_json"
    assert "PUT /source/stop was refused with HTTP 405" in logs.text()


def test_the_memory_is_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        DataSiftEmulator(accepted_stop_forms=POST_ONLY) as post_host,
        DataSiftEmulator(accepted_stop_forms=PUT_ONLY) as put_host,
    ):
        for emu, sid in ((post_host, "p1"), (put_host, "q1")):
            emu.add_source(sid)
            use_connection(monkeypatch, "datasift_default", emu.connection())
            hook().stop(sid)
            assert emu.status_of(sid) == "stopped"
        assert learned_stop_form(post_host.url + "/v1.6") == "post_json"
        assert learned_stop_form(put_host.url + "/v1.6") == "put_form"
        assert put_host.count(path=STOP) == 1  # the other host's POST did not leak over


@pytest.mark.parametrize(
    ("stop_form", "forms", "works"),
    [
        ("put_form", PUT_ONLY, True),
        ("put_form", POST_ONLY, False),
        ("post_json", POST_ONLY, True),
        ("post_json", PUT_ONLY, False),
    ],
)
def test_an_explicit_stop_form_is_sent_as_is(
    monkeypatch: pytest.MonkeyPatch, stop_form: str, forms: tuple[str, ...], works: bool
) -> None:
    with DataSiftEmulator(accepted_stop_forms=forms) as emu:
        conn = emu.connection()
        use_connection(
            monkeypatch, "datasift_default", {**conn, "extra": {**conn["extra"], "stop_form": stop_form}}
        )
        emu.add_source("s1")
        if works:
            hook().stop("s1")
            assert emu.status_of("s1") == "stopped"
        else:
            with pytest.raises(StopRejectedError, match="HTTP 405"):
                hook().stop("s1")
            assert emu.status_of("s1") == "running"
        assert emu.count(path=STOP) == 1
        assert learned_stop_form(emu.url + "/v1.6") is None
