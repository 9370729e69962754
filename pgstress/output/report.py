"""The markdown report output: the report of one ramp, or of several compared (formats, methods, a sweep over C)."""

from __future__ import annotations

from pathlib import Path

from pgstress.config import is_compared, ramp_configs
from pgstress.host import utc_now_text
from pgstress.output.base import Output, RunResult
from pgstress.output.comparison import NOISE_PERCENT, render_comparison
from pgstress.output.files import write_atomic
from pgstress.output.markdown import ReportParts, render_run
from pgstress.output.paths import PlannedFile
from pgstress.output.sweep import sweep_answer


class MarkdownOutput(Output):
    def __init__(self, path: str | Path, parts: ReportParts, csv_path: str) -> None:
        self.path = Path(path)
        self.given = str(path)  # as typed: Path() drops a trailing slash, which says the name is a directory
        self.parts = parts
        self.csv_path = csv_path

    def planned_files(self) -> list[PlannedFile]:
        return [PlannedFile("--report-md", self.given, "the report")]

    def finish(self, result: RunResult) -> None:
        """Write the report of whatever ran; nothing when no ramp even started."""
        if not result.ramps:
            return
        result.finished_at = result.finished_at or utc_now_text()
        while True:
            marked = result.interrupted
            write_atomic(self.path, self.render(result))
            if result.interrupted == marked:  # a stop signal that came while it was written: written again, marked
                break
        result.reported_interrupted = marked
        result.files.append(self.path)

    def render(self, result: RunResult) -> str:
        if is_compared(result.config):
            sweep = result.config.concurrency_sweep
            answer = sweep_answer(result.ramps, NOISE_PERCENT, sweep) if sweep else []
            return render_comparison(result, self.parts, planned_ramps=len(ramp_configs(result.config)),
                                     answer=answer)
        return render_run(result, self.parts, self.csv_path)
