"""--version, --help's groups and defaults, --dry-run's plan and estimate, the line before the default ramp,
options the chosen run ignores, and an output folder that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TINY_RAMP, read_csv

from pgstress import __version__, cli, plan
from pgstress.cli import parse_config
from pgstress.compare.command import main as compare_main
from pgstress.target import LIBPQ_VARIABLES

CLOSED = "host=127.0.0.1 port=1 connect_timeout=5"  # had it been contacted, the exit status would be 1


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def no_server_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PG_DSN", *LIBPQ_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["--version"], capsys) == (0, f"pgstress {__version__}\n", "")


def test_help_is_grouped_and_shows_only_defaults_one_could_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _main(["--help"], capsys)
    assert code == 0
    assert out.startswith("usage: pgstress [--mode {sync,async}] [options]")
    assert "\n       pgstress compare RUN RUN [...] [--report-md PATH]" in out
    headings = [line[:-1] for line in out.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings == ["options", "ramp", "payload", "access", "layout", "server and table", "outputs", "async mode",
                        "measurement", "run control", "standbys", "examples"]
    text = " ".join(out.split())
    for meaningless in ("(default: None)", "(default: default)", "(default: False)", "(default: ==SUPPRESS==)"):
        assert meaningless not in text
    assert "(default: default, which follows the server's default_toast_compression)" in text
    assert "(default: 80% of the RAM available at start" in text
    assert "(default: PG_DSN; else libpq's PG* variables; else an embedded server started for the run)" in text


def test_dry_run_prints_the_plan_and_touches_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv, report = tmp_path / "r.csv", tmp_path / "r.md"
    code, out, err = _main(["--dry-run", "--dsn", CLOSED + " user=u password=s3cret", "--payload-format", "bson",
                            "--repeat", "2", "--drop-table", "--table", "plan_t", "--results-csv", str(csv),
                            "--report-md", str(report), "--no-charts", "--export-json", str(tmp_path / "r.json")],
                           capsys)
    assert (code, err) == (0, "")
    assert list(tmp_path.iterdir()) == []  # nothing written; exit 0 against a closed port: never contacted
    assert "s3cret" not in out
    lines = out.splitlines()
    assert lines[:8] == [
        "pgstress --dry-run: the plan (nothing was started, written or touched)",
        "  mode: sync, write method insert_blocking",
        "  sizes: 10,000 to 1,000,000 epochs, step 10,000: 100 sizes",
        "  iterations: 200 per ramp (100 sizes x 2 repetitions); 1 ramp, 200 in all",
        "  ramp: bson, TOAST compression default, storage extended, table plan_t",
        "  tables: dropped and recreated first (--drop-table); only a table pgstress created is ever written to",
        "  files:",
        f"    {csv} (the CSV, --results-csv)",
    ]
    assert lines[8:12] == [f"    {csv}.run.json (its run record, --results-csv)",
                           f"    {report} (the report, --report-md)",
                           f"    {tmp_path / 'r.json'} (the JSON record, --export-json)",
                           "  server: --dsn: user=u password=*** connect_timeout=5 host=127.0.0.1 port=1"]
    assert lines[12] == ("  memory passes: planned for iterations 20, 40, 60, 80, 100 (--memory-trace auto), each taken"
                         " only while the passes stay within 10% of the ramp's time (the first 10 s of passes always)")
    # bson: 50.5 M epochs x 2 repetitions x 23.7 us, passes within 10 % (1/9 of the work), 8 s to start
    work = 101_000_000 * 23.7e-6
    assert plan.estimate_seconds(parse_config(["--payload-format", "bson", "--repeat", "2"])) == pytest.approx(
        work + work / 9 + 8)
    assert lines[13].startswith("  time: about 44 min (31-58 min), estimated from per-epoch costs measured on a")
    assert len(lines) == 14


def test_dry_run_names_the_embedded_server_and_every_compared_ramp(no_server_in_env: None,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    code, out, _err = _main(["--dry-run", "--mode", "async", "--async-concurrency", "2,4", "--payload-format", "all",
                             "--start-epochs", "1000", "--end-epochs", "5000", "--step-epochs", "1000",
                             "--memory-trace", "off", "--async-results-csv", str(tmp_path / "a.csv"),
                             "--report-md", str(tmp_path / "a.md"), "--no-charts"], capsys)
    assert code == 0 and list(tmp_path.iterdir()) == []
    ramps = [line for line in out.splitlines() if line.startswith("  ramp: ")]
    assert len(ramps) == 8
    assert ramps[0] == ("  ramp: bson, TOAST compression default, storage extended, C = 2, table"
                        " stress_records_bson_c2, 30,000 epochs")  # (1,000 + ... + 5,000) x C
    assert ramps[-1].endswith("C = 4, table stress_records_pgarrays_c4, 60,000 epochs")
    assert "  concurrency: C = 2, 4 records per level" in out
    assert "  iterations: 5 per ramp (5 sizes x 1 repetition); 8 ramps, 40 in all" in out
    assert "  server: an embedded PostgreSQL started for the run in a temporary directory, removed at the end" in out
    assert "  memory passes: none (--memory-trace off): the *_peak_mb columns stay empty" in out


def test_the_estimate_scales_with_every_record_the_run_writes() -> None:
    def work(*argv: str) -> float:
        return plan.estimate_seconds(parse_config([*argv, "--memory-trace", "off"])) - plan.START_S

    sync = work()
    assert sync == pytest.approx(50_500_000 * 14.8e-6)  # the default ramp: 10k + 20k + ... + 1M epochs
    assert work("--mode", "async", "--async-concurrency", "100") == pytest.approx(100 * sync)
    # pgarrays is not measured yet: it takes the slowest format's cost
    assert work("--payload-format", "all") == pytest.approx(sync / 14.8 * (14.8 + 23.7 + 39.3 + 39.3))
    assert work("--toast-compression", "all") == pytest.approx(2 * sync)
    on = plan.estimate_seconds(parse_config(["--memory-trace", "on"])) - plan.START_S
    assert on == pytest.approx(sync * (1 + plan.PASS_EXTRA))
    assert plan.duration_range(838.4) == "about 14 min (10-18 min)"
    assert plan.duration_range(60) == "about 60 s (42-78 s)"
    assert plan.duration_range(5000) == "about 83 min (58 min to 1.8 h)"


def test_the_default_ramp_says_how_long_it_will_take_first(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("PG_DSN", CLOSED)
    monkeypatch.chdir(tmp_path)
    code, out, err = _main([], capsys)
    assert code == 1 and "cannot connect to 127.0.0.1:1" in err  # it went on to start the run
    assert out.splitlines()[0] == ("pgstress: 100 iterations, about 14 min (10-18 min) by costs measured on a 2-core"
                                   " machine; --dry-run shows the plan, Ctrl-C stops with a report")
    code, out, _err = _main(TINY_RAMP, capsys)  # a ramp the user chose: no such line
    assert code == 1 and out == ""


IGNORED = {
    "--results-csv in async mode": (["--mode", "async", "--results-csv", "x.csv"],
                                    "--results-csv is ignored with async mode: async mode writes --async-results-csv"),
    "--async-results-csv in sync mode": (["--async-results-csv", "x.csv"],
                                         "--async-results-csv is ignored with sync mode: sync mode writes"
                                         " --results-csv"),
    "--async-concurrency in sync mode": (["--async-concurrency", "10"], "--async-concurrency is ignored with sync"
                                         " mode: sync mode writes one record at a time"),
    "--max-client-memory-mb in sync mode": (["--max-client-memory-mb", "100"], "--max-client-memory-mb is ignored"
                                            " with sync mode: only async mode has the memory guard"),
    "--zstd-level with bson": (["--payload-format", "bson", "--zstd-level", "3"], "--zstd-level is ignored with"
                               " --payload-format bson: only ndjson_zstd is compressed with zstd"),
    "--chunk-epochs with the value layout": (["--chunk-epochs", "500"], "--chunk-epochs is ignored with --layout"
                                             " value: only the chunked layout (--layout chunked or all) stores a"
                                             " record as chunks"),
}


@pytest.mark.parametrize("case", IGNORED, ids=IGNORED)
def test_an_option_the_run_ignores_is_one_warning_line(case: str, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    argv, warning = IGNORED[case]
    code, _out, err = _main(["--dry-run", *argv], capsys)
    assert (code, err) == (0, f"pgstress: warning: {warning}\n")


def test_a_default_is_never_an_ignored_option(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["--mode", "async"], [], ["--payload-format", "jsonb"], ["--mode", "async", "--zstd-level", "5"]):
        assert _main(["--dry-run", *argv], capsys)[::2] == (0, ""), argv
    code, _out, err = _main(["--dry-run", "--results-csv", "a.csv", "--async-results-csv", "b.csv",
                             "--max-client-memory-mb", "5"], capsys)  # one line each, in a fixed order
    assert code == 0
    assert err.splitlines() == ["pgstress: warning: --async-results-csv is ignored with sync mode: sync mode writes"
                                " --results-csv",
                                "pgstress: warning: --max-client-memory-mb is ignored with sync mode: only async"
                                " mode has the memory guard"]


def test_a_list_of_c_in_sync_mode_is_still_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(["--dry-run", "--async-concurrency", "1,4"], capsys)
    assert (code, out) == (2, "") and len(err.splitlines()) == 1 and "--async-concurrency" in err


@pytest.mark.parametrize("option", ["--results-csv", "--report-md", "--export-json"])
def test_an_output_folder_that_does_not_exist_is_refused(option: str, capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "out.x"
    code, out, err = _main(["--dsn", CLOSED, *TINY_RAMP, "--results-csv", str(tmp_path / "r.csv"), "--report-md",
                            str(tmp_path / "r.md"), option, str(missing)], capsys)
    assert (code, out) == (2, "")
    what = {"--results-csv": "the CSV", "--report-md": "the report", "--export-json": "the JSON record"}[option]
    assert err == (f"pgstress: error: argument {option}: {missing} ({what})"
                   f" cannot be created: its folder {missing.parent} does not exist (--create-dirs creates it)\n")
    assert list(tmp_path.iterdir()) == []


def test_create_dirs_creates_the_output_folders(embedded_dsn: str, table_name: str, run_cli, tmp_path: Path) -> None:
    csv, report = tmp_path / "a" / "b" / "r.csv", tmp_path / "c" / "r.md"
    result = run_cli("--dsn", embedded_dsn, "--table", table_name, "--drop-table", *TINY_RAMP, "--create-dirs",
                     "--results-csv", str(csv), "--report-md", str(report))
    assert result.code == 0, result.err
    assert [row["epochs"] for row in read_csv(csv)] == ["1000", "2000", "3000"]
    assert report.is_file() and (tmp_path / "a" / "b" / "r.csv.run.json").is_file()
    assert "create_dirs" not in (tmp_path / "a" / "b" / "r.csv.run.json").read_text()  # not an option of the ramp


def test_compare_refuses_a_report_folder_that_does_not_exist(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "c.md"
    with pytest.raises(SystemExit) as exited:
        compare_main(["a.json", "b.json", "--report-md", str(missing), "--no-charts"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (f"pgstress compare: error: argument --report-md: {missing} (the report) cannot"
                                       f" be created: its folder {missing.parent} does not exist (--create-dirs"
                                       " creates it)\n")


def test_a_run_names_the_ignored_option_before_it_starts(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    code, _out, err = _main(["--dsn", CLOSED, "--mode", "async", *TINY_RAMP, "--results-csv", str(tmp_path / "x.csv"),
                             "--async-results-csv", str(tmp_path / "a.csv"), "--report-md", str(tmp_path / "r.md")],
                            capsys)
    lines = err.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0] == ("pgstress: warning: --results-csv is ignored with async mode: async mode writes"
                        " --async-results-csv")
    assert lines[1].startswith("pgstress: cannot connect to 127.0.0.1:1")
