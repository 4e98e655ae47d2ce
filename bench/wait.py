"""The cost of waiting: a slow Feldera stop awaited three ways, side by side on the same clock.

Deferred, waiting in place, and the Feldera SDK's own ``stop_pipeline(wait=True)``: how long each
holds a worker slot, and how many requests each sends to the server for the same stop.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import threading
import time
from typing import Any

from bench.common import Row, conn_env, run_worker


def worker_wait(args: dict[str, Any]) -> dict[str, Any]:
    """Stop one pipeline whose stop takes ``stop_seconds``; seconds a worker is held."""
    name, way, poll = args["pipeline"], args["way"], args["poll"]
    if way == "sdk":
        from feldera import FelderaClient

        client = FelderaClient(args["url"], timeout=30)
        started = time.monotonic()
        client.stop_pipeline(name, force=True, wait=True)  # what a PythonOperator would call
        return {"worker_s": time.monotonic() - started}
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_stop.operators.feldera import FelderaStopPipelineOperator

    op = FelderaStopPipelineOperator(
        task_id="stop", pipeline_name=name, force=True, poll_interval=poll, deferrable=way == "deferrable"
    )
    started = time.monotonic()
    try:
        op.execute({})
        return {"worker_s": time.monotonic() - started}
    except TaskDeferred as deferred:
        held = time.monotonic() - started  # the worker slot is free from here on
        classpath, kwargs = deferred.trigger.serialize()
        from airflow.sdk.module_loading import import_string

        trigger = import_string(classpath)(**kwargs)

        async def first() -> dict[str, Any]:
            async for event in trigger.run():
                return dict(event.payload)
            raise AssertionError("no event")

        event = asyncio.run(first())  # in the triggerer, not on a worker
        resumed = time.monotonic()
        getattr(op, deferred.method_name)({}, event, **(deferred.kwargs or {}))
        return {"worker_s": held + time.monotonic() - resumed}


def bench_wait(stop_seconds: float, poll: float, repeat: int) -> list[Row]:
    """``repeat`` stops each way, all at once against one emulator; medians of seconds held and
    requests sent, and whether deferring kept its goal."""
    from airflow_provider_stop.testing.feldera import FelderaEmulator

    ways = ("deferrable", "in_place", "sdk")
    with FelderaEmulator(stop_lag_seconds=0.0, stopping_seconds=stop_seconds) as emu:
        env = conn_env({"feldera": emu})
        jobs = []
        for i in range(repeat):
            for way in ways:
                name = f"{way}_{i}"
                emu.add_pipeline(name)
                jobs.append((way, name))
        results: dict[str, dict[str, Any]] = {}

        def run(way: str, name: str) -> None:
            args = {"pipeline": name, "way": way, "poll": poll, "url": emu.url}
            results[name] = run_worker("wait", args, env)

        threads = [threading.Thread(target=run, args=job) for job in jobs]  # side by side, same clock
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        counts = {name: emu.count(None, f"*/pipelines/{name}*") for _, name in jobs}
    from airflow_provider_stop.bindings.base import defer_settings

    # Deferred, the task first reads once a second on the worker for up to wait_before_defer (a read at
    # once, then one a second); after that it should cost no more reads than waiting in place.
    on_worker = defer_settings()[0]
    extra_reads = math.ceil(on_worker) + 1 if on_worker else 0
    labels = {
        "deferrable": "our operator, deferrable",
        "in_place": "our operator, waiting in place",
        "sdk": "feldera SDK stop_pipeline(wait=True)",
    }
    held = {w: statistics.median(results[n]["worker_s"] for w2, n in jobs if w2 == w) for w in ways}
    sent = {w: statistics.median(counts[n] for w2, n in jobs if w2 == w) for w in ways}
    budget = sent["in_place"] + extra_reads
    rows: list[Row] = []
    for way in ways:
        note = ""
        if way == "deferrable":
            ok = held[way] < on_worker + 2 and sent[way] <= budget
            note = (
                f"goal < {on_worker + 2:.0f} s (wait_before_defer + 2) and <= {budget:.0f} requests "
                f"(in place + {extra_reads} on the worker) " + ("(met)" if ok else "(NOT met)")
            )
        rows.append(
            (
                f"Wait {stop_seconds:.0f} s stop: {labels[way]}",
                f"worker held {held[way]:.1f} s, {sent[way]:.0f} requests",
                note,
            )
        )
    return rows
