"""A concurrency sweep (`--async-concurrency 1,3`): one ramp per C on its own table, one CSV with a row per
(C, size) in the single-C CSV's columns, a report that names the best C from the numbers and where each C
breaks, its chart; a C the server cannot serve, Ctrl-C in the middle and --resume; and every bad list refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import count_rows, csv_header, read_chart_data, read_csv

from pgstress.cli import parse_config
from pgstress.config import RunConfig
from pgstress.output.base import RampPlan, RampResult
from pgstress.output.run_record import run_record_path
from pgstress.output.sweep import SweepGroup, best_c_words, shared_sizes, sweep_groups
from pgstress.rows import AsyncRow
from pgstress.run.ramp import RampOutcome

RAMP = ("--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs", "1000", "--memory-trace", "off")


@pytest.fixture
def drops_its_tables(db: psycopg.Connection, table_name: str) -> Iterator[None]:
    yield
    found = db.execute("SELECT relname FROM pg_class WHERE relname LIKE %s AND relkind = 'r'",
                       [f"{table_name}_c%"]).fetchall()
    for (name,) in found:
        db.execute(f'DROP TABLE IF EXISTS "{name}"')


def write_eps_over(rows: list[dict[str, str]]) -> float:
    """What the report calls a C's write_eps over sizes: all the epochs its write batches stored over their time."""
    return sum(int(r["epochs"]) * int(r["writes_ok"]) for r in rows) / sum(float(r["write_s"]) for r in rows)


def test_a_sweep_writes_a_row_per_c_and_size_and_names_the_best_c(
        run_cli, server_dsn: str, db: psycopg.Connection, table_name: str, drops_its_tables: None,
        tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--mode", "async", "--async-concurrency", "1,3", "--table", table_name,
                     *RAMP, charts=True)
    assert result.code == 0, result.err

    csv_path = tmp_path / "async_fanout_results.csv"
    assert csv_header(csv_path) == list(AsyncRow.COLUMNS)  # the columns of a single C, unchanged
    rows = read_csv(csv_path)
    assert [(r["concurrency"], r["iter"], r["epochs"], r["status"], r["writes_ok"]) for r in rows] == [
        ("1", "1", "1000", "OK", "1"), ("1", "2", "2000", "OK", "1"),
        ("3", "1", "1000", "OK", "3"), ("3", "2", "2000", "OK", "3")]
    assert count_rows(db, f"{table_name}_c1") == 1 and count_rows(db, f"{table_name}_c3") == 3  # each C its table
    assert json.loads(run_record_path(csv_path).read_text())["ramp"]["async_concurrency"] == [1, 3]

    by_c = {c: [r for r in rows if r["concurrency"] == c] for c in ("1", "3")}
    eps = {c: write_eps_over(found) for c, found in by_c.items()}
    best, other = sorted(eps, key=eps.__getitem__, reverse=True)
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# PostgreSQL huge-payload stress test report: concurrency levels (a sweep over C)"
                           " compared")
    assert "| `--async-concurrency` | 1,3 |" in text
    answer = text[text.index("## Recommendation"):text.index("### Each concurrency on its own")]
    assert (f"- **Most epochs per second: C={best}**, {eps[best]:,.0f} epochs/s of write_eps over the 2 record sizes"
            f" every C completed (1,000 to 2,000 epochs), against {eps[other]:,.0f} epochs/s (C={other}).") in answer
    assert "- **Where it breaks:** no C broke; every C worked up to 2,000 epochs." in answer
    table = answer[answer.index("| epochs | C=1 | C=3 | best C |"):].split("\n\n")[0].splitlines()[2:]
    for line, epochs in zip(table, ("1000", "2000")):
        at = {c: float(next(r for r in found if r["epochs"] == epochs)["write_eps"]) for c, found in by_c.items()}
        winner = max(at, key=at.__getitem__)
        assert line == f"| {int(epochs):,} | {at['1']:,.0f} | {at['3']:,.0f} | C={winner} |"

    chart = read_chart_data(tmp_path / "report_sweep.png")
    assert chart["lines"] == {f"{int(epochs):,} epochs per record": [[int(c), float(r["write_eps"])] for c in ("1", "3")
                                                                      for r in by_c[c] if r["epochs"] == epochs]
                              for epochs in ("1000", "2000")}
    assert chart["breaking"] == {} and "](report_sweep.png)" in text
    headers = [line for line in result.out.splitlines() if line.startswith("pgstress: concurrency ")]
    assert [line.split(", ndjson_zstd")[0] for line in headers] == [
        "pgstress: concurrency 1 of 2: async fan-out ramp, 1 concurrent record per level",
        "pgstress: concurrency 2 of 2: async fan-out ramp, 3 concurrent records per level"]


def test_a_c_the_server_cannot_serve_is_where_the_sweep_breaks(
        run_cli, embedded_dsn: str, db: psycopg.Connection, table_name: str, drops_its_tables: None,
        tmp_path: Path) -> None:
    """The shared test server keeps PostgreSQL's default max_connections (100): a pool of 120 cannot open."""
    result = run_cli("--dsn", embedded_dsn, "--mode", "async", "--async-concurrency", "120,2", "--table", table_name,
                     *RAMP)
    assert result.code == 0, result.err
    rows = read_csv(tmp_path / "async_fanout_results.csv")
    assert [(r["concurrency"], r["iter"], r["status"]) for r in rows] == [
        ("120", "1", "ERROR"), ("2", "1", "OK"), ("2", "2", "OK")]
    refused = rows[0]
    assert "cannot open 120 asyncpg connections" in refused["error"] and "too many clients" in refused["error"]
    assert (refused["writes_total"], refused["write_s"]) == ("0", "")
    text = (tmp_path / "report.md").read_text()
    assert "- C=120 had no successful level." in text
    assert "- **Where it breaks:** C=120 broke at 1,000 epochs (ERROR: " in text
    assert "could not open its 120 connections, so it ran no level" in text


def test_ctrl_c_in_the_middle_of_a_sweep_then_resume(run_cli, hooks, server_dsn: str, db: psycopg.Connection,
                                                      table_name: str, drops_its_tables: None,
                                                      tmp_path: Path) -> None:
    seen = []

    def second_ramps_second_level() -> None:
        seen.append(2)
        if len(seen) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the run

    argv = ["--dsn", server_dsn, "--mode", "async", "--async-concurrency", "1,3", "--table", table_name, *RAMP]
    hooks.before[2] = second_ramps_second_level
    first = run_cli(*argv)
    hooks.before.clear()
    assert first.code == 130, first.err
    csv_path = tmp_path / "async_fanout_results.csv"
    assert [(r["concurrency"], r["iter"]) for r in read_csv(csv_path)] == [("1", "1"), ("1", "2"), ("3", "1")]
    assert "> **INTERRUPTED** (Ctrl-C) during concurrency 2 of 2" in (tmp_path / "report.md").read_text()
    earlier = csv_path.read_bytes()

    resumed = run_cli(*argv, "--resume")
    assert resumed.code == 0, resumed.err
    assert csv_path.read_bytes().startswith(earlier)
    assert [(r["concurrency"], r["iter"], r["status"]) for r in read_csv(csv_path)] == [
        ("1", "1", "OK"), ("1", "2", "OK"), ("3", "1", "OK"), ("3", "2", "OK")]
    assert "C=1 [" not in resumed.out and "C=3 [2/2] 3 x 2,000 epochs OK" in resumed.out  # C=1 is not run again
    text = (tmp_path / "report.md").read_text()
    assert "INTERRUPTED" not in text and "- **Most epochs per second: C=" in text


EMPTY = "has an empty value; give C, or several as 1,4,16"
BAD_LISTS = [("1,0", "0 must be >= 1"), ("1,,4", f"'1,,4' {EMPTY}"), ("4,", f"'4,' {EMPTY}"),
             ("4,1,4", "4 is given twice in '4,1,4'"), ("1,x", "'x' is not a whole number")]


@pytest.mark.parametrize(("value", "why"), BAD_LISTS, ids=[value for value, _ in BAD_LISTS])
def test_a_bad_list_is_one_line_naming_the_option(value: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_config(["--mode", "async", "--async-concurrency", value])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"pgstress: error: argument --async-concurrency: {why}\n"


def test_a_list_in_sync_mode_is_refused_and_nothing_is_touched(run_cli, server_dsn: str, db: psycopg.Connection,
                                                               table_name: str, tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--async-concurrency", "1,4", *RAMP)
    assert result.code == 2 and result.out == ""
    assert result.err == ("pgstress: error: argument --async-concurrency: a list (1,4) sweeps async mode's"
                          " concurrency; sync mode writes one record at a time (add --mode async)\n")
    assert list(tmp_path.iterdir()) == []
    assert db.execute("SELECT count(*) FROM pg_class WHERE relname LIKE %s", [f"{table_name}%"]).fetchone() == (0,)


def test_one_value_keeps_the_single_ramp() -> None:
    config = parse_config(["--mode", "async", "--async-concurrency", "4"])
    assert (config.async_concurrency, config.concurrency_sweep) == (4, ())
    assert parse_config(["--mode", "async", "--async-concurrency", "4,16"]).concurrency_sweep == (4, 16)


# --- the answer in words, from rows made here ------------------------------------------------------------------

def level(c: int, epochs: int, write_s: float, status: str = "OK") -> AsyncRow:
    ok = c if status == "OK" else 0
    return AsyncRow(iter=epochs // 1000, epochs=epochs, concurrency=c, status=status, write_s=write_s, writes_ok=ok,
                    writes_total=c, write_eps=epochs * ok / write_s, error="" if status == "OK" else "too big")


def ramp(c: int, *rows: AsyncRow) -> RampResult:
    config = RunConfig(mode="async", write_method="insert", async_concurrency=c)
    return RampResult(RampPlan(config, f"C={c}", f"C={c}"), RampOutcome(rows=list(rows), planned_levels=2))


def test_the_words_name_a_lead_within_noise_a_broken_c_and_a_c_never_run() -> None:
    runs = [ramp(1, level(1, 1000, 0.10), level(1, 2000, 0.20)),  # 10,000 epochs/s
            ramp(4, level(4, 1000, 0.38), level(4, 2000, 0.76, "DB_LIMIT"))]  # ~10,526 at the one size both did
    [group] = sweep_groups(runs)
    sizes = shared_sizes(group.runs)
    assert sizes == [1000]
    lines = best_c_words(group, sizes, noise_percent=10, planned=(1, 4, 16))
    assert lines == [
        "- C=16 did not run: the run was interrupted before.",
        "- **Most epochs per second: C=4**, 10,526 epochs/s of write_eps over the record size every C completed"
        " (1,000 epochs), against 10,000 epochs/s (C=1).",
        "- C=4 is only 5 % ahead of C=1, within one run's noise: either C stores about as fast here.",
        "- **Where it breaks:** C=4 broke at 2,000 epochs (DB_LIMIT: too big); C=1 did not break up to 2,000 epochs.",
    ]


def test_two_formats_with_the_same_figures_never_say_the_same_sentence() -> None:
    """A sweep of every format: each format's verdict names it, so equal figures (as under load) are no repeat."""
    def runs() -> list[RampResult]:
        return [ramp(1, level(1, 1000, 0.10)), ramp(4, level(4, 1000, 0.38)), ramp(8, level(8, 1000, 1.0, "DB_LIMIT"))]

    said = [line for name in ("bson", "jsonb") for line in
            best_c_words(SweepGroup(name, runs()), [1000], noise_percent=10)]
    assert len(said) == len(set(said)), said
    assert "- C=4 is only 5 % ahead of C=1 for jsonb, within one run's noise: either C stores about as fast here." \
        in said
    assert "- C=8 had no successful level for bson." in said
