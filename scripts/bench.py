"""``make bench``: what it costs to stop and wait, against the alternatives, measured side by side.

The emulators run in this process; every measured workload runs in a fresh interpreter (so import
costs, memory and CPU are its own), started by this script with ``--worker``. Prints one table.
Not part of the tests: timings on a shared machine are noisy, so each row is a median of repeats and
every comparison is measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from airflow_provider_stop import services

ROOT = Path(__file__).resolve().parents[1]
BASE_IMPORT = "from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator"
#: What a DAG file imports on top of the base classes, per variant.
IMPORTS = {
    "airflow.sdk base classes": "",
    "+ airflow-provider-stop": (
        "\n".join(
            f"import {svc.module(layer)}"
            for layer in ("operators", "sensors", "notifications")
            for svc in services.provided()
        )
    ),
    "+ HttpOperator, HttpSensor": (
        "from airflow.providers.http.operators.http import HttpOperator\n"
        "from airflow.providers.http.sensors.http import HttpSensor"
    ),
}


# ------------------------------------------------------------------------------------------------
# Workers: each runs in a fresh interpreter and prints one JSON line
# ------------------------------------------------------------------------------------------------
def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_parse(args: dict[str, Any]) -> dict[str, Any]:
    exec(BASE_IMPORT, {})  # noqa: S102 - the fixed import lines above
    started = time.perf_counter()
    exec(IMPORTS[args["variant"]], {})  # noqa: S102
    return {
        "import_s": time.perf_counter() - started,
        "peak_rss_mib": peak_rss_mib(),
        "modules": len(sys.modules),
    }


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


def worker_triggerer(args: dict[str, Any]) -> dict[str, Any]:
    """Many waits of the generic trigger in one event loop, as a triggerer runs them.

    First one wait per service on a target already stopped (``args["warm"]``), in its own loop and
    not measured: a triggerer has run waits before, so what a process pays once (importing the hook
    modules, and Airflow's own modules its connection lookup loads, which a triggerer has loaded at
    start: ``airflow/jobs/triggerer_job_runner.py`` imports ``airflow.sdk.execution_time``'s
    ``supervisor``, ``context`` and ``task_runner``) is not counted as the thousand waits' CPU.
    Their loop starts with no client, board or lookup."""
    from airflow_provider_stop.triggers.base import StopWaitTrigger

    hooks = {svc.name: svc.hook_path for svc in services.provided()}

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


def worker_bulk(args: dict[str, Any]) -> dict[str, Any]:
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


WORKERS = {"parse": worker_parse, "wait": worker_wait, "triggerer": worker_triggerer, "bulk": worker_bulk}


def run_worker(name: str, args: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name],
        input=json.dumps(args),
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall}


def conn_env(emulators: dict[str, Any], **extras: dict[str, Any]) -> dict[str, str]:
    env = {}
    for service, emu in emulators.items():
        conn = emu.connection()
        if service in extras:
            conn = {**conn, "extra": {**(conn.get("extra") or {}), **extras[service]}}
        env[f"AIRFLOW_CONN_{service.upper()}_DEFAULT"] = json.dumps(conn)
    return env


# ------------------------------------------------------------------------------------------------
# The comparisons
# ------------------------------------------------------------------------------------------------
Row = tuple[str, str, str]


def bench_parse(repeat: int) -> list[Row]:
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in IMPORTS}
    for i in range(repeat):
        order = list(IMPORTS) if i % 2 == 0 else list(reversed(IMPORTS))  # alternate against drift
        for variant in order:
            samples[variant].append(run_worker("parse", {"variant": variant}))
    med = {
        v: {
            k: statistics.median(s[k] for s in runs)
            for k in ("wall_s", "import_s", "peak_rss_mib", "modules")
        }
        for v, runs in samples.items()
    }
    base = med["airflow.sdk base classes"]
    rows: list[Row] = []
    for variant, m in med.items():
        added = ""
        if m is not base:
            mem, modules = m["peak_rss_mib"] - base["peak_rss_mib"], m["modules"] - base["modules"]
            added = f"+{m['import_s'] * 1000:.0f} ms, +{mem:.1f} MiB, +{modules:.0f} modules"
        rows.append(
            (
                f"DAG parse: {variant}",
                f"process {m['wall_s']:.2f} s, {m['peak_rss_mib']:.1f} MiB, {m['modules']:.0f} modules",
                added,
            )
        )
    ours, http = med["+ airflow-provider-stop"], med["+ HttpOperator, HttpSensor"]
    # The added wall time is timed inside each interpreter: the whole process's time varies by more
    # than the difference (Airflow alone takes seconds to import).
    ratio_wall = ours["import_s"] / max(1e-9, http["import_s"])
    ratio_mem = (ours["peak_rss_mib"] - base["peak_rss_mib"]) / max(
        1e-9, http["peak_rss_mib"] - base["peak_rss_mib"]
    )
    rows.append(
        (
            "DAG parse: our added cost / the HTTP provider's",
            f"wall {ratio_wall:.2f}, memory {ratio_mem:.2f}",
            "goal <= 0.20 " + ("(met)" if max(ratio_wall, ratio_mem) <= 0.2 else "(NOT met)"),
        )
    )
    return rows


def bench_wait(stop_seconds: float, poll: float, repeat: int) -> list[Row]:
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
    from airflow_provider_stop.operators.base import defer_settings

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

        def cell(key: str, fmt: str, new: dict[str, Any] = new, old: dict[str, Any] | None = old) -> str:
            text = fmt.format(new[key])
            return f"{fmt.format(old[key])} -> {text}" if old else text

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

        def cell(key: str, fmt: str, new: dict[str, Any] = new, old: dict[str, Any] | None = old) -> str:
            return f"{fmt.format(old[key])} -> {fmt.format(new[key])}" if old else fmt.format(new[key])

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5, help="repeats of the DAG-parse runs (median)")
    parser.add_argument("--stop-seconds", type=float, default=30.0, help="how long the Feldera stop takes")
    parser.add_argument("--poll", type=float, default=5.0, help="poll_interval of our operator and trigger")
    parser.add_argument("--waits", type=int, default=1000, help="concurrent trigger waits")
    parser.add_argument("--dfs-ids", type=int, default=5000, help="DataForSEO ids in the bulk run")
    parser.add_argument("--pipelines", type=int, default=1000, help="Feldera pipelines in the bulk run")
    parser.add_argument("--ds-sources", type=int, default=100, help="DataSift sources in the bulk run")
    parser.add_argument(
        "--trigger-repeat", type=int, default=3, help="repeats of each triggerer run (median)"
    )
    parser.add_argument(
        "--old-tree",
        type=Path,
        help="a checkout of the code to compare with (e.g. `git worktree add /tmp/bench-old 0378ade`)",
    )
    parser.add_argument("--only", choices=("parse", "wait", "triggerer", "bulk"), action="append")
    opts = parser.parse_args()
    if opts.worker:
        print(json.dumps(WORKERS[opts.worker](json.loads(sys.stdin.read()))), flush=True)
        return 0
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".bench" / "airflow"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    sections = opts.only or ["parse", "wait", "triggerer", "bulk"]
    rows: list[Row] = []
    started = time.monotonic()
    if "parse" in sections:
        print(f"DAG-parse cost, {opts.repeat} alternating runs of 3 fresh interpreters ...", flush=True)
        rows += bench_parse(opts.repeat)
    if "wait" in sections:
        print(
            f"Cost of waiting: a {opts.stop_seconds:.0f} s Feldera stop, 3 ways x 3, side by side ...",
            flush=True,
        )
        rows += bench_wait(opts.stop_seconds, opts.poll, 3)
    if "triggerer" in sections:
        print(f"Triggerer scale: {opts.waits} waits in one event loop ...", flush=True)
        rows += bench_triggerer(opts.waits, opts.poll, opts.old_tree, opts.trigger_repeat)
    if "bulk" in sections:
        print(
            f"Bulk: {opts.dfs_ids} DataForSEO ids, {opts.pipelines} Feldera pipelines, "
            f"{opts.ds_sources} DataSift sources ...",
            flush=True,
        )
        rows += bench_bulk(opts.dfs_ids, opts.pipelines, opts.ds_sources, 1.0, opts.old_tree)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print()
    print(f"{'measure':<{widths[0]}} | {'result (medians)':<{widths[1]}} | goal / note")
    print("-" * (sum(widths) + 6))
    for row in rows:
        print(f"{row[0]:<{widths[0]}} | {row[1]:<{widths[1]}} | {row[2]}")
    print(f"\n{len(rows)} rows in {time.monotonic() - started:.0f} s on {os.cpu_count()} cores.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
