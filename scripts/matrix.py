"""``make matrix``: the provider on every supported Airflow minor and Python, each in its own environment.

For each (Airflow, Python) pair in ``scripts/airflow-releases.txt`` this builds a fresh virtualenv
under ``.matrix/``, installs that Airflow as its release was built (``--exclude-newer`` its upload
time: see the file's header), then the provider's **built wheel** with its ``test`` extra, and checks:

1. the install moved none of the packages an Airflow release is fragile about (pydantic, FastAPI,
   cadwyn, Starlette, svcs, SQLAlchemy, Airflow's own distributions);
2. outside the source tree, every hook, operator, sensor, trigger and notifier class imports from the
   installed wheel, and ``airflow providers list`` / ``airflow providers hooks`` show the provider;
3. ``pytest -m airflow`` (the real-Airflow part: operators, sensors, the trigger, notifiers and
   example DAGs under ``dag.test()``, provider registration) passes, run from a copy of the tests so
   the installed wheel, not the checkout, is what they import.

Step 3 runs on the oldest and the newest Python of each minor (the Pythons where syntax, the standard
library and the resolved dependencies differ most); the Pythons between get steps 1 and 2 only, which
is what a Python version changes for this pure-Python package (``--all-pythons``: step 3 on every pair;
kept out of CI for its 60-minute budget). The newest pair runs only 1 and 2 here: ``make pytest`` runs
the whole suite on it in ``.venv``.
Two environments run at a time (CI has 2 cores; the tests spend much of their time waiting on
emulators). Prints one line per environment and a closing summary; exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import glob
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASES = ROOT / "scripts" / "airflow-releases.txt"
WORK = ROOT / ".matrix"
#: Packages whose drift from a release's pins is known to break Airflow (research in docs/research).
FRAGILE = re.compile(
    r"^(pydantic|pydantic-core|fastapi|cadwyn|starlette|svcs|sqlalchemy|"
    r"apache-airflow|apache-airflow-core|apache-airflow-task-sdk)$"
)
#: What the tests need next to the checkout's test files (example DAGs, e2e helpers, pytest config).
TEST_TREE = ("tests", "example_dags", "e2e", "pyproject.toml")

CHECK = """
import importlib, inspect, json, sys
from airflow_provider_stop.get_provider_info import get_provider_info
import airflow_provider_stop
if "site-packages" not in airflow_provider_stop.__file__:
    sys.exit(f"the provider was imported from {airflow_provider_stop.__file__}, not the installed wheel")
info = get_provider_info()
layers = ("hooks", "operators", "sensors", "triggers")
modules = [m for layer in layers for e in info[layer] for m in e["python-modules"]]
modules += [path.rpartition(".")[0] for path in info.get("notifications", [])]
classes = []
for name in dict.fromkeys(modules):
    mod = importlib.import_module(name)
    classes += [c for _, c in inspect.getmembers(mod, inspect.isclass) if c.__module__ == name]
for conn in info["connection-types"]:
    mod, _, cls = conn["hook-class-name"].rpartition(".")
    getattr(importlib.import_module(mod), cls)
print(json.dumps({"modules": len(dict.fromkeys(modules)), "classes": len(classes)}))
"""


@dataclasses.dataclass
class Env:
    airflow: str
    released: str
    python: str
    whole_suite_elsewhere: bool = False
    #: Step 3 runs here (the oldest and newest Python of the minor, or ``--all-pythons``).
    tests: bool = True
    status: str = "pending"
    summary: str = ""
    times: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"af{self.airflow}-py{self.python}"

    @property
    def dir(self) -> Path:
        return WORK / self.name

    @property
    def log(self) -> Path:
        return WORK / "logs" / f"{self.name}.log"


class StepFailed(Exception):
    """One step of one environment failed; the message says which and why."""


def releases() -> list[tuple[str, str, list[str]]]:
    """``(airflow, released_at, pythons)`` per minor, oldest first, from the releases file."""
    rows = []
    for line in RELEASES.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            airflow, released, *pythons = line.split()
            rows.append((airflow, released, pythons))
    return rows


def find_python(version: str) -> str:
    """An interpreter for ``3.N`` on this machine: pyenv's, then the system's. Never downloads one."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"), reverse=True)
    candidates += [p for p in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}")]
    for cand in candidates:
        try:
            out = subprocess.run(
                [cand, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return cand
    raise StepFailed(f"no Python {version} found (looked in {root}/versions and /usr/bin)")


def clean_env(venv: Path, home: Path) -> dict[str, str]:
    """The environment a user's shell would have with this venv active: nothing of ours leaks in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON", "UV_PROJECT", "CONDA"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


def run(cmd: list[str], log: Path, env: dict[str, str], cwd: Path, step: str, timeout: float) -> str:
    """Run one step, appending its output to the environment's log; raise StepFailed on failure."""
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            proc = subprocess.run(
                cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise StepFailed(f"{step}: timed out after {timeout:.0f} s") from exc
        fh.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise StepFailed(f"{step}: exit {proc.returncode}: {' | '.join(tail)}")
    return proc.stdout


def freeze(uv: str, py: str, env: dict[str, str], log: Path) -> dict[str, str]:
    out = run([uv, "pip", "freeze", "-p", py], log, env, ROOT, "freeze", 120)
    pins = {}
    for line in out.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def build(env_: Env, uv: str, wheel: Path, pytest_args: list[str]) -> None:
    """Create, install, check and test one environment; fills ``env_`` with the outcome."""
    shutil.rmtree(env_.dir, ignore_errors=True)
    env_.dir.mkdir(parents=True)
    env_.log.parent.mkdir(parents=True, exist_ok=True)
    env_.log.write_text(f"{env_.name}\n")
    venv, home = env_.dir / "venv", env_.dir / "airflow-home"
    home.mkdir()
    env = clean_env(venv, home)
    py = str(venv / "bin" / "python")
    started = time.monotonic()

    run([uv, "venv", "--quiet", "-p", find_python(env_.python), str(venv)], env_.log, env, ROOT, "venv", 120)
    af = f"apache-airflow=={env_.airflow}"
    run([uv, "pip", "install", "-p", py, af, "--exclude-newer", env_.released], env_.log, env, ROOT,
        "install Airflow as released", 900)  # fmt: skip
    built_with = freeze(uv, py, env, env_.log)
    run([uv, "pip", "install", "-p", py, af, f"airflow-provider-stop[test] @ {wheel.as_uri()}"],
        env_.log, env, ROOT, "install the provider wheel", 900)  # fmt: skip
    now = freeze(uv, py, env, env_.log)
    moved = sorted(
        f"{name} {built_with.get(name)} -> {now.get(name)}"
        for name in built_with  # test-only additions (the emulators' Starlette on 2.11) are not moves
        if FRAGILE.match(name) and built_with[name] != now.get(name)
    )
    if moved:
        raise StepFailed(f"the provider's install moved packages the release pins: {', '.join(moved)}")
    env_.times["install"] = time.monotonic() - started

    started = time.monotonic()
    counted = run([py, "-c", CHECK], env_.log, env, env_.dir, "import every class from the wheel", 300)
    listed = run([str(venv / "bin" / "airflow"), "providers", "list", "--output", "json"],
                 env_.log, env, env_.dir, "airflow providers list", 300)  # fmt: skip
    if "airflow-provider-stop" not in listed:
        raise StepFailed("`airflow providers list` does not show airflow-provider-stop")
    hooks = run([str(venv / "bin" / "airflow"), "providers", "hooks", "--output", "json"],
                env_.log, env, env_.dir, "airflow providers hooks", 300)  # fmt: skip
    if "airflow_provider_stop" not in hooks or "Error when importing" in hooks:
        raise StepFailed("`airflow providers hooks` does not list the provider's hooks cleanly")
    env_.times["checks"] = time.monotonic() - started
    env_.summary = f"wheel: {counted.strip()}"

    if env_.whole_suite_elsewhere:
        env_.summary += "; pytest: the whole suite runs in .venv (make pytest)"
        return
    if not env_.tests:
        env_.summary += "; pytest: on this minor's oldest and newest Python (--all-pythons: here too)"
        return
    started = time.monotonic()
    tree = env_.dir / "src"
    for name in TEST_TREE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(src, tree / name)
    out = run([py, "-m", "pytest", "-m", "airflow", "-q", "-p", "no:cacheprovider", *pytest_args],
              env_.log, env, tree, "pytest -m airflow", 2400)  # fmt: skip
    env_.times["pytest"] = time.monotonic() - started
    last = out.strip().splitlines()[-1] if out.strip() else ""
    env_.summary += f"; pytest: {last.strip('= ')}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2, help="environments built and tested at once")
    parser.add_argument("--only", default="", help="e.g. '3.1' or '2.11.2-py3.10': run the matching ones")
    parser.add_argument(
        "--all-pythons",
        action="store_true",
        help="pytest on every Python, not only each minor's oldest and newest",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()

    uv = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if uv is None:
        print("matrix: uv is needed (scripts/bootstrap.sh installs it into .venv)", file=sys.stderr)
        return 2
    rows = releases()
    newest = (rows[-1][0], "3.11")  # the pair .venv runs the whole suite on
    envs = [
        Env(
            af,
            released,
            py,
            whole_suite_elsewhere=(af, py) == newest,
            tests=args.all_pythons or py in (pythons[0], pythons[-1]),
        )
        for af, released, pythons in rows
        for py in pythons
    ]
    envs = [e for e in envs if args.only in f"{e.airflow}-py{e.python}"]
    # Longest first: 3.x environments, then 2.11 (its dag.test() is faster), the check-only ones last.
    envs.sort(key=lambda e: (e.whole_suite_elsewhere or not e.tests, e.airflow.startswith("2."), e.name))

    started = time.monotonic()
    dist = WORK / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run([uv, "build", "--quiet", "--wheel", "--out-dir", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("*.whl"))
    print(f"matrix: {len(envs)} environments, {args.jobs} at a time, wheel {wheel.name}", flush=True)

    def one(env_: Env) -> Env:
        t0 = time.monotonic()
        try:
            build(env_, uv, wheel, args.pytest_args)
            env_.status = "ok"
        except (StepFailed, OSError, subprocess.SubprocessError) as exc:
            env_.status, env_.summary = "FAILED", str(exc)
        env_.times["total"] = time.monotonic() - t0
        steps = "  ".join(f"{k} {v:.0f}s" for k, v in env_.times.items())
        print(f"matrix: {env_.name:<18} {env_.status:<6} {steps}\n        {env_.summary}", flush=True)
        if env_.status != "ok":
            print(f"        log: {env_.log}\n" + _tail(env_.log, 40), flush=True)
        return env_

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = list(pool.map(one, envs))
    failed = [e for e in done if e.status != "ok"]
    total = time.monotonic() - started
    print(
        f"matrix: {len(done) - len(failed)} passed, {len(failed)} failed in {total / 60:.1f} min", flush=True
    )
    for e in failed:
        print(f"matrix: FAILED {e.name}: {e.summary}")
    return 1 if failed or not done else 0


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"        | {line}" for line in text)


if __name__ == "__main__":
    sys.exit(main())
