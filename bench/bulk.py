"""Bulk stops: many targets stopped and awaited in one task, against one target's time and requests.

How the time grows with the number of targets, and how many status requests (DataSift: credits) a
poll costs; with ``--old-tree`` the services whose waits changed run with that checkout's code too.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, conn_env, old_to_new, run_worker


def worker_bulk(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: stop ``ids`` with one hook and wait for them; seconds, and polls counted."""
    from airflow.sdk.module_loading import import_string

    hook = import_string(args["hook"])()
    ids = args["ids"]
    polls = 0
    read = hook.get_statuses

    def counted(target_ids: Any) -> Any:  # one call a poll, in the old code and the new
        nonlocal polls
        polls += 1
        return read(target_ids)

    hook.get_statuses = counted
    started = time.monotonic()
    hook.stop_many(ids, **args.get("options", {}))
    stopped = time.monotonic()
    hook.wait_until_stopped(ids, poll_interval=args["poll"], deadline=time.time() + 3600)
    return {"stop_s": stopped - started, "total_s": time.monotonic() - started, "polls": polls}


def bench_bulk(
    dfs_ids: int, feldera_pipelines: int, ds_sources: int, poll: float, old_tree: Path | None = None
) -> list[Row]:
    """Many targets stopped and awaited in one task; with ``old_tree``, the services whose waits
    changed are run with that checkout's code too (DataForSEO's did not: it reads by id)."""
    from airflow_provider_stop.testing.dataforseo import DataForSeoEmulator
    from airflow_provider_stop.testing.datasift import COSTS, DataSiftEmulator
    from airflow_provider_stop.testing.feldera import FelderaEmulator

    rows: list[Row] = []
    cases = [
        (
            "DataForSEO",
            lambda: DataForSeoEmulator(stop_delay_seconds=1.0),
            dfs_ids,
            "dataforseo.DataForSeoHook",
            {},
            False,
            "paced to 30 requests/s (2000/min account limit): one status read per id (no list of states)",
        ),
        (
            "Feldera",
            lambda: FelderaEmulator(stopping_seconds=1.0),
            feldera_pipelines,
            "feldera.FelderaHook",
            {"force": True},
            True,
            "goal <= 3 status requests a poll",
        ),
        (
            "DataSift (server takes per_page=100)",
            lambda: DataSiftEmulator(stop_delay_seconds=2.0, credits_per_hour=10**9),
            ds_sources,
            "datasift.DataSiftHook",
            {},
            True,
            "goal: credits a poll <= two list pages' (10)",
        ),
        (
            "DataSift (server caps per_page at 20)",
            lambda: DataSiftEmulator(stop_delay_seconds=2.0, credits_per_hour=10**9, max_per_page=20),
            ds_sources,
            "datasift.DataSiftHook",
            {},
            False,
            "goal: credits a poll <= two list pages' (10)",
        ),
    ]
    for label, make, count, hook, options, compare, note in cases:
        trees = {"": ROOT, **({"old": old_tree} if old_tree and compare else {})}
        results: dict[str, dict[int, dict[str, Any]]] = {}
        for which, tree in trees.items():
            results[which] = {}
            for size in (1, count):
                with make() as emu:  # the service holds exactly the targets awaited
                    env = {**conn_env({emu.service: emu}), "PYTHONPATH": str(tree)}
                    ids = [f"bulk-{size}-{i}" for i in range(size)]
                    for tid in ids:
                        emu.add_target(tid)
                    emu.reset_log()
                    args = {
                        "hook": f"airflow_provider_stop.hooks.{hook}",
                        "ids": ids,
                        "poll": poll,
                        "options": options,
                    }
                    result = run_worker("bulk", args, env)
                    reads = emu.count("GET")
                    results[which][size] = {
                        **result,
                        "requests": emu.count(),
                        "stops": emu.count() - reads,
                        "reads_a_poll": reads / max(1, result["polls"]),
                    }
        new, old = results[""][count], results.get("old", {}).get(count)

        cell = functools.partial(old_to_new, new=new, old=old)

        one = results[""][1]
        text = (
            f"{cell('total_s', '{:.1f}')} s ({new['total_s'] / one['total_s']:.1f}x one target's "
            f"{one['total_s']:.1f} s); {new['stops']} stop requests; status requests a poll "
            f"{cell('reads_a_poll', '{:.1f}')}"
        )
        goal = ""
        if label == "Feldera":
            goal = " (met)" if new["reads_a_poll"] <= 3 else " (NOT met)"
        if label.startswith("DataSift"):
            for r in (new, old):
                if r:
                    r["credits"] = r["reads_a_poll"] * COSTS["get"]
            text += f", credits a poll {cell('credits', '{:.0f}')}"
            goal = " (met)" if new["credits"] <= 2 * COSTS["get"] else " (NOT met)"
        rows.append(
            (f"Bulk: {count} {label} stopped + awaited" + (" (old -> new)" if old else ""), text, note + goal)
        )
    return rows
