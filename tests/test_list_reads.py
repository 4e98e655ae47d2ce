"""Waiting on many targets of one connection reads the service's list once per poll, not each id."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow_provider_stop.hooks.base import PermanentBatchStopError
from airflow_provider_stop.hooks.feldera import FelderaHook
from airflow_provider_stop.testing.feldera import FelderaEmulator
from tests.conftest import FAST_RETRIES

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
