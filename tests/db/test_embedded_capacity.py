"""The embedded server admits what the run holds: the seed's own `--mode async --async-concurrency 100` used to
fail every level with "too many clients", PostgreSQL's default max_connections (100) being taken by the pool."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import read_csv

from pgstress.db.server import (
    DEFAULT_MAX_CONNECTIONS,
    EMBEDDED_MAX_DATA_CONNECTIONS,
    OWN_CONNECTIONS,
    embedded_settings,
)
from pgstress.target import LIBPQ_VARIABLES


def test_max_connections_leaves_room_beside_the_pool_up_to_a_cap() -> None:
    assert embedded_settings(1)["max_connections"] == str(DEFAULT_MAX_CONNECTIONS)  # never below the default
    assert embedded_settings(100)["max_connections"] == str(100 + OWN_CONNECTIONS)
    assert embedded_settings(100)["shared_preload_libraries"] == "pg_stat_statements"
    capped = str(EMBEDDED_MAX_DATA_CONNECTIONS + OWN_CONNECTIONS)  # a larger C: the server says no, not this machine
    assert embedded_settings(100_000)["max_connections"] == capped


def test_a_pool_of_100_runs_on_the_embedded_server(run_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PG_DSN", raising=False)
    for name in LIBPQ_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    result = run_cli("--mode", "async", "--async-concurrency", "100", "--start-epochs", "100", "--end-epochs", "100",
                     "--memory-trace", "off")
    assert result.code == 0, result.err
    [row] = read_csv(tmp_path / "async_fanout_results.csv")
    assert (row["status"], row["writes_ok"], row["reads_ok"]) == ("OK", "100", "100"), row
    report = (tmp_path / "report.md").read_text()
    assert "embedded throwaway server" in report and f"- `max_connections`: {100 + OWN_CONNECTIONS}" in report
