"""Every bad option value: exit 2, one line naming the option, nothing written, nothing touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from helpers import TINY_RAMP, PrivateServer, wait_until

from pgstress.cli import build_parser, parse_config

REPO = Path(__file__).resolve().parent.parent

BAD_ARGUMENTS = [
    (["--start-epochs", "0"], "--start-epochs"),
    (["--start-epochs", "-5"], "--start-epochs"),
    (["--start-epochs", "ten"], "--start-epochs"),
    (["--start-epochs", "1.5"], "--start-epochs"),
    (["--end-epochs", "0"], "--end-epochs"),
    (["--step-epochs", "0"], "--step-epochs"),
    (["--step-epochs", "-1"], "--step-epochs"),
    (["--start-epochs", "200", "--end-epochs", "100"], "--end-epochs"),
    (["--payload-format", "xml"], "--payload-format"),
    (["--mode", "turbo"], "--mode"),
    (["--table", "bad;name"], "--table"),
    (["--table", "1abc"], "--table"),
    (["--table", 'a"b'], "--table"),
    (["--table", ""], "--table"),
    (["--table", "x" * 64], "--table"),
    (["--table", "stress\n"], "--table"),
    (["--async-concurrency", "0"], "--async-concurrency"),
    (["--async-concurrency", "many"], "--async-concurrency"),
    (["--statement-timeout-ms", "-1"], "--statement-timeout-ms"),
    (["--zstd-level", "0"], "--zstd-level"),
    (["--zstd-level", "23"], "--zstd-level"),
    (["--seed", "-3"], "--seed"),
    (["--max-consecutive-failures", "0"], "--max-consecutive-failures"),
    (["--memory-trace", "maybe"], "--memory-trace"),
    (["--write-method", "teleport"], "--write-method"),
    (["--results-csv", ""], "--results-csv"),
    (["--repeat", "0"], "--repeat"),
    (["--repeat", "-2"], "--repeat"),
    (["--repeat", "three"], "--repeat"),
    (["--export-json", ""], "--export-json"),
    (["--export-json", "/"], "--export-json"),  # a directory
    (["--export-json", "/proc/pgstress.json"], "--export-json"),  # no file can be made there, even by root
    (["--no-such-option"], "--no-such-option"),
    # values the server or the machine would refuse
    (["--statement-timeout-ms", "2147483648"], "--statement-timeout-ms"),
    (["--end-epochs", "100000000000000000", "--step-epochs", "1"], "--end-epochs"),
    (["--start-epochs", "2147483648", "--end-epochs", "2147483648"], "--start-epochs"),
    (["--step-epochs", "99999999999999999999"], "--step-epochs"),
    (["--mode", "async", "--async-concurrency", "1000000000"], "--async-concurrency"),
    (["--payload-format", "all", "--table", "x" * 53], "--table"),
    (["--dsn", "host=h port=5432 dbname"], "--dsn"),
    # an explicit empty value (an unset shell variable) is an error, never the default
    (["--dsn", ""], "--dsn"),
    (["--dsn", " "], "--dsn"),
    (["--report-md", ""], "--report-md"),
    (["--async-results-csv", "  "], "--async-results-csv"),
    (["--results-csv", "\t"], "--results-csv"),
]


@pytest.mark.parametrize(("argv", "option"), BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_value_is_one_line_exit_2(argv: list[str], option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_config(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert option in lines[0]
    assert "Traceback" not in captured.err


def test_defaults_are_the_seeds() -> None:
    config = parse_config([])
    assert (config.mode, config.table, config.payload_format) == ("sync", "stress_records", "ndjson_zstd")
    assert (config.start_epochs, config.end_epochs, config.step_epochs) == (10_000, 1_000_000, 10_000)
    assert (config.statement_timeout_ms, config.async_concurrency, config.zstd_level) == (0, 10, 3)
    assert config.results_csv == "iteration_results.csv"
    assert config.async_results_csv == "async_fanout_results.csv"
    assert config.report_md == "stress_test_report.md"
    assert len(config.epoch_ramp()) == 100
    assert config.epoch_ramp()[-1] == 1_000_000


def test_help_gives_every_option_a_text_and_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for action in parser._actions:  # argparse keeps its options here; the public help text is built from them
        assert action.help, action.option_strings
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: sync)", "(default: stress_records)", "(default: ndjson_zstd)", "(default: 10000)",
                  "(default: 1000000)", "(default: iteration_results.csv)", "(default: stress_test_report.md)",
                  "(default: 42)", "(default: auto)", "(default: insert_blocking in sync mode, insert in async"
                  " mode)"):
        assert shown in text, shown


def test_ramp_stops_at_or_below_end() -> None:
    config = parse_config(["--start-epochs", "5", "--end-epochs", "20", "--step-epochs", "7"])
    assert list(config.epoch_ramp()) == [5, 12, 19]


def test_bad_input_through_the_real_entry_point_touches_nothing(
    tmp_path: Path, server_dsn: str, db: psycopg.Connection, table_name: str
) -> None:
    """`python main.py` with a bad value: exit 2, one line, no CSV or report, the table unchanged."""
    db.execute(f'CREATE TABLE "{table_name}" (id int)')
    db.execute(f'INSERT INTO "{table_name}" VALUES (1), (2)')
    csv_path, report_path = tmp_path / "r.csv", tmp_path / "r.md"
    argv = [
        sys.executable, "main.py", "--dsn", server_dsn, "--table", table_name, "--drop-table",
        "--truncate-before-start", "--start-epochs", "100", "--end-epochs", "50",
        "--results-csv", str(csv_path), "--report-md", str(report_path),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PG_DSN"}
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "--end-epochs" in done.stderr
    assert not csv_path.exists() and not report_path.exists()
    assert db.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (2,)


@pytest.mark.parametrize("command", [["pgstress"], [sys.executable, "-m", "pgstress"], [sys.executable, "main.py"]],
                         ids=["console script", "python -m pgstress", "python main.py"])
def test_every_way_to_start_it_is_the_same_program(command: list[str]) -> None:
    if command == ["pgstress"]:  # installed beside this Python by `make` (pip install -e .), as pipx would
        command = [str(Path(sys.executable).with_name("pgstress"))]
    done = subprocess.run([*command, "--start-epochs", "0"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "pgstress: error: argument --start-epochs: 0 must be >= 1\n"
    helped = subprocess.run([*command, "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: pgstress ")
    compared = subprocess.run([*command, "compare", "only-one.json"], cwd=REPO, capture_output=True, text=True,
                              timeout=60)  # the subcommand, reached the same way
    assert compared.returncode == 2
    assert compared.stderr.startswith("pgstress compare: error: give two runs or more")


def test_a_dsn_libpq_cannot_parse_is_refused_without_quoting_it(capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq's own parse errors quote the DSN (and so the password): the refusal names the source only."""
    password = "".join(chr(code) for code in range(32, 127))  # a raw '%' that is no %xx: libpq cannot parse it
    for argv, source in ((["--dsn", f"postgresql://bob:{password}@h/db"], "argument --dsn"), ([], "PG_DSN")):
        monkeypatch.setenv("PG_DSN", f"postgresql://bob:{password}@h/db")
        with pytest.raises(SystemExit) as exited:
            parse_config(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [f"pgstress: error: {source}: libpq cannot parse this connection string"
                                    " (not shown: it may hold a password)"]


def test_an_empty_dsn_is_refused_not_taken_for_pg_dsn(tmp_path: Path, server_dsn: str, db: psycopg.Connection,
                                                      table_name: str) -> None:
    """`--dsn "$SERVER_B"` with SERVER_B unset: exit 2, one line, and neither PG_DSN's server nor an embedded one
    is used (the table PG_DSN names is untouched, nothing is written)."""
    db.execute(f'CREATE TABLE "{table_name}" (id int)')
    env = {**os.environ, "PG_DSN": server_dsn}
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "main.py", "--dsn", "", "--table", table_name, "--drop-table", *TINY_RAMP,
                           "--results-csv", str(out / "r.csv"), "--report-md", str(out / "r.md")],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["pgstress: error: argument --dsn: an empty connection string (leave --dsn out"
                                        " to use PG_DSN, libpq's PG* variables or the embedded server)"]
    assert not out.exists()
    assert db.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (0,)


@pytest.mark.parametrize("argv", [["", "b.json"], ["a.json", " "], ["a.json", "b.json", "--report-md", ""]],
                         ids=["first run", "second run", "--report-md"])
def test_compare_refuses_an_empty_path(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "main.py", "compare", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    option = "--report-md" if "--report-md" in argv else "RUN"
    assert done.stderr == f"pgstress compare: error: argument {option}: an empty path\n"


def test_a_ramp_of_two_billion_levels_is_never_a_list() -> None:
    config = parse_config(["--start-epochs", "1", "--end-epochs", "2147483647", "--step-epochs", "1"])
    assert len(config.epoch_ramp()) == 2_147_483_647 and config.ramp_length == 2_147_483_647
    assert config.sampled_iterations()[-1] == 2_147_483_647 and len(config.sampled_iterations()) <= 6


def test_nothing_is_created_before_the_run_can_start(private_server: PrivateServer, run_cli, tmp_path: Path) -> None:
    """More async connections than the server allows: exit 1, and the table --drop-table named is still the
    user's (the drop, the new table and the run record wait until the pool is open), no file written."""
    with psycopg.connect(private_server.dsn, autocommit=True) as conn:
        allowed = int(conn.execute("SELECT current_setting('max_connections')::int").fetchone()[0])
        conn.execute("CREATE TABLE users_table (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO users_table VALUES (1, 'kept'), (2, 'kept too')")
        result = run_cli("--mode", "async", "--async-concurrency", str(allowed + 20), "--dsn", private_server.dsn,
                         "--table", "users_table", "--drop-table", *TINY_RAMP)
        assert result.code == 1, result.err
        lines = result.err.splitlines()
        assert len(lines) == 1 and f"cannot open {allowed + 20} asyncpg connections" in lines[0], result.err
        assert conn.execute("SELECT id, note FROM users_table ORDER BY id").fetchall() == [(1, "kept"), (2, "kept too")]
        # A backend leaves pg_stat_activity a moment after its client's socket closes: wait for the server to see it.
        wait_until(lambda: conn.execute("SELECT count(*) = 0 FROM pg_stat_activity"
                                        " WHERE application_name = 'pgstress-async'").fetchone()[0],
                   "the refused pool's connections to leave the server", timeout_s=20)
    assert list(tmp_path.iterdir()) == []
