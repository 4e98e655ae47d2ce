"""One Amperity tenant, N processes: the requests a second that reach it, with and without
``[stop_provider] rate_limit_storage`` (issue 24).

The tenant is the emulator at the documented limit (10 requests a second, 429 above it), in this
process; the hook paces each process at 8 a second. A worker (a fresh interpreter) forks N processes
that each read one run's status as fast as their pace allows for ``seconds``, all starting together,
the way a fleet of deferrable stop tasks polls before it defers. Without the storage the tenant sees up
to N times the pace (and answers the excess 429); with a Redis storage it sees the pace once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from typing import Any

from bench.common import Row, run_worker

#: The emulator's enforced limit, and the hook's default pace for it.
LIMIT, PACE = 10, 8


def _poll(conn: str, storage: str, run_id: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """One process: read ``run_id`` for ``seconds`` at the hook's pace; how many reads were answered."""
    os.environ["AIRFLOW_CONN_AMPERITY_DEFAULT"] = conn
    if storage:
        os.environ["AIRFLOW__STOP_PROVIDER__RATE_LIMIT_STORAGE"] = storage
    from airflow_provider_stop import process_state
    from airflow_provider_stop.hooks.amperity import AmperityHook
    from airflow_provider_stop.hooks.errors import StopProviderError

    process_state.reset()
    hook = AmperityHook(max_attempts=1)  # every answer counts once: the tenant's view
    hook.config  # noqa: B018 - the connection is read before the start signal
    ready.put(run_id)
    go.wait(600)
    end, answered = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        try:
            hook.get_status(run_id)
            answered += 1
        except StopProviderError:
            pass
    out.put(answered)


def worker_shared_limit(args: dict[str, Any]) -> dict[str, Any]:
    """Fork ``processes`` pollers, start them together, wait for them; reads answered in all."""
    import airflow_provider_stop.hooks.amperity  # noqa: F401 - imported once, before the forks

    ctx = multiprocessing.get_context("fork")
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_poll,
            args=(args["conn"], args["storage"], args["run_id"], args["seconds"], ready, go, out),
        )
        for _ in range(args["processes"])
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=600)
    go.set()
    answered = sum(out.get(timeout=args["seconds"] + 120) for _ in procs)
    for proc in procs:
        proc.join(30)
    return {"answered": answered}


def _one(processes: int, storage: str, seconds: float) -> dict[str, float]:
    """The tenant's view of one configuration: requests and 429s a second during the run."""
    from airflow_provider_stop.testing.amperity import AmperityEmulator

    with AmperityEmulator(rate_limit_per_second=LIMIT) as emu:
        emu.add_run("wf-bench")
        args = {
            "conn": json.dumps(emu.connection("token")),
            "storage": storage,
            "run_id": "wf-bench",
            "seconds": seconds,
            "processes": processes,
        }
        run_worker("shared_limit", args)
        times = sorted(r.at for r in emu.requests)
        span = max(times[-1] - times[0], 1e-9) if len(times) > 1 else seconds
        return {
            "sent": len(times) / span,
            "accepted": (len(times) - emu.rate_limited) / span,
            "limited": emu.rate_limited / max(1, len(times)),
        }


def bench_shared_limit(counts: list[int], seconds: float) -> list[Row]:
    """One row per process count and way: requests a second reaching the tenant, and the share of 429s."""
    from e2e.servers import RedisServer, ServerUnavailable

    rows: list[Row] = []
    try:
        redis = RedisServer().start()
    except ServerUnavailable as exc:
        return [("shared rate limit", "skipped", f"no Redis server: {exc}")]
    try:
        for n in counts:
            for way, storage in (("each process alone", ""), ("rate_limit_storage=redis", redis.url)):
                got = _one(n, storage, seconds)
                rows.append(
                    (
                        f"Amperity tenant (limit {LIMIT}/s, pace {PACE}/s): {n} "
                        f"process{'es' if n > 1 else ''}, {way}",
                        f"{got['sent']:.1f} req/s reach it, {got['accepted']:.1f}/s answered, "
                        f"{got['limited']:.0%} 429",
                        f"goal: at most {LIMIT}/s, 429s a few percent at most (shared)",
                    )
                )
    finally:
        redis.stop()
    return rows
