"""The report reads in two minutes: the answer first (what ran, the three points, the conclusion, the
recommendation) within a word budget, then the tables, the run's context and the method; every sentence said
once, and true of the run it sits in (its mode, its repetitions, its memory passes)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import RampMode, section_titles
from psycopg import sql

from pgstress.config import DEFAULT_WRITE_METHODS, RunConfig
from pgstress.output.notes import async_notes, sync_notes

TINY = ["--start-epochs", "1000", "--end-epochs", "3000", "--step-epochs", "1000"]
ANSWER_WORDS = 600  # what precedes the complete table: one screen, two minutes' reading
TABLE = "## Complete comparison table"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")
LABEL = re.compile(r"^\*\*[^*]+(?::\*\*|\*\*:)\s+")  # "**Every format**: ", "**Recommendation:** "


def sentences(text: str) -> list[str]:
    """The prose's sentences: tables and headings left out, bullets and a leading bold label taken off (a label
    stays on a data line such as a point's, which is no sentence)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "|")):
            continue
        line = re.sub(r"^(?:[->]\s+)+", "", line)
        if line.endswith("."):
            line = LABEL.sub("", line)
        found += [sentence for sentence in SENTENCE_END.split(line) if len(sentence.split()) >= 4]
    return found


def said_twice(report: str) -> list[str]:
    return [sentence for sentence, times in Counter(sentences(report)).items() if times > 1]


def words(text: str) -> int:
    return len(text.split())


def _notes(mode: str) -> set[str]:
    config = RunConfig(mode=mode, write_method=DEFAULT_WRITE_METHODS[mode], memory_trace="auto", start_epochs=1000,
                       end_epochs=3000, step_epochs=1000)
    notes = (async_notes if mode == "async" else sync_notes)(config, [], None)
    return set(sentences("\n".join(notes)))


def test_the_answer_comes_first_within_a_word_budget(server_dsn: str, db, table_name: str, ramp_mode: RampMode,
                                                      run_cli, tmp_path: Path) -> None:
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--payload-format", "bson",
                     *TINY)
    assert result.code == 0, result.err
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    titles = section_titles(report)
    order = ["## Breaking point, stability point, optimal efficiency point", "## Final conclusion", TABLE,
             "## Run metadata", "## Configuration", "## Server", "## Appendix: how the figures were obtained"]
    assert [title for title in titles if title in order] == order
    assert titles[-1] == order[-1]  # the method is the appendix, last

    answer = report[:report.index(TABLE)]
    assert words(answer) <= ANSWER_WORDS, words(answer)
    what_ran = answer.splitlines()[2]
    each = "one bson record per iteration" if ramp_mode.name == "sync" else \
        f"{ramp_mode.concurrency} concurrent bson records per level"
    assert what_ran.startswith(f"A{'n' if ramp_mode.name == 'async' else ''} {ramp_mode.name} ramp of {each},"
                               " 1,000 to 3,000 epochs in steps of 1,000 (3 iterations), each size measured once")
    assert ("**Recommendation:** this run measured one payload format, bson; which format to choose is what"
            " `--payload-format all` answers") in answer
    assert said_twice(report) == []


def test_a_report_carries_no_sentence_of_the_other_modes_notes(server_dsn: str, db, table_name: str,
                                                                 ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, *TINY)
    assert result.code == 0, result.err
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    other = "sync" if ramp_mode.fans_out else "async"
    foreign = _notes(other) - _notes(ramp_mode.name)
    assert foreign and not foreign & set(sentences(report))
    if not ramp_mode.fans_out:  # the async wording the sync report once carried
        assert "every record of its level" not in report and "async ramp at C = 100" not in report
    else:
        assert "A peak always covers every record of its level" in report


@pytest.mark.parametrize("memory_trace", ["off", "auto"])
def test_no_sentence_twice_with_repetitions(memory_trace: str, server_dsn: str, db, table_name: str,
                                            ramp_mode: RampMode, run_cli, tmp_path: Path) -> None:
    result = run_cli(*ramp_mode.argv(), "--dsn", server_dsn, "--table", table_name, "--start-epochs", "1000",
                     "--end-epochs", "2000", "--step-epochs", "1000", "--repeat", "2", "--memory-trace", memory_trace)
    assert result.code == 0, result.err
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert said_twice(report) == []
    assert "## Repetitions: each size measured 2 times, median and min–max" in report
    missing = ("Iterations 1-2 have no tracemalloc peak (`write_peak_mb` or `read_peak_mb` empty): `--memory-trace"
               " off` takes no memory pass; `--memory-trace on` takes the peaks of every iteration.")
    assert (missing in report) == (memory_trace == "off")


@pytest.fixture
def ramp_tables(db: psycopg.Connection, table_name: str) -> Iterator[None]:
    """Each ramp's own table of a compared run (`<table>_<format>`, `<table>_<format>_c<C>`), dropped however the
    test ends."""
    yield
    found = db.execute("SELECT relname FROM pg_class WHERE relname LIKE %s AND relkind = 'r'",
                       [f"{table_name}\\_%"]).fetchall()
    for (name,) in found:
        db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def test_no_sentence_twice_when_formats_are_compared(server_dsn: str, ramp_tables: None, table_name: str,
                                                     run_cli, tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--payload-format", "all", "--start-epochs", "1000",
                     "--end-epochs", "2000", "--step-epochs", "1000", "--memory-trace", "off")
    assert result.code == 0, result.err
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert said_twice(report) == []
    mine = report[report.index("### Each format on its own"):report.index("## Side by side")]
    assert "- **Every format**: " in mine and "No breaking point was reached" in mine
    assert "answers, running every format" not in report  # the pointer is for a single format's report
    titles = section_titles(report)
    assert titles.index("## Recommendation") < titles.index("## Complete table of every iteration") \
        < titles.index("## Run metadata") < titles.index("## Appendix: how the figures were obtained")


def test_no_sentence_twice_in_a_sweep_over_c_of_every_format(server_dsn: str, ramp_tables: None, table_name: str,
                                                              run_cli, tmp_path: Path) -> None:
    result = run_cli("--dsn", server_dsn, "--table", table_name, "--mode", "async", "--async-concurrency", "1,2",
                     "--payload-format", "all", "--start-epochs", "1000", "--end-epochs", "2000", "--step-epochs",
                     "1000", "--memory-trace", "off")
    assert result.code == 0, result.err
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert said_twice(report) == []
    assert "Each level wrote 1 record of the same size at once over 1 connection," in report
