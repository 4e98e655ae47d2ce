"""Bulk stops: many targets stopped and awaited in one task, against one target's time and requests.

How the time grows with the number of targets, and how many status requests (DataSift: credits) a
poll costs; with ``--old-tree`` the services whose waits changed run with that checkout's code too.
Last, a filtered Rainforest stop-all over 10,000 collections: its list requests, and the time they
take at the documented 60 a minute.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, conn_env, old_to_new, run_worker


def worker_bulk(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: stop ``ids`` with one hook and wait for them; seconds, and polls counted (or,
    with ``stop_all``, a filtered stop-all: ``worker_stop_all``)."""
    from airflow.sdk.module_loading import import_string

    if "stop_all" in args:
        return worker_stop_all(args)
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


def worker_stop_all(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: a filtered stop-all as the operator runs it (list the running targets matching
    ``stop_all``, stop each by id, wait); the list requests each phase sent, counted at the hook."""
    from airflow.sdk.module_loading import import_string

    hook = import_string(args["hook"])()
    sent: dict[str, int] = {"list": 0, "other": 0}
    send = hook.send

    def counted(request: Any, *rest: Any, **kwargs: Any) -> Any:  # refused requests count too
        sent["list" if request.method == "GET" and request.path == args["list_path"] else "other"] += 1
        return send(request, *rest, **kwargs)

    hook.send = counted
    started = time.monotonic()
    ids = hook.running_targets(args["stop_all"])
    listing = dict(sent)
    hook.stop_all_targets(ids, filtered=True)
    hook.wait_until_stopped(ids, poll_interval=args["poll"], deadline=time.time() + 3600)
    return {
        "total_s": time.monotonic() - started,
        "matches": len(ids),
        "list_requests": listing["list"],
        "wait_list_requests": sent["list"] - listing["list"],
        "other_requests": sent["other"],
    }


def bench_rainforest_stop_all(
    poll: float, old_tree: Path | None = None, collections: int = 10_000
) -> list[Row]:
    """A filtered Rainforest stop-all over ``collections`` (the account limit by default), ten of them
    matching: list requests of the stop-all and of its wait, and the time they take at the documented
    60 list requests a minute (computed: the run itself is not paced, so the row takes seconds, not
    minutes). Per answer to ``page_size=1000``: honoured (documented for the family's batches) and
    refused (the fallback to the default 25 a page, which is what the code before ``page_size`` read);
    with ``old_tree``, that code against the honoured server too."""
    from airflow_provider_stop.testing.rainforest import RainforestEmulator

    rows: list[Row] = []
    runs = [("honoured", ROOT), ("refused", ROOT), *([("honoured", old_tree)] if old_tree else [])]
    for answer, tree in runs:
        emu = RainforestEmulator(
            queue_seconds=0.0,
            list_paging="total_pages",
            list_page_size=1000,
            default_page_size=25,
            list_limit_per_minute=10**9,
            page_size_param=answer,
        )
        with emu:
            for i in range(collections):
                emu.add_collection(
                    f"{i:05d}", name=f"nightly {i}" if i % (collections // 10) == 7 else f"d {i}"
                )
            env = {
                **conn_env({"rainforest": emu}, rainforest={"list_requests_per_minute": 10**9}),
                "PYTHONPATH": str(tree),
            }
            args = {
                "hook": "airflow_provider_stop.hooks.rainforest.RainforestHook",
                "stop_all": "nightly*",
                "list_path": "/collections",
                "poll": poll,
            }
            result = run_worker("bulk", args, env)
            served = emu.count("GET", "/collections")
        lists, waits = result["list_requests"], result["wait_list_requests"]
        # The pacer lets the first list request go at once, then one a second (60 a minute).
        paced = max(0, lists - 1)
        which = "old code" if tree != ROOT else f"server {answer} page_size"
        rows.append(
            (
                f"Rainforest stop-all, {collections} collections, 10 match ({which})",
                f"{lists} list requests ({paced} s = {paced / 60:.1f} min at 60/min) + {waits} for the wait, "
                f"{result['other_requests']} other; {result['matches']} stopped; unpaced run "
                f"{result['total_s']:.1f} s; server saw {served} list requests",
                "goal <= 10 list requests for 10,000 collections (page_size=1000)"
                + (
                    "" if answer == "refused" or tree != ROOT else (" (met)" if lists <= 10 else " (NOT met)")
                ),
            )
        )
    return rows


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
    return rows + bench_rainforest_stop_all(poll, old_tree)
