"""N operating-system processes, each stopping and awaiting one Amperity run of the same tenant, against
the emulator enforcing the documented 10 requests a second: what a deployment of Celery or Kubernetes
workers does. Each process paces itself at 8 a second; without a shared storage the tenant sees up
to N times that and answers 429s, with ``[stop_provider] rate_limit_storage`` (a real Redis) it sees
the pace once. The rates themselves are measured by ``python -m bench --only shared_limit``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from typing import Any

from airflow_provider_stop.testing.amperity import AmperityEmulator

PROCESSES = 16
CONN = "AIRFLOW_CONN_AMPERITY_DEFAULT"
STORAGE = "AIRFLOW__STOP_PROVIDER__RATE_LIMIT_STORAGE"


def stop_and_wait(conn: str, storage: str, run_id: str, ready: Any, go: Any, results: Any) -> None:
    """One worker process: read the connection, wait for the others, stop the run, poll once a
    second until it is canceled (what a deferrable task does on its worker before it defers)."""
    os.environ[CONN] = conn
    os.environ.pop(STORAGE, None)
    if storage:
        os.environ[STORAGE] = storage
    from airflow_provider_stop import process_state
    from airflow_provider_stop.hooks.amperity import AmperityHook

    process_state.reset()  # a new process: nothing of the parent's paces
    try:
        hook = AmperityHook(max_attempts=5, retry_min_wait=1.0, retry_max_wait=8.0)
        hook.config  # noqa: B018 - the connection is read before the start signal, as a task does
        ready.put(run_id)
        go.wait(60)
        hook.stop(run_id)
        final = hook.wait_until_stopped([run_id], poll_interval=1.0, deadline=time.time() + 90)
        results.put((run_id, "ok", final[run_id].raw_state))
    except Exception as exc:
        results.put((run_id, "failed", f"{type(exc).__name__}: {exc}"))


@contextlib.contextmanager
def tenant() -> Iterator[AmperityEmulator]:
    """A tenant at the documented limit (10 a second), its window empty; each run cancels two seconds
    after its stop."""
    with AmperityEmulator(cancel_seconds=2.0) as emulator:
        yield emulator


def run_processes(emulator: AmperityEmulator, storage: str) -> dict[str, Any]:
    """``PROCESSES`` processes at once; what the tenant answered them."""
    ctx = multiprocessing.get_context("fork")  # a worker forks its task processes, too
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    conn = json.dumps(emulator.connection("token"))
    run_ids = [f"wf-{'shared' if storage else 'alone'}-{n}" for n in range(PROCESSES)]
    for run_id in run_ids:
        emulator.add_run(run_id)
    before, limited_before = len(emulator.requests), emulator.rate_limited
    procs = [ctx.Process(target=stop_and_wait, args=(conn, storage, r, ready, go, results)) for r in run_ids]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        go.set()
        outcomes = {}
        for _ in procs:
            run_id, outcome, detail = results.get(timeout=180)
            outcomes[run_id] = (outcome, detail)
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    answered = emulator.requests[before:]
    return {
        "outcomes": outcomes,
        "requests": len(answered),
        "rate_limited": emulator.rate_limited - limited_before,
        "stops": sum(1 for r in answered if r.method == "POST" and r.path.endswith("/stop")),
    }


def test_processes_pacing_alone_overrun_the_tenant_and_a_shared_storage_keeps_them_within(
    redis_url: str,
) -> None:
    with tenant() as emulator:
        alone = run_processes(emulator, "")
    with tenant() as emulator:
        shared = run_processes(emulator, redis_url)
    summary = {
        k: {n: v for n, v in r.items() if n != "outcomes"} for k, r in (("alone", alone), ("shared", shared))
    }
    print(f"{PROCESSES} processes, one tenant at 10 requests a second: {summary}")
    # each process alone keeps 8 a second; sixteen of them at once overrun the tenant
    assert alone["rate_limited"] > 0, summary
    # sharing the tenant's window: every stop succeeds, once (a stop is resent only after a 429)
    assert all(o == ("ok", "canceled") for o in shared["outcomes"].values()), shared["outcomes"]
    assert PROCESSES <= shared["stops"] <= PROCESSES + shared["rate_limited"], summary
    # and the tenant answers 429 to a much smaller share of the requests than when each process paces
    # alone, measured side by side. Not zero: the emulator runs in this process, and on a loaded
    # two-core machine it may take requests late and then in a bunch (0 to 6 of about 50 in runs with
    # the rest of the suite beside it, against 24 to 30 of about 73 alone); the production-shaped
    # deployment test (make e2e-production) and the bench measure the rates for real.
    share = {k: r["rate_limited"] / max(1, r["requests"]) for k, r in (("alone", alone), ("shared", shared))}
    assert share["shared"] * 2 <= share["alone"], summary
