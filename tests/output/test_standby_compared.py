"""The standbys of compared ramps side by side: the comparison report of `--payload-format all` and of a sweep over C,
and `pgstress compare` of two runs, each measured on real runs with `--standby embedded`; the reading in words from
rows the test makes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, TINY_RAMP

from pgstress.output.standby_compared import BEHIND_MB, StandbyRamp, standby_comparison
from pgstress.rows import CONNECTION_LOST, OK, SyncRow
from pgstress.target import LIBPQ_VARIABLES
from pgstress.workload.payloads import format_names


def _pgstress(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """pgstress as the user runs it, with no DSN (so the embedded server and its standby), TMPDIR short for their
    sockets."""
    env = {k: v for k, v in os.environ.items() if k != "PG_DSN" and k not in LIBPQ_VARIABLES}
    env["TMPDIR"] = str(tmp)
    quiet = [] if args[0] == "compare" else ["--quiet"]
    return subprocess.run([sys.executable, "main.py", *args, "--no-charts", *quiet], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _section(report: str, heading: str) -> str:
    """The section under `heading`, up to the next heading of any level."""
    start = report.index(heading)
    rest = report[start + len(heading):]
    ends = [i for marker in ("\n## ", "\n### ", "\n#### ") if (i := rest.find(marker)) >= 0]
    return heading + rest[: min(ends, default=len(rest))]


def _table_rows(section: str) -> dict[str, list[str]]:
    """The section's table: each row's cells by its first cell."""
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


@pytest.fixture(scope="module")
def all_formats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of every format with the embedded standby, asynchronous then synchronous: CSV, report, JSON."""
    out = tmp_path_factory.mktemp("standby-all")
    for name, extra in (("a", []), ("b", ["--synchronous-standby"])):
        done = _pgstress("--payload-format", "all", "--standby", "embedded", *extra, *TINY_RAMP,
                         "--results-csv", str(out / f"{name}.csv"), "--report-md", str(out / f"{name}.md"),
                         "--export-json", str(out / f"{name}.json"), tmp=Path("/tmp"))
        assert done.returncode == 0, done.stderr
    return out


def _assert_measured(cells: list[str], kind: str) -> None:
    standby, wal, write, replay, read, lag, failures = cells
    assert standby == kind
    assert float(wal) > 0 and float(write) > 0 and float(read) > 0  # one run: single values, no range
    assert float(replay) >= 0 and float(lag) >= 0
    assert failures == "none"


def test_the_formats_compared_report_has_each_formats_standby_at_the_largest_size(all_formats: Path) -> None:
    report = (all_formats / "a.md").read_text()
    section = _section(report, "### What the standbys paid, format by format")
    rows = _table_rows(section)
    assert list(rows) == list(format_names())
    for cells in rows.values():
        _assert_measured(cells, "asynchronous")
    assert "At 3,000 epochs, the largest record every format's standby replayed and served, verified:" in section
    assert "Reading it back from the standby took" in section and "These are single measurements" in section
    # each format's own section is still there, and a run of one ramp has no comparison of standbys
    assert report.count("What the standbys paid") == 1


def test_compare_of_two_runs_sets_their_standbys_side_by_side_from_json_and_from_csv(all_formats: Path,
                                                                                      tmp_path: Path) -> None:
    for kind in ("json", "csv"):
        report = tmp_path / f"compare-{kind}.md"
        done = _pgstress("compare", str(all_formats / f"a.{kind}"), str(all_formats / f"b.{kind}"),
                         "--report-md", str(report), tmp=tmp_path)
        assert done.returncode == 0, done.stderr
        text = report.read_text()
        for key in ("bson default", "jsonb default", "ndjson_zstd default"):
            section = _section(text, f"## What the standbys paid, run by run ({key})")
            rows = _table_rows(section)
            assert list(rows) == [f"a.{kind}", f"b.{kind}"]
            _assert_measured(rows[f"a.{kind}"], "asynchronous")
            _assert_measured(rows[f"b.{kind}"], "synchronous")  # from a CSV too: its run record names the standby
            assert f"The standby of b.{kind} was synchronous (remote_apply)" in section


def test_a_sweep_over_c_has_each_cs_standby(tmp_path: Path) -> None:
    done = _pgstress("--mode", "async", "--async-concurrency", "1,2", "--standby", "embedded", *TINY_RAMP,
                     "--async-results-csv", str(tmp_path / "s.csv"), "--report-md", str(tmp_path / "s.md"),
                     tmp=Path("/tmp"))
    assert done.returncode == 0, done.stderr
    section = _section((tmp_path / "s.md").read_text(), "### What the standbys paid, concurrency by concurrency")
    rows = _table_rows(section)
    assert list(rows) == ["C=1", "C=2"]
    for cells in rows.values():
        _assert_measured(cells, "asynchronous")
    assert "every concurrency's standby replayed and served" in section


def _rows(replays: list[float], reads: list[float], lag: float = 0.0, reps: int = 1) -> list[SyncRow]:
    return [SyncRow(iter=i, epochs=i * 1000, rep=rep, write_s=1.0, wal_mb=i * 0.1, standby_status=OK,
                    standby_replay_s=replay, standby_read_s=read, standby_lag_start_mb=lag)
            for i, (replay, read) in enumerate(zip(replays, reads), start=1) for rep in range(1, reps + 1)]


def text(ramps: list[StandbyRamp]) -> str:
    return "\n".join(standby_comparison(ramps, "format"))


def test_ramps_without_standby_measures_have_no_section() -> None:
    plain = [SyncRow(iter=1, epochs=1000, write_s=1.0)]
    assert standby_comparison([StandbyRamp("bson", plain), StandbyRamp("jsonb", plain)], "format") == []


def test_the_reading_names_the_soonest_and_latest_replay_and_says_when_they_are_too_close() -> None:
    apart = text([StandbyRamp("bson", _rows([0.01, 0.02], [0.1, 0.2])),
                  StandbyRamp("jsonb", _rows([0.01, 0.30], [0.1, 0.4], reps=3))])
    assert "At 2,000 epochs" in apart  # the largest size both measured
    assert "soonest after its commit with bson (0.0200 s), latest with jsonb (0.3000 s)" in apart
    assert "took 0.200 s (bson) to 0.400 s (jsonb)." in apart
    assert "single measurements" in apart  # bson measured it once
    close = text([StandbyRamp("bson", _rows([0.010], [0.100], reps=3)),
                  StandbyRamp("jsonb", _rows([0.012], [0.105], reps=3))])
    assert "0.0100 s to 0.0120 s for every format, too close to tell apart" in close
    assert "within 10 % of each other" in close and "single measurements" not in close


def test_a_standby_behind_at_a_level_start_and_a_synchronous_one_are_said() -> None:
    section = text([StandbyRamp("bson", _rows([0.01], [0.1], lag=BEHIND_MB + 4)),
                    StandbyRamp("jsonb", _rows([0.001], [0.1]), synchronous=True)])
    assert f"still {BEHIND_MB:.0f} MiB or more behind at the start of a level with bson (20.0 MiB)" in section
    assert "The standby of jsonb was synchronous (remote_apply)" in section
    assert "| jsonb | synchronous |" in section


def test_no_size_served_by_every_standby_is_said_with_the_failures() -> None:
    failed = [SyncRow(iter=1, epochs=1000, write_s=1.0, standby_status=CONNECTION_LOST, standby_error="gone")]
    section = text([StandbyRamp("bson", _rows([0.01], [0.1])), StandbyRamp("jsonb", failed)])
    assert "No record size was replayed and served by the standby of every format" in section
    assert "jsonb: 0 measured, failed 1 (CONNECTION_LOST)" in section
