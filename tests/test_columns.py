"""One rule for optional columns: a group of columns that belongs to an opt-in feature is in the CSV (and the JSON
record's rows) only when the run uses it, after the columns every run writes; --resume and compare read a CSV with
or without each group."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from helpers import TINY_RAMP, install_hooks, read_csv

from pgstress import cli
from pgstress.cli import parse_config
from pgstress.columns import GROUPS, csv_columns, every_column, groups_in
from pgstress.output.run_record import ramp_identity, recorded_identity, run_record_path, server_identity
from pgstress.rows import ACCESS_COLUMNS, LAYOUT_COLUMNS, STANDBY_COLUMNS, AsyncRow, SyncRow


@pytest.mark.parametrize("row_type", [SyncRow, AsyncRow], ids=["sync", "async"])
def test_each_group_is_there_only_when_the_run_uses_its_feature(row_type: type[SyncRow]) -> None:
    def columns(*options: str) -> tuple[str, ...]:
        return csv_columns(row_type, parse_config(["--dsn", "host=nowhere", *options]))

    assert columns() == row_type.COLUMNS  # the default run: the columns every run writes, nothing else
    assert not set(ACCESS_COLUMNS + STANDBY_COLUMNS) & set(row_type.COLUMNS)
    assert columns("--access", "full") == row_type.COLUMNS
    assert columns("--access", "range") == (*row_type.COLUMNS, *ACCESS_COLUMNS)
    assert columns("--standby-dsn", "host=/s") == (*row_type.COLUMNS, *STANDBY_COLUMNS)
    assert columns("--layout", "chunked") == columns("--layout", "all") == (*row_type.COLUMNS, *LAYOUT_COLUMNS)
    both = columns("--access", "metric", "--standby-dsn", "host=/s")
    assert both == (*row_type.COLUMNS, *ACCESS_COLUMNS, *STANDBY_COLUMNS)
    every = columns("--access", "metric", "--layout", "all", "--standby-dsn", "host=/s")
    assert every == (*row_type.COLUMNS, *ACCESS_COLUMNS, *LAYOUT_COLUMNS, *STANDBY_COLUMNS) == every_column(row_type)


def test_a_header_is_read_with_any_of_the_groups_in_their_order_and_nothing_else() -> None:
    base = SyncRow.COLUMNS
    assert groups_in(SyncRow, base) == []
    assert groups_in(SyncRow, (*base, *STANDBY_COLUMNS)) == [GROUPS[2]]
    assert groups_in(SyncRow, (*base, *LAYOUT_COLUMNS, *STANDBY_COLUMNS)) == [GROUPS[1], GROUPS[2]]
    assert groups_in(SyncRow, (*base, *ACCESS_COLUMNS)) == [GROUPS[0]]
    assert groups_in(SyncRow, every_column(SyncRow)) == list(GROUPS)
    assert groups_in(SyncRow, (*base, *STANDBY_COLUMNS, *ACCESS_COLUMNS)) is None  # out of their order
    assert groups_in(SyncRow, (*base, *ACCESS_COLUMNS[:3])) is None  # part of a group
    assert groups_in(SyncRow, (*base, "extra")) is None
    assert groups_in(SyncRow, base[:-1]) is None


def _with_empty_columns(path: Path, names: tuple[str, ...]) -> None:
    """The CSV rewritten as a run that also had `names` would have written it, those cells empty (an earlier
    pgstress wrote the access columns, empty, in every run)."""
    lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*lines[0], *names])
    for cells in lines[1:]:
        writer.writerow([*cells, *([""] * len(names))])
    path.write_text(out.getvalue(), encoding="utf-8", newline="")


def _interrupt() -> None:
    raise KeyboardInterrupt


def test_resume_continues_a_csv_with_a_group_the_run_does_not_use_in_that_csvs_columns(
        embedded_dsn: str, table_name: str, run_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    argv = ["--dsn", embedded_dsn, "--table", table_name, *TINY_RAMP]
    hooks = install_hooks(monkeypatch.setattr)
    hooks.before[3] = _interrupt
    assert run_cli(*argv).code == 130
    hooks.before.clear()
    path = tmp_path / "iteration_results.csv"
    _with_empty_columns(path, ACCESS_COLUMNS)

    result = run_cli(*argv, "--resume")

    assert result.code == 0, result.err
    rows = read_csv(path)
    assert [row["iter"] for row in rows] == ["1", "2", "3"]
    assert list(rows[2]) == [*SyncRow.COLUMNS, *ACCESS_COLUMNS]  # the appended row follows the CSV's header
    assert all(row[name] == "" for row in rows for name in ACCESS_COLUMNS) and float(rows[2]["write_s"]) > 0


def test_resume_refuses_a_csv_without_a_group_the_run_measures(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "iteration_results.csv"
    path.write_text(",".join(SyncRow.COLUMNS) + "\r\n", encoding="utf-8")
    run_record_path(path).write_text(json.dumps({"ramp": _identity("--access", "range")}), encoding="utf-8")
    before = path.read_bytes()

    result = run_cli("--dsn", "host=127.0.0.1 port=1", *TINY_RAMP, "--access", "range", "--resume")

    assert result.code == 2, result.err
    assert result.err.splitlines() == [f"pgstress: error: --resume: {path} has no access columns, which this run"
                                       " measures; refusing to continue it (run without --resume)"]
    assert path.read_bytes() == before


def _identity(*options: str) -> dict[str, object]:
    config = parse_config(["--dsn", "host=127.0.0.1 port=1", *TINY_RAMP, *options])
    return recorded_identity(ramp_identity(config, server_identity(config.dsn)))


def test_compare_reads_csvs_with_and_without_each_group(embedded_dsn: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.csv"
    assert cli.main(["--dsn", embedded_dsn, "--table", "columns_compare", "--drop-table", *TINY_RAMP, "--quiet",
                     "--no-charts", "--results-csv", str(plain), "--report-md", str(tmp_path / "r.md")]) == 0
    assert read_csv(plain)[0].keys() == set(SyncRow.COLUMNS)
    for name, groups in (("access", ACCESS_COLUMNS), ("standby", STANDBY_COLUMNS),
                         ("both", (*ACCESS_COLUMNS, *STANDBY_COLUMNS))):
        other = tmp_path / f"{name}.csv"
        other.write_bytes(plain.read_bytes())
        run_record_path(other).write_bytes(run_record_path(plain).read_bytes())
        _with_empty_columns(other, groups)
        capsys.readouterr()
        assert cli.main(["compare", str(plain), str(other), "--no-charts"]) == 0, capsys.readouterr().err
        assert "3 common size(s)" in capsys.readouterr().out
    backwards = tmp_path / "backwards.csv"
    backwards.write_bytes(plain.read_bytes())
    run_record_path(backwards).write_bytes(run_record_path(plain).read_bytes())
    _with_empty_columns(backwards, (*STANDBY_COLUMNS, *ACCESS_COLUMNS))
    assert cli.main(["compare", str(plain), str(backwards), "--no-charts"]) == 2
    assert "does not start with the header of this mode's CSV" in capsys.readouterr().err
