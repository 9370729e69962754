"""How each `--mode`'s results are shown: the option naming its CSV, its charts, its progress line, its report's
parts. How a mode runs is run/modes.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pgstress.config import RunConfig
from pgstress.output.charts import ASYNC_CHARTS, SYNC_CHARTS, ChartSpec
from pgstress.output.markdown import ASYNC_REPORT, SYNC_REPORT, ReportParts
from pgstress.output.progress_lines import LineFormat, async_line, sync_line
from pgstress.output.usage import access_charts


@dataclass(frozen=True)
class Presentation:
    csv_option: str  # the option (RunConfig field) naming this mode's CSV
    charts: Sequence[ChartSpec]
    progress_line: LineFormat
    report: ReportParts

    def csv_path(self, config: RunConfig) -> str:
        return str(getattr(config, self.csv_option))

    def charts_for(self, config: RunConfig) -> tuple[ChartSpec, ...]:
        """The mode's charts, and the access phases' when --access asks for them."""
        return (*self.charts, *access_charts(config))


SYNC_SHOWN = Presentation(csv_option="results_csv", charts=SYNC_CHARTS, progress_line=sync_line, report=SYNC_REPORT)
ASYNC_SHOWN = Presentation(csv_option="async_results_csv", charts=ASYNC_CHARTS, progress_line=async_line,
                           report=ASYNC_REPORT)
