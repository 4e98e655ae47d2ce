"""``make e2e`` as a pytest session: the provider under a real Airflow 3 deployment, end to end.

The ``driver`` fixture starts the five emulators in this process and a real deployment (api-server,
scheduler, dag-processor and triggerer as separate processes; LocalExecutor; sqlite; connections stored
with ``airflow connections add``) once per session, and stops it at the end, also on failure or Ctrl-C
(SIGTERM too); the logs of a failed run are kept in ``.e2e/failed/``. Its set-up is the check "deployment
up" (when it fails, the session stops there) and its tear-down the check "components still alive".

One module per phase, run in this order (``pytest_collection_modifyitems``): ``test_forms``,
``test_examples``, ``test_fast_stop``, ``test_links``, ``test_restarts``, ``test_semantics``,
``test_kill`` (a user's task killed, its trigger moved), ``test_routes`` (which stop route fires on which
event), then the deadline-alert example (the last of the runs), ``test_secrets`` (the sweep reads every
run the others recorded in ``driver.runs``).

    python -m pytest e2e [-k fast_stop] [--runs 20] [--config section.option=value]
                         [--code-root PATH]   # import the provider (and example DAGs) from another tree

``test_production.py`` is not a phase of this deployment: it brings up its own, production-shaped one
(``e2e/production.py``: PostgreSQL, CeleryExecutor with Redis, two triggerers) and runs alone, as
``make e2e-production`` (``make e2e`` leaves it out).

Not collected by a plain ``pytest`` (``testpaths`` is ``tests``). Besides pytest's own summary it prints
the phases' figures and ``e2e: N passed, M failed`` at the end.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.driver import OUT, Driver, airflow_settings, code_root

HERE = Path(__file__).resolve().parent
#: The phases (``test_<phase>.py``) in the order they run.
PHASES = ("forms", "examples", "fast_stop", "links", "restarts", "semantics", "kill", "routes", "secrets")


class Console:
    """Lines for the terminal as the tests run (output capture suspended), and the phases' figures,
    repeated in the terminal summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.figures: list[str] = []

    def say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:
            print(line, flush=True)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    def figure(self, line: str) -> None:
        self.figures.append(line.strip())
        self.say(line)


CONSOLE = pytest.StashKey[Console]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("e2e", "make e2e: the provider under a real Airflow deployment")
    group.addoption("--runs", type=int, default=20, help="runs of the fast-stop DAG (default 20)")
    group.addoption(
        "--config",
        action="append",
        default=[],
        metavar="SECTION.OPTION=VALUE",
        help="an Airflow setting for every component, e.g. stop_provider.wait_before_defer=0 (repeatable)",
    )
    group.addoption(
        "--code-root",
        default=str(HERE.parent),
        metavar="DIR",
        help="the tree the provider and the example DAGs come from (default: this checkout)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e_after(phase): an e2e test that runs after the tests of that phase"
    )
    try:
        airflow_settings(config.getoption("config"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    # The driver's emulators come from the same tree as the code under test.
    sys.path.insert(0, str(code_root(config)))
    config.stash[CONSOLE] = Console(config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The e2e tests in phase order (each phase's own order kept); other tests stay where they are."""

    def slot(item: pytest.Item) -> tuple[int, bool]:
        after = item.get_closest_marker("e2e_after")
        phase = after.args[0] if after else item.path.stem.removeprefix("test_")
        return (PHASES.index(phase) if phase in PHASES else len(PHASES), after is not None)

    places = [n for n, item in enumerate(items) if item.path.parent == HERE]
    for n, item in zip(places, sorted((items[n] for n in places), key=slot), strict=True):
        items[n] = item


def interrupted(signum: int, frame: object) -> None:
    """SIGTERM (e.g. CI cancelling the job) cleans up like Ctrl-C."""
    raise KeyboardInterrupt


@pytest.fixture(scope="session")
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """The running deployment, once per session."""
    config, session = request.config, request.session
    console = config.stash[CONSOLE]
    previous = signal.signal(signal.SIGTERM, interrupted)
    started: Driver | None = None
    alive = False
    try:
        try:  # the check "deployment up (4 components, DB connections, DAGs parsed)"
            import airflow_provider_stop

            console.say(f"Emulators from {Path(airflow_provider_stop.__file__).parent}")
            OUT.mkdir(exist_ok=True)
            settings = airflow_settings(config.getoption("config"))
            started = Driver(code_root(config), settings, console.say, console.figure)
            started.start()
        except BaseException:
            session.shouldfail = "the deployment did not come up"
            raise
        yield started
        started.dep.check_alive()  # the check "components still alive"
        alive = True
    finally:
        if started is not None:
            cut_short = session.exitstatus == pytest.ExitCode.INTERRUPTED
            started.stop(ok=alive and not session.testsfailed and not cut_short)
        signal.signal(signal.SIGTERM, previous)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    console = config.stash.get(CONSOLE, None)
    if console is None or config.option.collectonly:
        return
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        console.figures.append("e2e: interrupted (Ctrl-C or SIGTERM); everything stopped")
        failed += 1
    terminalreporter.write_sep("-", "e2e")
    for line in console.figures:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"e2e: {passed} passed, {failed} failed")
