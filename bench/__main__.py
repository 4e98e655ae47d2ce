"""``make bench``: what it costs to stop and wait, against the alternatives, measured side by side.

The emulators run in this process; every measured workload runs in a fresh interpreter (so import
costs, memory and CPU are its own), started with ``python -m bench --worker``. Prints one table.
Not part of the tests: timings on a shared machine are noisy, so each row is a median of repeats and
every comparison is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, measured_tree_first, print_table

SECTIONS = ("parse", "wait", "triggerer", "bulk", "shared_limit")


def worker(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The worker ``name``. The comparisons import ``airflow_provider_stop``, so they are imported
    here, once the tree being measured leads ``sys.path``."""
    from bench import bulk, parse, shared_limit, triggerer, wait

    workers = {
        "parse": parse.worker_parse,
        "wait": wait.worker_wait,
        "triggerer": triggerer.worker_triggerer,
        "bulk": bulk.worker_bulk,
        "shared_limit": shared_limit.worker_shared_limit,
    }
    return workers[name]


def parse_args() -> argparse.Namespace:
    """The options of ``make bench`` (``BENCH_ARGS``); ``--worker`` is for the child processes only."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
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
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[1, 10, 40],
        help="process counts of the shared-limit rows",
    )
    parser.add_argument(
        "--limit-seconds", type=float, default=10.0, help="seconds each shared-limit run polls"
    )
    parser.add_argument("--only", choices=SECTIONS, action="append")
    return parser.parse_args()


def run_sections(opts: argparse.Namespace) -> list[Row]:
    """The comparisons asked for, in the table's order, each announced as it starts (they take minutes)."""
    from bench.bulk import bench_bulk
    from bench.parse import bench_parse
    from bench.shared_limit import bench_shared_limit
    from bench.triggerer import bench_triggerer
    from bench.wait import bench_wait

    sections = opts.only or list(SECTIONS)
    rows: list[Row] = []
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
    if "shared_limit" in sections:
        print(
            f"Shared rate limit: {opts.processes} processes on one Amperity tenant, "
            f"{opts.limit_seconds:.0f} s each, with and without Redis ...",
            flush=True,
        )
        rows += bench_shared_limit(opts.processes, opts.limit_seconds)
    return rows


def main() -> int:
    """Run as a worker (one JSON line on stdout) or run the comparisons and print the table."""
    opts = parse_args()
    if opts.worker:
        measured_tree_first()
        print(json.dumps(worker(opts.worker)(json.loads(sys.stdin.read()))), flush=True)
        return 0
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".bench" / "airflow"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    started = time.monotonic()
    rows = run_sections(opts)
    print_table(rows)
    print(f"\n{len(rows)} rows in {time.monotonic() - started:.0f} s on {os.cpu_count()} cores.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
