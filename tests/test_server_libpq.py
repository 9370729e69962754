"""libpq conventions: with no --dsn and no PG_DSN, libpq's own PG* variables choose the server."""

from __future__ import annotations

from pathlib import Path

import psycopg.conninfo
import pytest

from pgstress.server import LIBPQ_VARIABLES, libpq_environment, resolve_dsn

SECRET = "n0t-the-real-pw-71"  # trust/peer auth ignores it; it must still never be printed
_KEYWORD_TO_VARIABLE = {"host": "PGHOST", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PG_DSN", raising=False)
    for name in LIBPQ_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_order_is_dsn_then_pg_dsn_then_libpq_variables_then_embedded(clean_env: pytest.MonkeyPatch) -> None:
    assert resolve_dsn(None) == (None, "embedded")
    clean_env.setenv("PGSERVICE", "mydb")
    assert resolve_dsn(None) == ("", "libpq environment")
    clean_env.setenv("PG_DSN", "host=elsewhere")
    assert resolve_dsn(None) == ("host=elsewhere", "PG_DSN")
    assert resolve_dsn("host=given") == ("host=given", "--dsn")


def test_the_password_variable_is_masked(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PGHOST", "/run/pg")
    clean_env.setenv("PGPASSWORD", SECRET)
    assert libpq_environment() == (("PGHOST", "/run/pg"), ("PGPASSWORD", "***"))


def test_a_run_connects_through_libpq_variables_and_says_so(run_cli, server_dsn, db, table_name,
                                                            clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    params = psycopg.conninfo.conninfo_to_dict(server_dsn)
    expected = []
    for keyword, variable in _KEYWORD_TO_VARIABLE.items():
        if params.get(keyword):
            clean_env.setenv(variable, str(params[keyword]))
            expected.append(f"{variable}={params[keyword]}")
    clean_env.setenv("PGPASSWORD", SECRET)
    order = {name: i for i, name in enumerate(LIBPQ_VARIABLES)}
    expected = sorted([*expected, "PGPASSWORD=***"], key=lambda item: order[item.split("=")[0]])

    result = run_cli("--table", table_name, "--quiet", "--no-charts",
                     "--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs", "1000")
    assert result.code == 0, result.err
    report = (tmp_path / "report.md").read_text()
    assert f"Connection: libpq environment variables ({', '.join(expected)}); no --dsn or PG_DSN given" in report
    assert "- Kind: user-provided server" in report
    assert db.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (1,)  # it wrote where libpq pointed
    for text in (result.out, result.err, report, (tmp_path / "iteration_results.csv").read_text()):
        assert SECRET not in text
