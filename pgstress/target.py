"""What a run runs against, as plain facts: where its DSN comes from, the server it reached, and what that server
offers. Nothing here connects: db/ finds these facts out, and the outputs read them from the run's context, so
no output ever needs the database layer."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pgstress.redaction import dsn_secrets, parse_dsn, redact_dsn, scrub

# libpq's own variables that say where to connect; any of them set means "the user has a server".
LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSERVICE")
LIBPQ_SOURCE = "libpq environment"


def libpq_environment() -> tuple[tuple[str, str], ...]:
    """The libpq connection variables that are set, the password masked."""
    found = ((name, os.environ.get(name, "")) for name in LIBPQ_VARIABLES)
    return tuple((name, "***" if name == "PGPASSWORD" else value) for name, value in found if value)


def resolve_dsn(cli_dsn: str | None) -> tuple[str | None, str]:
    """(the DSN, where it came from): --dsn, else PG_DSN, else libpq's variables (an empty conninfo), else
    (None, "embedded")."""
    if cli_dsn:
        return cli_dsn, "--dsn"
    env_dsn = os.environ.get("PG_DSN")
    if env_dsn:
        return env_dsn, "PG_DSN"
    if libpq_environment():
        return "", LIBPQ_SOURCE  # an empty conninfo: libpq takes everything from its variables
    return None, "embedded"


def describe_target(dsn: str, source: str | None = None) -> str:
    """host:port (or socket dir), database and where the DSN came from, for messages; never the password."""
    params = parse_dsn(dsn)
    if params is None:
        return "the server given by the DSN (which libpq cannot parse)"
    hosts = (params.get("host") or os.environ.get("PGHOST") or "the default socket").split(",")
    ports = (params.get("port") or os.environ.get("PGPORT") or "5432").split(",")
    if len(ports) == 1:
        ports *= len(hosts)
    where = ", ".join(f"{host}:{port}" for host, port in zip(hosts, ports))
    details = [f"database {params['dbname']}"] if params.get("dbname") else []
    details += [f"from {source}"] if source else []
    return scrub(where + (f" ({', '.join(details)})" if details else ""), *dsn_secrets(dsn))


@dataclass(frozen=True)
class ServerInfo:
    dsn: str
    source: str  # "--dsn", "PG_DSN", LIBPQ_SOURCE or "embedded"
    embedded: bool
    pgdata: Path | None = None
    libpq_env: tuple[tuple[str, str], ...] = ()  # (name, value) libpq read, PGPASSWORD shown as ***

    @property
    def public_dsn(self) -> str:
        return redact_dsn(self.dsn)

    def describe(self) -> str:
        """Where the run goes, for the progress title: never the password."""
        return "embedded PostgreSQL" if self.embedded else f"{describe_target(self.dsn)} from {self.source}"


@dataclass(frozen=True)
class MeasureSupport:
    """Which server-side measures this server offers; each `*_missing` says why one is not (empty: offered)."""

    version_num: int
    statements_schema: str | None = None  # where pg_stat_statements lives, when usable
    statements_missing: str = ""
    tracks_utility: bool = True  # pg_stat_statements records COPY
    io_missing: str = ""
    compression_missing: str = ""

    @property
    def io(self) -> bool:
        return not self.io_missing


@dataclass
class ServerDetails:
    version: str = "unknown"
    settings: dict[str, str] = field(default_factory=dict)
    payload_column_compression: str | None = None  # pglz, lz4, or default (follows default_toast_compression)
    payload_column_storage: str | None = None  # extended, external, main (or plain)
    measures: MeasureSupport | None = None  # which server-side measures this server offers, and why not


@dataclass(frozen=True)
class StandbyInfo:
    """One standby a run measures."""

    dsn: str
    name: str  # how the report and the detail column name it: "embedded standby", "standby 2"
    embedded: bool = False
    synchronous: bool = False
    settings: tuple[tuple[str, str], ...] = ()  # (name, value) of db/standby.py's STANDBY_SETTINGS, as it runs them

    @property
    def public_dsn(self) -> str:
        return "(pgstress's own, removed after the run)" if self.embedded else redact_dsn(self.dsn)
