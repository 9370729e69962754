"""The report's server section: the settings that shape the result, as the server reports them."""

from __future__ import annotations

from pathlib import Path

from pgstress.redaction import redact_dsn

SETTINGS = ("shared_buffers", "default_toast_compression", "wal_level", "synchronous_commit", "max_wal_size",
            "work_mem")


def test_server_section_names_version_kind_settings_compression_and_final_size(run_cli, server_dsn, db, table_name,
                                                                               tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--quiet", "--no-charts", "--payload-format", "bson",
                     "--statement-timeout-ms", "60000",
                     "--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs", "1000")
    assert result.code == 0, result.err
    text = (tmp_path / "report.md").read_text()
    server = text[text.index("## Server"):text.index("## ", text.index("## Server") + 1)]
    version = db.execute("SELECT version()").fetchone()[0]
    assert f"- Version: {version}\n" in server
    assert "- Kind: user-provided server\n" in server
    for name in SETTINGS:
        value = db.execute("SELECT current_setting(%s)", [name]).fetchone()[0]
        assert f"- `{name}`: {value}\n" in server, name
    default_timeout = db.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'").fetchone()[0]
    assert (f"- `statement_timeout`: {default_timeout} (server default; this run's sessions set 60000 ms from"
            " --statement-timeout-ms, 0 = none)") in server
    toast = db.execute("SELECT current_setting('default_toast_compression')").fetchone()[0]
    assert (f"- `payload` column: compression default (follows default_toast_compression = {toast}),"
            " storage extended\n") in server
    size = db.execute("SELECT pg_total_relation_size(%s)", [f'"{table_name}"']).fetchone()[0]
    assert f"- Table `{table_name}` total size at the end (pg_total_relation_size): {size / 1048576:,.2f} MiB" in server
    assert f"Connection: --dsn → `{redact_dsn(server_dsn)}`" in text
