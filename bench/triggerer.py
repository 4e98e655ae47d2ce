"""Triggerer scale: many waits of the generic trigger in one event loop, as one triggerer runs them.

On one Feldera server and mixed across the five services; with ``--old-tree`` the same runs with
that checkout's code, so CPU, memory, lag and requests are compared old -> new on the same clock.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from airflow_provider_stop import services
from bench.common import ROOT, Row, conn_env, old_to_new, peak_rss_mib, rss_mib, run_worker


def worker_triggerer(args: dict[str, Any]) -> dict[str, Any]:
    """Many waits of the generic trigger in one event loop, as a triggerer runs them.

    First one wait per service on a target already stopped (``args["warm"]``), in its own loop and
    not measured: a triggerer has run waits before, so what a process pays once (importing the hook
    modules, and Airflow's own modules its connection lookup loads, which a triggerer has loaded at
    start: ``airflow/jobs/triggerer_job_runner.py`` imports ``airflow.sdk.execution_time``'s
    ``supervisor``, ``context`` and ``task_runner``) is not counted as the thousand waits' CPU.
    Their loop starts with no client, board or lookup."""
    from airflow_provider_stop.triggers.wait import StopWaitTrigger

    hooks = {svc.name: services.class_path(services.load(svc.name, "hook")) for svc in services.provided()}

    def build(targets: dict[str, list[str]], deadline: float) -> list[tuple[str, Any]]:
        return [
            (
                tid,
                StopWaitTrigger(
                    hook_class_path=hooks[service],
                    conn_id=f"{service}_default",
                    target_ids=[tid],
                    poll_interval=args["poll"],
                    deadline=deadline,
                ),
            )
            for service, ids in targets.items()
            for tid in ids
        ]

    events: dict[str, Any] = {}

    async def one(tid: str, trigger: Any) -> None:
        async for event in trigger.run():
            events[tid] = [time.time(), event.payload["status"]]
            return

    async def run_all(triggers: list[tuple[str, Any]]) -> None:
        await asyncio.gather(*(one(tid, t) for tid, t in triggers))

    asyncio.run(run_all(build(args["warm"], time.time() + args["deadline_s"])))
    warm = {tid: events.pop(tid)[1] for ids in args["warm"].values() for tid in ids}
    measured_from = time.time()
    triggers = build(args["targets"], measured_from + args["deadline_s"])
    before = rss_mib()
    cpu = time.process_time()
    asyncio.run(run_all(triggers))
    return {
        "warm": warm,
        "measured_from": measured_from,
        "events": events,
        "cpu_s": time.process_time() - cpu,
        "rss_before_mib": before,
        "peak_rss_mib": peak_rss_mib(),
    }


def triggerer_run(n: int, poll: float, services_: tuple[str, ...], tree: Path) -> dict[str, Any]:
    """One triggerer run of ``n`` waits spread over ``services_``, with the code in ``tree``."""
    from airflow_provider_stop.testing.amperity import AmperityEmulator
    from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
    from airflow_provider_stop.testing.datasift import DataSiftEmulator
    from airflow_provider_stop.testing.feldera import FelderaEmulator
    from airflow_provider_stop.testing.rainforest import RainforestEmulator

    makers: dict[str, Any] = {
        "feldera": FelderaEmulator,
        "dataforseo": lambda: DataForSeoEmulator(rate_limit_per_minute=100_000),
        "rainforest": lambda: RainforestEmulator(queue_seconds=0.0),
        "datasift": lambda: DataSiftEmulator(credits_per_hour=10**9),
        # the documented 10 requests a second, the hook's default pace of 8, list items as overview
        "amperity": AmperityEmulator,
    }
    emulators: dict[str, Any] = {s: makers[s]() for s in services_}
    flips: dict[str, float] = {}
    for emu in emulators.values():
        emu.start()
    try:
        per = n // len(emulators)
        targets = {s: [f"{s}-{i}" for i in range(per)] for s in emulators}
        for service, ids in targets.items():
            for tid in ids:
                emulators[service].add_target(tid)
        warm = {s: [f"warm-{s}"] for s in emulators}  # see worker_triggerer
        for service, (tid,) in warm.items():
            emulators[service].add_target(tid)
            emulators[service].override_state(tid, emulators[service].stopped_state)
        rng = random.Random(8)
        start = time.time() + 10.0  # the worker needs a few seconds: Airflow import, warm-up, triggers
        schedule = sorted(
            (start + rng.uniform(0, 6 * poll), service, tid)
            for service, ids in targets.items()
            for tid in ids
        )

        def flipper() -> None:  # targets reach their stopped state at random times
            for at, service, tid in schedule:
                time.sleep(max(0.0, at - time.time()))
                emulators[service].override_state(tid, emulators[service].stopped_state)
                flips[tid] = time.time()

        thread = threading.Thread(target=flipper, daemon=True)
        thread.start()
        for emu in emulators.values():
            emu.reset_log()
        env = {**conn_env(emulators, dataforseo={"requests_per_second": 10_000}), "PYTHONPATH": str(tree)}
        deadline_s = 10 + 40 * poll  # room for reads paced to a rate limit (Amperity: 8 a second)
        result = run_worker(
            "triggerer", {"targets": targets, "warm": warm, "poll": poll, "deadline_s": deadline_s}, env
        )
        thread.join()
        if set(result["warm"].values()) != {"success"}:
            raise RuntimeError(f"warm-up waits failed: {result['warm']}")
        # status reads of the measured waits only (not the warm-up's, nor Amperity's token requests)
        requests = {
            s: [
                r
                for r in emu.requests
                if r.method == "GET" and "oauth2" not in r.path and r.at >= result["measured_from"]
            ]
            for s, emu in emulators.items()
        }
    finally:
        for emu in emulators.values():
            emu.stop()
    events = result["events"]
    lags = sorted(max(0.0, events[t][0] - flips[t]) for t in flips if t in events)
    first = min(r.at for reqs in requests.values() for r in reqs)
    last = max(e[0] for e in events.values())
    # Reads once a poll from t=0 to t=k*poll are k+1 reads in k+1 poll intervals (the first at t=0).
    polls = (last - first) / poll + 1

    def service_polls(service: str) -> float:
        """A service's own wait, in poll intervals: its first read to its last event (a slower service
        must not stretch the others' intervals)."""
        ends = [events[t][0] for t in targets[service] if t in events]
        starts = [r.at for r in requests[service]]
        return (max(ends) - min(starts)) / poll + 1 if ends and starts else polls

    per_service = {s: len(r) / service_polls(s) for s, r in requests.items()}
    return {
        **result,
        "ok": sum(1 for e in events.values() if e[1] == "success"),
        "p50": lags[len(lags) // 2] if lags else math.nan,
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else math.nan,
        "requests": sum(len(r) for r in requests.values()),
        "per_conn_poll": max(per_service.values()),
        "per_service_poll": per_service,
        "connections": sum(len({r.client for r in reqs}) for reqs in requests.values()),
    }


def bench_triggerer(n: int, poll: float, old_tree: Path | None, repeat: int = 3) -> list[Row]:
    """The waits of one triggerer, on one Feldera server and mixed across the five services; with
    ``old_tree`` the same runs with that checkout's code, side by side (alternating, same clock).
    CPU, lag and memory are medians of ``repeat`` runs."""
    rows: list[Row] = []
    mixes = {"one Feldera server": ("feldera",), "mixed": tuple(s.name for s in services.provided())}
    for label, mix in mixes.items():
        trees = {"new": ROOT, **({"old": old_tree} if old_tree else {})}
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for i in range(repeat):
            for name in list(trees) if i % 2 == 0 else list(reversed(trees)):
                samples[name].append(triggerer_run(n, poll, mix, trees[name]))
        runs = {
            name: {
                **{
                    k: statistics.median(r[k] for r in rs)
                    for k in ("ok", "cpu_s", "peak_rss_mib", "p50", "p99")
                },
                **{k: statistics.median(r[k] for r in rs) for k in ("requests", "per_conn_poll")},
                "per_service_poll": {
                    svc: statistics.median(r["per_service_poll"][svc] for r in rs) for svc in mix
                },
            }
            for name, rs in samples.items()
        }
        new, old = runs["new"], runs.get("old")

        cell = functools.partial(old_to_new, new=new, old=old)

        cpu_goal = ""
        if old:
            ratio = new["cpu_s"] / max(1e-9, old["cpu_s"])
            cpu_goal = f"; CPU new/old {ratio:.2f}, goal <= 0.25 ({'met' if ratio <= 0.25 else 'NOT met'})"
        per_service = ", ".join(
            f"{svc} {(old['per_service_poll'][svc] if old else 0):.1f} -> {new['per_service_poll'][svc]:.1f}"
            if old
            else f"{svc} {new['per_service_poll'][svc]:.1f}"
            for svc in mix
        )
        rows += [
            (
                f"Triggerer, {label}: {n} waits" + (" (old -> new)" if old else ""),
                f"succeeded {cell('ok', '{:.0f}')}; peak RSS {cell('peak_rss_mib', '{:.0f}')} MiB; "
                f"CPU {cell('cpu_s', '{:.1f}')} s",
                "goal peak RSS no higher "
                + ("(met)" if not old or new["peak_rss_mib"] <= old["peak_rss_mib"] else "(NOT met)")
                + cpu_goal,
            ),
            (
                f"Triggerer, {label}: lag stopped -> event",
                f"p50 {cell('p50', '{:.2f}')} s, p99 {cell('p99', '{:.2f}')} s",
                f"goal p99 <= {poll + 1:.0f} s " + ("(met)" if new["p99"] <= poll + 1 else "(NOT met)"),
            ),
            (
                f"Triggerer, {label}: status requests",
                f"{cell('requests', '{:.0f}')} in all; a poll interval, per connection: {per_service}",
                "goal <= 2 per connection a poll interval "
                + ("(met)" if new["per_conn_poll"] <= 2 else "(NOT met)"),
            ),
        ]
    return rows
