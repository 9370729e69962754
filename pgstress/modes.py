"""One description per `--mode`: what its rows are, where they go, how they are shown, and how its ramp runs.

Everything else (the ramp loop, the iteration template, the outputs) is shared; a mode is the
sum of the parts named here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from pgstress.config import RunConfig
from pgstress.db.control import ControlSession
from pgstress.db.schema import TableSql
from pgstress.db.server import ServerInfo
from pgstress.output.charts import ASYNC_CHARTS, SYNC_CHARTS, ChartSpec
from pgstress.output.markdown import ASYNC_REPORT, SYNC_REPORT, ReportParts
from pgstress.output.terminal import LineFormat, async_line, sync_line
from pgstress.output.usage import access_charts
from pgstress.rows import AsyncRow, Row, SyncRow
from pgstress.run.access import AccessResult
from pgstress.run.access_async import fanout_access
from pgstress.run.access_sync import sync_access
from pgstress.run.fanout import async_row, fanout_guard, open_fanout
from pgstress.run.iteration import Driver, LevelResult
from pgstress.run.memory_guard import MemoryGuard
from pgstress.run.sync import open_sync, sync_row
from pgstress.workload.payloads import Codec

# (config, the ramp's driver, its control session, secrets) -> the access phases (--access), or None: none asked
AccessPhases = Callable[[LevelResult], AccessResult]
OpenAccess = Callable[[RunConfig, Driver, ControlSession, tuple[str, ...]], AccessPhases | None]
# (config, dsn, the ramp's table with its OID pinned, codec, secrets) -> the driver, for the ramp
OpenDriver = Callable[[RunConfig, str, TableSql, Codec, tuple[str, ...]], AbstractContextManager[Driver]]


@dataclass(frozen=True)
class Mode:
    name: str
    row_type: type[Row]
    csv_option: str  # the option (RunConfig field) naming this mode's CSV
    charts: Sequence[ChartSpec]
    progress_line: LineFormat
    report: ReportParts
    describe: Callable[[RunConfig], str]  # the ramp, for the progress title
    open_driver: OpenDriver
    to_row: Callable[[LevelResult, RunConfig], Row]
    memory_guard: Callable[[RunConfig, Sequence[Row]], MemoryGuard] | None = None  # (config, earlier rows)
    open_access: OpenAccess | None = None

    def charts_for(self, config: RunConfig) -> tuple[ChartSpec, ...]:
        """The mode's charts, and the access phases' when --access asks for them."""
        return (*self.charts, *access_charts(config))

    def csv_path(self, config: RunConfig) -> str:
        return str(getattr(config, self.csv_option))

    def title(self, config: RunConfig, server: ServerInfo) -> str:
        stored = [] if config.toast_compression == "default" else [config.toast_compression]
        stored += [] if config.storage == "extended" else [f"storage {config.storage}"]
        column = f" ({', '.join(stored)})" if stored else ""
        return (f"{self.describe(config)}, {config.payload_format}{column} into {config.table},"
                f" against {server.describe()}")


SYNC = Mode(
    name="sync",
    row_type=SyncRow,
    csv_option="results_csv",
    charts=SYNC_CHARTS,
    progress_line=sync_line,
    report=SYNC_REPORT,
    describe=lambda config: "sync ramp",
    open_driver=open_sync,
    to_row=lambda level, config: sync_row(level, config.payload_format),
    open_access=sync_access,
)
ASYNC = Mode(
    name="async",
    row_type=AsyncRow,
    csv_option="async_results_csv",
    charts=ASYNC_CHARTS,
    progress_line=async_line,
    report=ASYNC_REPORT,
    describe=lambda config: f"async fan-out ramp, {config.async_concurrency} concurrent"
                            f" record{'' if config.async_concurrency == 1 else 's'} per level",
    open_driver=open_fanout,
    to_row=lambda level, config: async_row(level, config.payload_format, config.async_concurrency),
    memory_guard=fanout_guard,
    open_access=fanout_access,
)
MODES = {mode.name: mode for mode in (SYNC, ASYNC)}
