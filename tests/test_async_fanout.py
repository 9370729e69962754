"""The async fan-out ramp end to end on real servers: CSV columns and arithmetic, table contents, report."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgstress.epochs import generate
from pgstress.measure import StageClock
from pgstress.payloads import decode_and_verify, encode_epochs, format_names, get_codec
from pgstress.results import AsyncRow, column_names, read_rows

SPEC_HEADER = [
    "iter", "concurrency", "epochs", "status", "write_s", "read_s", "write_rps", "read_rps", "writes_ok",
    "writes_total", "reads_ok", "reads_total", "payload_total_mb", "payload_per_record_mb", "db_table_mb",
    "write_peak_mb", "read_peak_mb", "write_rss_delta_mb", "read_rss_delta_mb", "error",
]  # fmt: skip
LATENCIES = [f"{phase}_{name}_ms" for phase in ("write", "read") for name in ("p50", "p95", "p99", "max")]
RAMP = ["--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000"]
C = 8


@pytest.mark.parametrize("payload_format", format_names())
def test_eight_records_per_level_written_read_and_verified(
    payload_format: str, server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", str(C), "--table", table_name,
                     "--payload-format", payload_format, *RAMP)  # fmt: skip
    assert result.code == 0, result.err
    assert not (tmp_path / "iteration_results.csv").exists()  # async mode writes only its own CSV

    csv_path = tmp_path / "async_fanout_results.csv"
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[: len(SPEC_HEADER)] == SPEC_HEADER
    assert header == column_names(AsyncRow)
    assert set(LATENCIES) <= set(header) and "write_eps" in header

    rows = read_rows(csv_path)
    assert [(r["iter"], r["concurrency"], r["epochs"], r["status"]) for r in rows] == [
        ("1", "8", "1000", "OK"), ("2", "8", "2000", "OK"), ("3", "8", "3000", "OK"),
    ]  # fmt: skip
    for r in rows:
        assert r["format"] == payload_format and r["error"] == "" and r["failures"] == ""
        assert int(r["writes_ok"]) == int(r["writes_total"]) == int(r["reads_ok"]) == int(r["reads_total"]) == C
        write_s, read_s = float(r["write_s"]), float(r["read_s"])
        assert write_s > 0 and read_s > 0
        assert float(r["write_rps"]) == C / write_s
        assert float(r["read_rps"]) == C / read_s
        assert float(r["write_eps"]) == int(r["epochs"]) * C / write_s
        assert float(r["payload_total_mb"]) == pytest.approx(C * float(r["payload_per_record_mb"]), rel=1e-12)
        assert float(r["payload_per_record_mb"]) > 0
        assert float(r["db_table_mb"]) > 0
        assert float(r["db_payload_per_record_mb"]) > 0
        assert float(r["write_peak_mb"]) > 0 and float(r["read_peak_mb"]) > 0
        p50, p95, p99, top = (float(r[f"write_{n}_ms"]) for n in ("p50", "p95", "p99", "max"))
        assert 0 < p50 <= p95 <= p99 <= top <= write_s * 1000
        p50, p95, p99, top = (float(r[f"read_{n}_ms"]) for n in ("p50", "p95", "p99", "max"))
        assert 0 < p50 <= p95 <= p99 <= top <= read_s * 1000
        assert 0 < float(r["write_encode_busy_s"]) <= write_s
        assert 0 <= float(r["write_db_only_s"]) <= write_s - float(r["write_encode_busy_s"]) + 1e-9
        assert float(r["write_cpu_s"]) > 0 and float(r["read_cpu_s"]) > 0
    ordered = [float(r["payload_per_record_mb"]) for r in rows]
    assert ordered == sorted(ordered)  # bigger records, bigger values

    # The table holds the last level's 8 records (truncated between levels), each exactly what the
    # seeded generator makes for (iteration 3, task i), and each decodes back to it.
    codec = get_codec(payload_format)
    expected = {}
    for index in range(C):
        payload = encode_epochs(codec, generate(3000, 42, (3, index)), StageClock())
        expected[payload.content_hash] = payload
    payload_sql = "convert_to(payload::text, 'UTF8')" if payload_format == "jsonb" else "payload"
    stored = db.execute(f'SELECT {payload_sql}, epochs, content_hash FROM "{table_name}"').fetchall()
    assert len(stored) == C
    assert {content_hash for _, _, content_hash in stored} == set(expected)
    for payload, epochs, content_hash in stored:
        assert epochs == 3000
        if payload_format != "jsonb":  # jsonb's own text is normalised; it must still decode to the same epochs
            assert bytes(payload) == bytes(expected[content_hash].data)  # stored byte for byte
        assert decode_and_verify(codec, payload, expected[content_hash], StageClock()) == 3000

    report = (tmp_path / "report.md").read_text()
    assert "mode `async`" in report
    assert "### Async fan-out table (8 concurrent records per level)" in report
    assert "| iter | C | epochs | status | write_s | read_s | write_rps | read_rps | writes ok/total |" in report
    assert "| 8/8 | 8/8 |" in report
    assert "### Per-record latency (ms, successful records)" in report
    assert "### Client CPU vs database wait" in report
    best = max(rows, key=lambda r: float(r["write_eps"]))
    assert f"- **Optimal efficiency point:** iteration {best['iter']}," in report
    assert f"write_eps {float(best['write_eps']):,.0f} epochs/s" in report
    assert "- **Breaking point:** none reached" in report
    assert "Each level wrote 8 records of the same size at once over 8 connections" in report
    assert "`write_s` = generate + encode + insert + commit" not in report  # the sync notes do not apply
    assert "optimal efficiency: " in result.out and "[3/3] 8 x 3,000 epochs OK writes 8/8 reads 8/8" in result.out


def test_keep_data_between_levels(server_dsn: str, db: psycopg.Connection, table_name: str, run_cli,
                                  tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", "3", "--table", table_name,
                     "--keep-data-between-iterations", "--memory-trace", "off", *RAMP)  # fmt: skip
    assert result.code == 0, result.err
    counts = db.execute(f'SELECT epochs, count(*) FROM "{table_name}" GROUP BY epochs ORDER BY epochs').fetchall()
    assert counts == [(1000, 3), (2000, 3), (3000, 3)]
    rows = read_rows(tmp_path / "async_fanout_results.csv")
    assert [r["status"] for r in rows] == ["OK"] * 3
    assert all(r["write_peak_mb"] == "" and r["read_peak_mb"] == "" for r in rows)  # --memory-trace off
    sizes = [float(r["db_table_mb"]) for r in rows]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_async_run_prints_a_line_per_level_and_draws_its_charts(
    server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    from pgstress.charts import read_chart_data

    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", "2", "--table", table_name,
                     "--start-epochs", "500", "--end-epochs", "1000", "--step-epochs", "500", charts=True)  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "async_fanout_results.csv")
    level_lines = [line for line in result.out.splitlines() if line.startswith("[")]
    assert [line.split(" epochs")[0] for line in level_lines] == ["[1/2] 2 x 500", "[2/2] 2 x 1,000"]
    assert all(" OK writes 2/2 reads 2/2 " in line for line in level_lines)

    report = (tmp_path / "report.md").read_text()
    expected = {
        "time": ("write_s", "read_s"), "eps": ("write_eps", "read_eps"), "rps": ("write_rps", "read_rps"),
        "write_latency": ("write_p50_ms", "write_p95_ms", "write_p99_ms", "write_max_ms"),
    }  # fmt: skip
    for name, columns in expected.items():
        path = tmp_path / f"report_{name}.png"
        assert path.name in report and path.name in result.out
        plotted = read_chart_data(path)["lines"]
        assert len(plotted) == len(columns)
        values = sorted(sorted(v for _, v in points) for points in plotted.values())
        assert values == sorted(sorted(float(r[c]) for r in rows) for c in columns)


@pytest.mark.parametrize("payload_format", format_names())
def test_copy_write_method_stores_the_same_records(
    payload_format: str, server_dsn: str, db: psycopg.Connection, table_name: str, tmp_path: Path, run_cli
) -> None:
    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", "3", "--table", table_name,
                     "--payload-format", payload_format, "--write-method", "copy", "--memory-trace", "off",
                     "--keep-data-between-iterations", "--start-epochs", "400", "--end-epochs", "800",
                     "--step-epochs", "400")  # fmt: skip
    assert result.code == 0, result.err
    rows = read_rows(tmp_path / "async_fanout_results.csv")
    assert [(r["status"], r["writes_ok"], r["reads_ok"]) for r in rows] == [("OK", "3", "3")] * 2
    assert "Write method `copy`" in (tmp_path / "report.md").read_text()

    codec = get_codec(payload_format)
    value = "payload::text" if payload_format == "jsonb" else "payload"
    stored = db.execute(f'SELECT id, {value}, epochs, content_hash FROM "{table_name}" ORDER BY id').fetchall()
    assert [row[0] for row in stored] == [1, 2, 3, 4, 5, 6]  # each COPY's id came back to its own task
    for _, data, epochs, content_hash in stored:
        assert epochs in (400, 800)
        raw = data.encode() if isinstance(data, str) else data
        assert decode_and_verify(codec, raw, (epochs, content_hash), StageClock()) == epochs
