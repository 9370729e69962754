"""How each `--mode` runs: its row type, its driver, how a level becomes its row, and its memory guard.

The ramp loop and the iteration template are shared (run/ramp.py, run/iteration.py); a mode's run side is
the sum of the parts named here. How a mode's results are shown is output/presentation.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from pgstress.config import RunConfig
from pgstress.db.control import TableControl
from pgstress.db.schema import TableSql
from pgstress.rows import AsyncRow, Row, SyncRow
from pgstress.run.access import AccessResult
from pgstress.run.access_chunked_async import async_access_layout
from pgstress.run.access_chunked_sync import sync_access_layout
from pgstress.run.async_mode import async_guard, async_row
from pgstress.run.iteration import Driver, LevelResult
from pgstress.run.layout_drivers import open_async_layout, open_sync_layout
from pgstress.run.level_events import LevelEvents
from pgstress.run.memory_guard import MemoryGuard
from pgstress.run.sync import sync_row
from pgstress.workload.payloads import Codec

# (config, the ramp's driver, its table control, secrets) -> the access phases (--access), or None: none asked
AccessPhases = Callable[[LevelResult], AccessResult]
OpenAccess = Callable[[RunConfig, Driver, TableControl, tuple[str, ...]], AccessPhases | None]
# (config, dsn, the ramp's table with its OID pinned, codec, secrets, the run's events) -> the driver, for the ramp
OpenDriver = Callable[[RunConfig, str, TableSql, Codec, tuple[str, ...], LevelEvents], AbstractContextManager[Driver]]


@dataclass(frozen=True)
class RunMode:
    name: str
    row_type: type[Row]
    describe: Callable[[RunConfig], str]  # the ramp, for the progress title
    open_driver: OpenDriver
    to_row: Callable[[LevelResult, RunConfig], Row]
    memory_guard: Callable[[RunConfig, Sequence[Row]], MemoryGuard] | None = None  # (config, earlier rows)
    open_access: OpenAccess | None = None  # the access phases (--access) on this mode's driver


SYNC_RUN = RunMode(
    name="sync",
    row_type=SyncRow,
    describe=lambda config: "sync ramp",
    open_driver=open_sync_layout,
    to_row=lambda level, config: sync_row(level, config.payload_format),
    open_access=sync_access_layout,
)
ASYNC_RUN = RunMode(
    name="async",
    row_type=AsyncRow,
    describe=lambda config: f"async fan-out ramp, {config.async_concurrency} concurrent"
                            f" record{'' if config.async_concurrency == 1 else 's'} per level",
    open_driver=open_async_layout,
    to_row=lambda level, config: async_row(level, config.payload_format, config.async_concurrency),
    memory_guard=async_guard,
    open_access=async_access_layout,
)
