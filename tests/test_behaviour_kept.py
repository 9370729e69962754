"""What users and their scripts rely on, held against a recorded copy (tests/data/behaviour.json), so that
restructuring the code cannot change it unnoticed: the CSV headers, the report's section titles (sync, async,
compared), and the exit status of each way a run can end. A deliberate change updates the record in the same
commit: `python tests/test_behaviour_kept.py --record`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from helpers import section_titles

from pgstress.cli import EXIT_BAD_INPUT, exit_status, parse_config
from pgstress.config import RunConfig
from pgstress.host import collect_host
from pgstress.modes import MODES
from pgstress.output.base import RampPlan, RampResult, RunContext, RunResult
from pgstress.output.report import MarkdownOutput
from pgstress.rows import AsyncRow, Row, SyncRow
from pgstress.run.ramp import RampOutcome
from pgstress.target import ServerDetails, ServerInfo

RECORD = Path(__file__).with_name("data") / "behaviour.json"


def _sync_rows(fmt: str = "ndjson_zstd") -> list[Row]:
    return [SyncRow(iter=1, epochs=1000, format=fmt, write_s=0.5, read_s=0.25, total_s=0.75, eps=1333.3,
                    client_payload_mb=0.1, db_payload_mb=0.1, insert_s=0.1, server_write_ms=50.0, wal_mb=0.2,
                    other_sessions=0),
            SyncRow(iter=2, epochs=2000, format=fmt, status="TIMEOUT",
                    error="canceling statement due to statement timeout")]


def _async_rows() -> list[Row]:
    return [AsyncRow(iter=1, concurrency=2, epochs=1000, format="ndjson_zstd", write_s=0.5, read_s=0.25,
                     write_rps=4.0, read_rps=8.0, writes_ok=2, writes_total=2, reads_ok=2, reads_total=2,
                     write_eps=4000.0, write_cpu_s=0.4,
                     write_encode_busy_s=0.3, write_db_only_s=0.1, read_cpu_s=0.2, read_decode_busy_s=0.1,
                     read_db_only_s=0.1, write_latency_sum_s=0.9, read_latency_sum_s=0.4)]


def _report(config: RunConfig, ramps: list[tuple[str, RunConfig, list[Row]]]) -> list[str]:
    context = RunContext(config, collect_host(), ServerInfo("host=h", "--dsn", False), ServerDetails())
    result = RunResult(context, [RampResult(RampPlan(ramp, "t", label), RampOutcome(rows, planned_levels=2))
                                 for label, ramp, rows in ramps])
    mode = MODES[config.mode]
    return section_titles(MarkdownOutput("r.md", mode.shown.report, mode.csv_path(config)).render(result))


def _exit(config: RunConfig, **changes: Any) -> int:
    result = RunResult(RunContext(config, collect_host(), ServerInfo("", "--dsn", False), ServerDetails()),
                       [RampResult(RampPlan(config, "t"), RampOutcome(_sync_rows(), planned_levels=2))])
    for name, value in changes.items():
        setattr(result, name, value)
    return exit_status(result)


def observed() -> dict[str, Any]:
    sync, asynchronous = RunConfig(), RunConfig(mode="async", write_method="insert", async_concurrency=2)
    compared = RunConfig(payload_format="all")
    try:
        parse_config(["--start-epochs", "0"])
        bad_input = 0
    except SystemExit as exc:
        bad_input = int(exc.code or 0)
    return {
        "sync_csv_header": list(SyncRow.COLUMNS),
        "async_csv_header": list(AsyncRow.COLUMNS),
        "sync_report_sections": _report(sync, [("", sync, _sync_rows())]),
        "async_report_sections": _report(asynchronous, [("", asynchronous, _async_rows())]),
        "compared_report_sections": _report(compared, [(name, RunConfig(payload_format=name), _sync_rows(name))
                                                       for name in ("bson", "jsonb", "ndjson_zstd")]),
        "exit_statuses": {
            "finished": _exit(sync),
            "bad input": bad_input,
            "a result file could not be written": _exit(sync, failed_outputs=["could not write x"]),
            "broke, with --fail-on-break": _exit(RunConfig(fail_on_break=True)),
            "interrupted": _exit(sync, stopped=True),
        },
    }


def test_headers_sections_and_exit_statuses_are_as_recorded() -> None:
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    assert observed() == recorded


def test_bad_input_is_exit_2() -> None:
    assert observed()["exit_statuses"]["bad input"] == EXIT_BAD_INPUT


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    RECORD.write_text(json.dumps(observed(), indent=1) + "\n", encoding="utf-8")
