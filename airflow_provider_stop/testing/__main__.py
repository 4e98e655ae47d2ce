"""``python -m airflow_provider_stop.testing serve``: run the emulators and print connection exports."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import threading
from typing import Any

from airflow_provider_stop import services
from airflow_provider_stop.testing import emulator_class


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_stop.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the emulators until interrupted")
    provided = sorted(svc.name for svc in services.provided())
    serve.add_argument("--service", action="append", choices=provided, help="only these (repeatable)")
    serve.add_argument("--port", type=int, default=0, help="first port (0: any free port)")
    serve.add_argument("--demo-data", action="store_true", help="create a few running targets")
    args = parser.parse_args(argv)

    emulators: list[Any] = []
    for i, service in enumerate(args.service or provided):
        emulator = emulator_class(service)()
        emulator.start(port=args.port + i if args.port else 0)
        if args.demo_data:
            emulator.add_demo_data()
        emulators.append(emulator)
        conn_id = f"{service}_default".upper()
        print(f"export AIRFLOW_CONN_{conn_id}={shlex.quote(json.dumps(emulator.connection()))}", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    for emulator in emulators:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
