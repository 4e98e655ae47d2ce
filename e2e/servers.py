"""The servers a production-shaped deployment runs beside Airflow, on loopback, in a temporary folder:
Redis (the Celery broker and the shared rate-limit storage) and PostgreSQL (the metadata database).

Each is Debian's package, installed with apt-get when missing and this is root (as ``e2e/forms.py``
installs Chromium); ``tests/`` uses the Redis server too. PostgreSQL refuses to run as root: it runs as
the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

REDIS_SERVER = "redis-server"
#: Debian's PostgreSQL (``/usr/lib/postgresql/<major>/bin``), newest first, then whatever is on PATH.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class ServerUnavailable(RuntimeError):
    """The server's program is missing and cannot be installed here (the message says why)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def apt_install(*packages: str) -> None:
    """``apt-get install`` Debian packages as root (waiting for another apt run rather than failing)."""
    if os.geteuid() != 0:
        raise ServerUnavailable(
            f"{', '.join(packages)} missing: run `apt-get install -y {' '.join(packages)}`"
        )
    if shutil.which("apt-get") is None:
        raise ServerUnavailable(f"{', '.join(packages)} missing and this machine has no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-qq"]
    for step in (["update"], ["install", "-y", "--no-install-recommends", *packages]):
        result = subprocess.run([*apt, *step], env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise ServerUnavailable(f"apt-get {step[0]} failed: {result.stderr.strip()[-500:]}")


def ensure_redis_server() -> str:
    """The ``redis-server`` program, installed if missing (idempotent)."""
    found = shutil.which(REDIS_SERVER)
    if found is None:
        apt_install("redis-server")
        found = shutil.which(REDIS_SERVER)
    if found is None:
        raise ServerUnavailable("apt-get installed redis-server but it is not on PATH")
    return found


def postgres_bin() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``, installed if missing."""
    for _ in range(2):
        folders = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), key=lambda p: p.parent.name, reverse=True)
        for folder in folders:
            if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
                return folder
        apt_install("postgresql")
    raise ServerUnavailable("apt-get installed postgresql but no initdb was found")


def wait_port(port: int, timeout: float, what: str, alive: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise ServerUnavailable(f"{what} exited {alive.returncode} before it listened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServerUnavailable(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


class RedisServer:
    """A throw-away Redis on loopback (no persistence); ``url`` for clients."""

    def __init__(self, folder: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._own = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="stop-provider-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        program = ensure_redis_server()
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "redis.log").open("wb")
        argv = [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.folder), "--protected-mode", "no"]
        self.process = subprocess.Popen(  # noqa: S603 - a fixed program and arguments
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        wait_port(self.port, 30, "redis-server", self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._own:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class PostgresServer:
    """A throw-away PostgreSQL cluster on loopback, owned by the ``postgres`` user (the server refuses
    root), trusting local connections; ``url`` is a SQLAlchemy URL for Airflow (psycopg2)."""

    USER = "postgres"

    def __init__(self) -> None:
        #: Its own folder under the system's temporary one: the owner must reach it (a root-only
        #: Airflow home would not do).
        self.folder = Path(tempfile.mkdtemp(prefix="stop-provider-pg-"))
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://{self.USER}@127.0.0.1:{self.port}/airflow"
        self.bin = postgres_bin()

    def _as_owner(self, *argv: str, timeout: float = 120) -> str:
        """Run a PostgreSQL program as its owner (``runuser`` when this is root)."""
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        if result.returncode != 0:
            raise ServerUnavailable(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout)[-800:]}")
        return result.stdout

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, self.USER, self.USER)
        self._as_owner(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.USER, "-E", "UTF8"
        )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c max_connections=300"
        options += " -c fsync=off -c synchronous_commit=off"  # a test database: speed over durability
        self._as_owner(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        self._as_owner(
            str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER,
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE airflow",
        )  # fmt: skip
        return self

    def stop(self, keep_log: Path | None = None) -> None:
        """Stop the server and remove its folder (its log copied to ``keep_log`` first, if given)."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ServerUnavailable, subprocess.TimeoutExpired):
                pg_ctl = str(self.bin / "pg_ctl")
                self._as_owner(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        if keep_log is not None and (self.folder / "postgres.log").exists():
            keep_log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.folder / "postgres.log", keep_log)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
