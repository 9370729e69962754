"""`--payload-format all`: one ramp per format on its own table, one CSV, one comparison report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import RampMode, count_rows, csv_header, read_chart_data, read_csv, table_after

from pgstress.config import RunConfig
from pgstress.db.schema import TableSql, prepare_table
from pgstress.host import collect_host
from pgstress.output.base import RampPlan, RampResult, RunContext, RunResult
from pgstress.output.comparison import NOT_RUN, compared_levels, recommendation, render_comparison
from pgstress.output.markdown import SYNC_REPORT
from pgstress.rows import AsyncRow, Row, SyncRow
from pgstress.run.ramp import RampOutcome
from pgstress.session import ramp_configs
from pgstress.target import ServerDetails, ServerInfo
from pgstress.workload.epochs import FLOAT_KEYS

FORMATS = ("bson", "jsonb", "ndjson_zstd", "pgarrays")
RAMP = ("--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000")


@pytest.fixture
def format_tables(db: psycopg.Connection, table_name: str) -> Iterator[dict[str, str]]:
    tables = {name: f"{table_name}_{name}" for name in FORMATS}
    yield tables
    for table in tables.values():
        db.execute(f'DROP TABLE IF EXISTS "{table}"')


def assert_array_columns(db: psycopg.Connection, table: str) -> None:
    """pgarrays' table: one array column per key of the default shape, no `payload` column."""
    found = db.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid ="
                       " to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                       [f'"{table}"']).fetchall()
    assert found == [("id", "bigint"), ("id_epoch", "integer[]"), ("known_data", "boolean[]"),
                     ("cycle_count", "integer[]"), *((name, "double precision[]") for name in FLOAT_KEYS),
                     ("time_to_MFE(median)", "integer[]"), ("time_to_MAE(median)", "integer[]"),
                     ("epochs", "integer"), ("content_hash", "text"), ("created_at", "timestamp with time zone")]


def expected_cell(row: dict[str, str] | None, field: str, digits: int) -> str:
    if row is None:
        return NOT_RUN
    if row["status"] != "OK":
        return row["status"]
    return f"{float(row[field]):,.{digits}f}" if row[field] else NOT_RUN


def test_all_formats_run_one_after_another_and_are_compared_from_the_numbers(
        run_cli, server_dsn, db, format_tables, table_name, tmp_path: Path) -> None:
    # jsonb's table refuses records above 2,000 epochs: a real failure, so the comparison has a break in it
    prepare_table(db, TableSql(format_tables["jsonb"], "JSONB"), drop=True, truncate=False)
    db.execute(f'ALTER TABLE "{format_tables["jsonb"]}" ADD CONSTRAINT small_only CHECK (epochs <= 2000)')

    result = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", "all", *RAMP, charts=True)
    assert result.code == 0, result.err

    csv_rows = read_csv(tmp_path / "iteration_results.csv")
    assert [(r["format"], r["iter"], r["epochs"]) for r in csv_rows] == [
        (name, str(i), str(i * 1000)) for name in FORMATS for i in (1, 2, 3)]
    assert [r["status"] for r in csv_rows if r["format"] == "jsonb"] == ["OK", "OK", "ERROR"]
    assert all(r["status"] == "OK" for r in csv_rows if r["format"] != "jsonb")
    kinds = dict(db.execute("SELECT c.relname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c"
                            " ON c.oid = a.attrelid WHERE c.relname = ANY(%s) AND a.attname = 'payload'",
                            [list(format_tables.values())]).fetchall())
    assert kinds == {format_tables["bson"]: "bytea", format_tables["jsonb"]: "jsonb",
                     format_tables["ndjson_zstd"]: "bytea"}
    assert_array_columns(db, format_tables["pgarrays"])
    assert count_rows(db, format_tables["bson"]) == 1  # truncated between iterations, last record kept
    by_key = {(r["format"], int(r["epochs"])): r for r in csv_rows}

    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# PostgreSQL huge-payload stress test report: payload formats compared")
    for metric in SYNC_REPORT.compared:
        # a measure this server cannot give, or an optional group's this run did not ask for, is left out
        if not any(row.get(metric.field) for row in csv_rows):
            assert f"### {metric.title}" not in text
            continue
        table = table_after(text, f"### {metric.title}")
        assert table[0] == ["epochs", *FORMATS]
        assert [row[0] for row in table[1:]] == ["1,000", "2,000", "3,000"]
        for row in table[1:]:
            epochs = int(row[0].replace(",", ""))
            assert row[1:] == [expected_cell(by_key.get((name, epochs)), metric.field, metric.digits)
                               for name in FORMATS], metric.field

    points = {row[0]: row[1:] for row in table_after(text, "## Breaking point, stability point, optimal"
                                                           " efficiency point of each format")[1:]}
    for name in FORMATS:
        ok = [r for r in csv_rows if r["format"] == name and r["status"] == "OK"]
        best = max(ok, key=lambda r: float(r["eps"]))
        assert points[name][0] == "3 of 3"
        assert points[name][3] == f"{int(best['epochs']):,} epochs, {float(best['eps']):,.0f} epochs/s"
    assert points["jsonb"][1:3] == ["3,000 epochs (iteration 3, ERROR)", "2,000 epochs"]
    assert points["bson"][1:3] == points["ndjson_zstd"][1:3] == points["pgarrays"][1:3] == [
        "none reached", "3,000 epochs"]

    at_2000 = {name: by_key[(name, 2000)] for name in FORMATS}
    smallest = min(FORMATS, key=lambda name: float(at_2000[name]["db_payload_mb"]))
    seconds = {name: float(by_key[(name, 1000)]["total_s"]) + float(by_key[(name, 2000)]["total_s"])
               for name in FORMATS}  # speed over the sizes every format completed
    fastest = min(FORMATS, key=seconds.__getitem__)
    advice = text[text.index("## Recommendation"):text.index("### Each format on its own")]
    assert "Sizes compared at 2,000 epochs" in advice and "speed over all 2 sizes" in advice
    assert f"**smallest on disk: {smallest}**, {float(at_2000[smallest]['db_payload_mb']):,.2f} MiB" in advice
    assert f"**fastest: {fastest}**, {seconds[fastest]:,.2f} s to write and read" in advice
    assert f"{3000 / seconds[fastest]:,.0f} epochs/s against" in advice
    assert "**largest size that works: bson, ndjson_zstd and pgarrays**" in advice
    assert "jsonb broke at 3,000 epochs (ERROR)" in advice
    for name, table in format_tables.items():
        assert f"- Table `{table}` total size at the end" in text, name

    eps = read_chart_data(tmp_path / "report_eps.png")
    assert {label: [e for e, _ in pts] for label, pts in eps["lines"].items()} == {
        "bson": [1000, 2000, 3000], "jsonb": [1000, 2000], "ndjson_zstd": [1000, 2000, 3000],
        "pgarrays": [1000, 2000, 3000]}
    assert eps["failures"] == {"jsonb": [3000]} and eps["breaking"] == {"jsonb": 3000}
    assert "](report_eps.png)" in text

    out = result.out.splitlines()
    assert [line for line in out if line.startswith("pgstress: format ")] == [
        f"pgstress: format {i} of 4: sync ramp, {name} into {format_tables[name]}, against "
        + out[0].split(", against ")[1].split(": 3 iterations")[0] + ": 3 iterations"
        for i, name in enumerate(FORMATS, 1)]
    summary = out[out.index("bson:"):]
    assert summary[:2] == ["bson:", "  breaking point: none reached"]
    assert summary[4:6] == ["jsonb:", summary[5]] and summary[5].startswith(
        "  breaking point: iteration 3 (3,000 epochs, ERROR) - CheckViolation")
    assert [line.split(" epochs ")[0] for line in out if " epochs " in line and "[" in line][:4] == [
        "bson [1/3] 1,000", "bson [2/3] 2,000", "bson [3/3] 3,000", "jsonb [1/3] 1,000"]


def test_async_all_formats_writes_a_table_each_one_csv_and_one_report(
        run_cli, server_dsn, db, format_tables, table_name, tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--mode", "async", "--async-concurrency", "2",
                     "--payload-format", "all", "--start-epochs", "1000", "--end-epochs", "2000",
                     "--step-epochs", "1000", "--memory-trace", "off")
    assert result.code == 0, result.err
    assert not (tmp_path / "iteration_results.csv").exists()
    csv_path = tmp_path / "async_fanout_results.csv"
    assert csv_header(csv_path) == list(AsyncRow.COLUMNS)
    rows = read_csv(csv_path)
    assert [(r["format"], r["iter"], r["epochs"], r["concurrency"], r["status"], r["writes_ok"], r["reads_ok"])
            for r in rows] == [(name, str(i), str(i * 1000), "2", "OK", "2", "2") for name in FORMATS for i in (1, 2)]
    kinds = dict(db.execute("SELECT c.relname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c"
                            " ON c.oid = a.attrelid WHERE c.relname = ANY(%s) AND a.attname = 'payload'",
                            [list(format_tables.values())]).fetchall())
    assert kinds == {format_tables["bson"]: "bytea", format_tables["jsonb"]: "jsonb",
                     format_tables["ndjson_zstd"]: "bytea"}
    assert_array_columns(db, format_tables["pgarrays"])
    assert all(count_rows(db, table) == 2 for table in format_tables.values())  # each its last level's 2 records

    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# PostgreSQL huge-payload stress test report: payload formats compared")
    write_eps = table_after(text, "### Write throughput summed over the C records, epochs per second")
    assert write_eps[0] == ["epochs", *FORMATS]
    by_key = {(r["format"], r["epochs"]): r for r in rows}
    assert write_eps[1:] == [[f"{epochs:,}", *(f"{float(by_key[(name, str(epochs))]['write_eps']):,.0f}"
                                                for name in FORMATS)] for epochs in (1000, 2000)]
    # the fastest format: the epochs all its write batches stored over their time, from the CSV's own numbers
    speed = {name: 3000 * 2 / sum(float(by_key[(name, str(e))]["write_s"]) for e in (1000, 2000)) for name in FORMATS}
    fastest = max(speed, key=speed.__getitem__)
    seconds = sum(float(by_key[(fastest, str(e))]["write_s"]) for e in (1000, 2000))
    assert (f"**fastest: {fastest}**, {seconds:,.2f} s to write the C records of each of the 2 sizes,"
            f" {speed[fastest]:,.0f} epochs/s against") in text
    assert "### Async fan-out table" not in text  # the comparison's own full table, with a format column
    assert "| format | iter | C | epochs | status |" in text


def test_resume_continues_an_interrupted_all_run(ramp_mode: RampMode, run_cli, hooks, server_dsn, db, format_tables,
                                                 table_name, tmp_path: Path) -> None:
    seen = []

    def jsonbs_second_level() -> None:
        seen.append(2)
        if len(seen) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the run

    argv = [*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "all",
            "--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs", "1000", "--memory-trace", "off"]
    hooks.before[2] = jsonbs_second_level
    first = run_cli(*argv)
    hooks.before.clear()
    assert first.code == 130, first.err
    csv_path = ramp_mode.csv_path(tmp_path)
    assert [(r["format"], r["iter"]) for r in read_csv(csv_path)] == [("bson", "1"), ("bson", "2"), ("jsonb", "1")]
    earlier = csv_path.read_bytes()

    resumed = run_cli(*argv, "--resume")
    assert resumed.code == 0, resumed.err
    assert csv_path.read_bytes().startswith(earlier)  # the earlier rows untouched, the rest appended
    rows = read_csv(csv_path)
    assert [(r["format"], r["iter"], r["epochs"]) for r in rows] == [
        (name, str(i), str(i * 1000)) for name in FORMATS for i in (1, 2)]
    for row in rows:
        ramp_mode.assert_intact_ok(row)
    lines = resumed.out.splitlines()
    assert not [line for line in lines if line.startswith("bson [")]  # bson's ramp had ended: not run again
    assert [line.split(" epochs ")[0] for line in lines
            if line.startswith(("jsonb [", "ndjson_zstd [", "pgarrays ["))] == [
        f"jsonb {ramp_mode.progress(2, 2, 2000, 'OK').split(' epochs ')[0]}",
        *(f"{name} {ramp_mode.progress(i, 2, i * 1000, 'OK').split(' epochs ')[0]}"
          for name in ("ndjson_zstd", "pgarrays") for i in (1, 2))]
    text = (tmp_path / "report.md").read_text()
    assert "INTERRUPTED" not in text
    points = table_after(text, "## Breaking point, stability point, optimal efficiency point of each format")
    assert [row[:2] for row in points[1:]] == [[name, "2 of 2"] for name in FORMATS]


def test_a_table_name_without_room_for_the_format_suffix_is_refused(run_cli, tmp_path: Path) -> None:
    result = run_cli("--table", "t" * 55, "--payload-format", "all", *RAMP)
    assert result.code == 2
    assert "argument --table:" in result.err and "at most 51 characters" in result.err
    assert list(tmp_path.iterdir()) == []


# --- pure logic ----------------------------------------------------------------------------------------------

def ramp_of(name: str, rows: list[Row], interrupted: bool = False) -> RampResult:
    config = RunConfig(payload_format=name, table=f"t_{name}")
    return RampResult(RampPlan(config, name, name), RampOutcome(rows=rows, planned_levels=3, interrupted=interrupted),
                      table_bytes=8192)


def ok(epochs: int, eps: float, db_mb: float, peak: float) -> SyncRow:
    return SyncRow(iter=epochs // 1000, epochs=epochs, status="OK", total_s=epochs / eps, eps=eps,
                   db_payload_mb=db_mb, write_peak_mb=peak, read_peak_mb=peak / 2)


def test_compared_levels_are_evenly_spaced_and_keep_each_break() -> None:
    rows = [ok(e, 1, 1, 1) for e in range(1000, 101_000, 1000)]
    broken = [*rows[:37], SyncRow(iter=38, epochs=38_000, status="DB_LIMIT")]
    levels = compared_levels([ramp_of("a", rows), ramp_of("b", broken)], limit=12)
    assert levels[0] == 1000 and levels[-1] == 100_000
    assert 38_000 in levels  # not one of the evenly spaced sizes (1,000 + 9,000 k)
    assert len(levels) == 13


def test_recommendation_picks_each_winner_from_the_numbers() -> None:
    runs = [
        ramp_of("bson", [ok(1000, 500, 0.2, 9.0), ok(2000, 600, 0.4, 18.0)]),
        ramp_of("jsonb", [ok(1000, 300, 0.3, 5.0), ok(2000, 350, 0.6, 10.0)]),
        ramp_of("ndjson_zstd", [ok(1000, 900, 0.25, 7.0), ok(2000, 950, 0.5, 14.0)]),
    ]
    lines = recommendation(runs, SYNC_REPORT)
    text = "\n".join(lines)
    assert "Sizes compared at 2,000 epochs" in text
    assert "- **smallest on disk: bson**, 0.40 MiB per record (210 bytes per epoch) against 0.50 MiB" \
           " (ndjson_zstd), 0.60 MiB (jsonb)." in lines
    speed = {name: 3000 / (1000 / a + 2000 / b) for name, a, b in (("bson", 500, 600), ("jsonb", 300, 350),
                                                                     ("ndjson_zstd", 900, 950))}
    assert f"- **fastest: ndjson_zstd**, {1000 / 900 + 2000 / 950:,.2f} s to write and read one record of each of" \
           f" the 2 sizes, {speed['ndjson_zstd']:,.0f} epochs/s against {speed['bson']:,.0f} epochs/s (bson)," \
           f" {speed['jsonb']:,.0f} epochs/s (jsonb)." in lines
    assert any(line.startswith("- **lowest client memory: jsonb**, 10.0 MiB tracemalloc peak") for line in lines)
    assert "no format broke; all worked up to 2,000 epochs" in text
    assert "No format wins outright" in text


def test_a_speed_lead_within_the_noise_is_not_called_a_win() -> None:
    runs = [ramp_of("bson", [ok(1000, 1000, 0.2, 9.0)]), ramp_of("jsonb", [ok(1000, 950, 0.3, 10.0)])]
    text = "\n".join(recommendation(runs, SYNC_REPORT))
    assert "**fastest: bson**" in text and "only 5 % ahead of the next, within one run's noise" in text
    assert "On these numbers **bson** is the format to choose: smallest on disk, lowest memory." in text


def test_one_configuration_per_format_each_on_its_own_table() -> None:
    configs = ramp_configs(RunConfig(payload_format="all", table="cmp"))
    assert [(c.payload_format, c.table) for c in configs] == [
        ("bson", "cmp_bson"), ("jsonb", "cmp_jsonb"), ("ndjson_zstd", "cmp_ndjson_zstd"), ("pgarrays", "cmp_pgarrays")]
    one = RunConfig(payload_format="bson", table="one")
    assert ramp_configs(one) == [one]


def test_an_interrupted_format_is_the_last_and_the_report_says_so() -> None:
    config = RunConfig(payload_format="all", table="cmp")
    context = RunContext(config, collect_host(), ServerInfo("", "--dsn", False), ServerDetails())
    ramps = [ramp_of("bson", [ok(1000, 500, 0.2, 9.0)]),
             ramp_of("jsonb", [ok(1000, 500, 0.2, 9.0)], interrupted=True)]
    text = render_comparison(RunResult(context, ramps), SYNC_REPORT, planned_ramps=3)
    assert "> **INTERRUPTED** (Ctrl-C) during format 2 of 3; this report covers what finished." in text
    assert "| ndjson_zstd |" not in text
