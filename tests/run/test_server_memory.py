"""The memory guard counts this run's own server, not the machine: another process taking memory on a shared
machine leaves its estimate as it was, while the server's own growth (its backends holding the values) still
counts. The server is the embedded server's postmaster and children, or this run's backends on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
from helpers import ASYNC, TINY_RAMP, add_insert_trigger, create_pgstress_table, drop_trigger_function, read_csv
from psycopg import sql

from pgstress.run.memory_guard import MemoryGuard
from pgstress.run.server_memory import EmbeddedServer, OwnBackends, ServerMemoryWatch, private_mb

HOG_MIB = 300
# A process of its own that takes HOG_MIB resident, says so on its stdout, and holds it until its stdin closes.
_HOG = (f"import sys; held = b'\\1' * ({HOG_MIB} << 20); sys.stdout.write('held'); sys.stdout.flush();"
        " sys.stdin.read()")


@contextmanager
def another_process_holding_memory() -> Iterator[int]:
    """Another process on this machine holding HOG_MIB, for as long as the block runs (synchronised by its pipes)."""
    hog = subprocess.Popen([sys.executable, "-c", _HOG], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert hog.stdout is not None and hog.stdin is not None
        assert hog.stdout.read(4) == b"held"
        yield hog.pid
    finally:
        if hog.stdin is not None:
            hog.stdin.close()
        hog.wait(timeout=60)


def _data_directory(conn: psycopg.Connection) -> Path:
    found = conn.execute("SHOW data_directory").fetchone()
    assert found is not None
    return Path(found[0])


def test_the_embedded_servers_processes_are_its_postmaster_and_children(embedded_dsn: str) -> None:
    with psycopg.connect(embedded_dsn) as conn:
        server = EmbeddedServer(_data_directory(conn))
        pids = server.pids()
        assert server.postmaster() == pids[0]
        assert conn.info.backend_pid in pids
        assert os.getpid() not in pids
        found = private_mb(pids)
        assert found is not None and found > 0


def test_another_process_taking_memory_is_not_the_servers_growth(embedded_dsn: str) -> None:
    with psycopg.connect(embedded_dsn) as conn:
        server = EmbeddedServer(_data_directory(conn))
    with another_process_holding_memory() as hog:
        with ServerMemoryWatch(server, private_mb(server.pids())) as watch:
            assert hog not in server.pids()
        # left while the other process holds HOG_MIB: the final sample saw it running, and not as the server's
        assert watch.growth_mb is not None and watch.growth_mb < HOG_MIB / 4, watch.growth_mb


def test_the_servers_own_growth_is_counted(embedded_dsn: str) -> None:
    """A backend of the server holding 150 MiB (a session setting's value) is the server's growth."""
    with psycopg.connect(embedded_dsn, autocommit=True) as conn:
        server = EmbeddedServer(_data_directory(conn))
        with ServerMemoryWatch(server, private_mb(server.pids())) as watch:
            conn.execute("SELECT set_config('pgstress_test.held', repeat('x', 150 * 1024 * 1024), false)")
        assert watch.growth_mb is not None and watch.growth_mb >= 140, watch.growth_mb


def test_a_server_not_on_this_machine_is_not_counted_and_the_note_says_so() -> None:
    backends = OwnBackends()
    backends.tell([os.getpid()])  # a pid that is here but no postgres process: another machine's backend
    assert backends.pids() == []
    assert "not visible" in backends.described()
    with ServerMemoryWatch(backends, private_mb(backends.pids())) as watch:
        pass
    assert watch.growth_mb is None


def test_the_guard_says_when_the_server_not_the_client_sets_its_estimate() -> None:
    guard = MemoryGuard(limit_mb=100.0)
    guard.observe(1000, 10.0, None, 5.0, server_mb=40.0)  # the client grew 10 MiB, its server 40
    assert guard.estimate_mb(4000) == 160.0
    refusal = guard.refusal(4000)
    assert refusal is not None and refusal.startswith(
        "estimated memory of this client and its server on this machine (from how far the server's own processes"
        " grew) 160.0 MiB for this level exceeds --max-client-memory-mb 100")
    guard.observe(2000, 80.0, server_mb=20.0)  # a larger level, where the client's own growth is the most
    assert guard.estimate_mb(4000) == 160.0
    refusal = guard.refusal(4000)
    assert refusal is not None and refusal.startswith("estimated client memory 160.0 MiB")


# --- a whole ramp: the estimate of level 3 comes from level 2 --------------------------------------------------

def _estimates(tmp_path: Path) -> list[float]:
    rows = read_csv(ASYNC.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "OK", "OK"], rows
    return [float(row["estimated_client_mb"]) if row["estimated_client_mb"] else 0.0 for row in rows]


def test_another_process_taking_memory_during_a_ramp_leaves_the_estimate(embedded_dsn: str, table_name: str,
                                                                         embedded_db: psycopg.Connection, hooks,
                                                                         run_cli, tmp_path: Path) -> None:
    """While level 2 runs, another process holds 300 MiB: the estimate for level 3 (1.5x level 2) is what the
    client and its server cost, far below the 450 MiB that reading the machine's memory would make it."""
    with ExitStack() as held:
        hooks.before[2] = lambda: held.enter_context(another_process_holding_memory())
        hooks.after[2] = lambda row: held.close()
        result = run_cli(*ASYNC.argv(), "--dsn", embedded_dsn, "--table", table_name, "--payload-format", "bson",
                         *TINY_RAMP)
    assert result.code == 0, result.err
    estimate = _estimates(tmp_path)[2]
    assert 0 < estimate < HOG_MIB, estimate
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "this run's own server backends, found on this machine by their pg_backend_pid()" in report


def test_the_servers_growth_during_a_ramp_is_in_the_estimate(embedded_dsn: str, table_name: str,
                                                             embedded_db: psycopg.Connection, run_cli,
                                                             tmp_path: Path) -> None:
    """Level 2's INSERTs make each of the run's C backends hold 150 MiB more (a trigger sets a session setting):
    the estimate for level 3 is at least 1.5x their growth."""
    create_pgstress_table(embedded_db, table_name, "bson")
    add_insert_trigger(embedded_db, table_name,
                       "IF NEW.epochs = 2000 THEN PERFORM set_config('pgstress_test.held',"
                       " repeat('x', 150 * 1024 * 1024), false); END IF; RETURN NEW;")
    try:
        result = run_cli(*ASYNC.argv(), "--dsn", embedded_dsn, "--table", table_name, "--payload-format", "bson",
                         *TINY_RAMP)
    finally:
        embedded_db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table_name)))
        drop_trigger_function(embedded_db, table_name)
    assert result.code == 0, result.err
    held_mb = 150 * ASYNC.concurrency
    assert _estimates(tmp_path)[2] >= 1.4 * held_mb, _estimates(tmp_path)


@pytest.mark.parametrize("with_hog", [False, True], ids=["alone", "another process holding memory"])
def test_the_embedded_servers_ramp_counts_its_postmaster_and_children(with_hog: bool, hooks, run_cli,
                                                                     tmp_path: Path, short_tmp: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """pgstress's own embedded server: the report says its processes were counted, and another process holding
    memory during level 2 leaves the estimate for level 3 below what it holds."""
    monkeypatch.delenv("PG_DSN", raising=False)
    monkeypatch.setenv("TMPDIR", str(short_tmp))
    with ExitStack() as held:
        if with_hog:
            hooks.before[2] = lambda: held.enter_context(another_process_holding_memory())
            hooks.after[2] = lambda row: held.close()
        result = run_cli(*ASYNC.argv(), "--payload-format", "bson", *TINY_RAMP)
    assert result.code == 0, result.err
    assert 0 < _estimates(tmp_path)[2] < HOG_MIB
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "the embedded server's processes (its postmaster and all its children)" in report
