"""The markdown report output: the report of one ramp, or of one ramp per format compared."""

from __future__ import annotations

from pathlib import Path

from pgstress.config import ALL_FORMATS
from pgstress.host import utc_now_text
from pgstress.output.base import Output, RunResult
from pgstress.output.comparison import render_comparison
from pgstress.output.files import write_atomic
from pgstress.output.markdown import ReportParts, render_run
from pgstress.workload.payloads import format_names


class MarkdownOutput(Output):
    def __init__(self, path: str | Path, parts: ReportParts, csv_path: str) -> None:
        self.path = Path(path)
        self.parts = parts
        self.csv_path = csv_path

    def finish(self, result: RunResult) -> None:
        result.finished_at = result.finished_at or utc_now_text()
        if result.config.payload_format == ALL_FORMATS:
            text = render_comparison(result, self.parts, planned_formats=len(format_names()))
        else:
            text = render_run(result, self.parts, self.csv_path)
        result.files.append(write_atomic(self.path, text))
