"""What the comparisons share: the row type and table, memory readings, and the child processes.

Every measured workload runs in a fresh interpreter (``python -m bench --worker NAME``), so import
costs, memory and CPU are its own. This module imports nothing of ``airflow_provider_stop``: a worker
imports this before it picks which tree's provider code it measures.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: This checkout: where ``bench`` is imported from, and the provider code measured unless told otherwise.
ROOT = Path(__file__).resolve().parents[1]

#: One printed line: what is measured, the result (medians), the goal or a note.
Row = tuple[str, str, str]


def rss_mib() -> float:
    """The resident memory now, to tell what a workload adds to what the process had before it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def peak_rss_mib() -> float:
    """The process's peak resident memory: what a deployment has to provision for."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(name: str, args: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run worker ``name`` in a fresh interpreter on ``args``; its JSON answer plus its wall time.

    ``env`` may name another tree in ``PYTHONPATH`` (``--old-tree``). The child starts in this
    checkout so that ``-m bench`` finds this checkout's ``bench``; ``measured_tree_first`` then puts
    the ``PYTHONPATH`` tree ahead of it for ``airflow_provider_stop``."""
    started = time.monotonic()
    proc = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "bench", "--worker", name],
        input=json.dumps(args),
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall}


def measured_tree_first() -> None:
    """In a worker, before anything imports ``airflow_provider_stop``: ``python -m`` put the working
    directory (this checkout) ahead of ``PYTHONPATH`` (the tree being measured); move it last so the
    measured tree's provider is imported. ``bench`` itself is imported already, from this checkout."""
    if sys.path and Path(sys.path[0] or ".").resolve() == ROOT:
        sys.path.append(sys.path.pop(0))


def conn_env(emulators: dict[str, Any], **extras: dict[str, Any]) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for the emulators (with ``extras`` merged into a service's extra):
    the workers look their connections up as a task would, without a metadata database."""
    env = {}
    for service, emu in emulators.items():
        conn = emu.connection()
        if service in extras:
            conn = {**conn, "extra": {**(conn.get("extra") or {}), **extras[service]}}
        env[f"AIRFLOW_CONN_{service.upper()}_DEFAULT"] = json.dumps(conn)
    return env


def old_to_new(key: str, fmt: str, new: dict[str, Any], old: dict[str, Any] | None) -> str:
    """A result cell: ``new[key]``, or ``old -> new`` when an old tree was measured too."""
    text = fmt.format(new[key])
    return f"{fmt.format(old[key])} -> {text}" if old else text


def print_table(rows: Sequence[Row]) -> None:
    """All comparisons in one table, columns as wide as their longest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print()
    print(f"{'measure':<{widths[0]}} | {'result (medians)':<{widths[1]}} | goal / note")
    print("-" * (sum(widths) + 6))
    for row in rows:
        print(f"{row[0]:<{widths[0]}} | {row[1]:<{widths[1]}} | {row[2]}")
