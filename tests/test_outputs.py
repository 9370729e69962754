"""What a run writes keeps its shape in both modes (CSV header, the report's sections), and an output is one
class behind one interface plus one registration line."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import RampMode, csv_header, read_csv, section_titles

from pgstress import session
from pgstress.output.base import Output, RampPlan, RampResult, RunContext, RunResult
from pgstress.rows import Row

SERVER_HEADER = [  # both modes end with the payload column's settings and what the server paid
    "toast_compression", "storage", "wal_mb", "heap_mb", "toast_mb", "stored_compression", "server_write_ms",
    "server_read_ms", "io_written_mb", "io_extended_mb", "io_fsyncs", "checkpoints", "other_sessions",
]  # fmt: skip
SYNC_HEADER = [
    "iter", "epochs", "status", "write_s", "read_s", "total_s", "eps", "client_payload_mb", "db_payload_mb",
    "db_row_mb", "write_peak_mb", "read_peak_mb", "write_rss_delta_mb", "read_rss_delta_mb", "error", "rep",
    "format", "gen_s", "encode_s", "insert_s", "select_s", "decode_s", "verify_s", "write_rss_peak_mb",
    "read_rss_peak_mb", *SERVER_HEADER, "db_table_mb", "zstd_level",
]  # fmt: skip
ASYNC_HEADER = [
    "iter", "concurrency", "epochs", "status", "write_s", "read_s", "write_rps", "read_rps", "writes_ok",
    "writes_total", "reads_ok", "reads_total", "payload_total_mb", "payload_per_record_mb", "db_table_mb",
    "write_peak_mb", "read_peak_mb", "write_rss_delta_mb", "read_rss_delta_mb", "error", "rep", "format",
    "write_eps", "read_eps", "write_p50_ms", "write_p95_ms", "write_p99_ms", "write_max_ms", "read_p50_ms",
    "read_p95_ms", "read_p99_ms", "read_max_ms", "failures", "db_payload_per_record_mb", "write_latency_sum_s",
    "read_latency_sum_s", "write_cpu_s", "write_encode_busy_s", "write_db_only_s", "read_cpu_s",
    "read_decode_busy_s", "read_db_only_s", "verify_s", "write_rss_peak_mb", "read_rss_peak_mb",
    "estimated_client_mb", "measured_client_mb", "insert_s", "select_s", *SERVER_HEADER, "zstd_level",
]  # fmt: skip
# The answer first (the points, the conclusion), then the tables, then the run's context, the method last.
ANSWER = ["# PostgreSQL huge-payload stress test report",
          "## Breaking point, stability point, optimal efficiency point", "## Final conclusion",
          "## Complete comparison table"]
CONTEXT = ["## Charts", "## Run metadata", "## Configuration", "## Server",
           "## Appendix: how the figures were obtained"]
SECTIONS = {
    "sync": [*ANSWER, "### Where the time and memory went", "### What PostgreSQL paid (server side)", *CONTEXT],
    "async": [*ANSWER, "### Async fan-out table (2 concurrent records per level)",
              "### Where the time and memory went", "### What PostgreSQL paid (server side)",
              "### Per-record latency (ms, successful records)", "### Client CPU vs database wait", *CONTEXT],
}
HEADERS = {"sync": SYNC_HEADER, "async": ASYNC_HEADER}
UNUSED_OPTIONS = {"sync": ["--async-concurrency", "--async-results-csv", "--max-client-memory-mb"],
                  "async": ["--results-csv"]}


def test_each_mode_keeps_its_csv_header_and_report_sections(server_dsn: str, db, table_name: str,
                                                             ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--start-epochs", "1000",
                     "--end-epochs", "2000", "--step-epochs", "1000", charts=True)
    assert result.code == 0, result.err
    csv_path = ramp_mode.csv_path(tmp_path)
    assert csv_header(csv_path) == HEADERS[ramp_mode.name]
    assert [row["status"] for row in read_csv(csv_path)] == ["OK", "OK"]
    report = (tmp_path / "report.md").read_text()
    assert section_titles(report) == SECTIONS[ramp_mode.name]
    for option in UNUSED_OPTIONS[ramp_mode.name]:  # the configuration lists only what this mode reads
        assert f"| `{option}` |" not in report
    assert "| `--report-md` |" in report


class CountingOutput(Output):
    """A test-only output: it counts what the session hands it."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.rows: list[Row] = []

    def begin(self, context: RunContext) -> None:
        self.calls.append("begin")

    def ramp_started(self, plan: RampPlan) -> None:
        self.calls.append(f"ramp {plan.config.payload_format}")

    def row(self, plan: RampPlan, row: Row) -> None:
        self.rows.append(row)

    def ramp_ended(self, ramp: RampResult) -> None:
        self.calls.append(f"ended with {len(ramp.rows)} rows")

    def finish(self, result: RunResult) -> None:
        self.calls.append(f"finish: {len(result.files)} files before me")

    def close(self) -> None:
        self.calls.append("close")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_new_output_is_one_registration_line(server_dsn: str, db, table_name: str, run_cli,
                                               monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    counting = CountingOutput()
    monkeypatch.setattr(session, "OUTPUTS", (*session.OUTPUTS, lambda config, mode, resuming: counting))
    result = run_cli("--mode", mode, "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                     "--start-epochs", "500", "--end-epochs", "1500", "--step-epochs", "500", "--quiet")
    assert result.code == 0, result.err
    # the CSV, its run record and the report were written before it finished (charts are off in these tests)
    assert counting.calls == ["begin", "ramp bson", "ended with 3 rows", "finish: 3 files before me", "close"]
    assert [(row.iter, row.epochs, row.status) for row in counting.rows] == [(1, 500, "OK"), (2, 1000, "OK"),
                                                                              (3, 1500, "OK")]
