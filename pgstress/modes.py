"""The `--mode`s: each pairs how its ramp runs (run/modes.py) with how its results are shown
(output/presentation.py). Everything else (the ramp loop, the iteration template, the outputs) is shared."""

from __future__ import annotations

from dataclasses import dataclass

from pgstress.config import RunConfig
from pgstress.output.presentation import ASYNC_SHOWN, SYNC_SHOWN, Presentation
from pgstress.run.modes import ASYNC_RUN, SYNC_RUN, RunMode
from pgstress.target import ServerInfo


@dataclass(frozen=True)
class Mode:
    run: RunMode
    shown: Presentation

    @property
    def name(self) -> str:
        return self.run.name

    def csv_path(self, config: RunConfig) -> str:
        return self.shown.csv_path(config)

    @property
    def csv_flag(self) -> str:
        """The CSV's option as typed on the command line (--results-csv)."""
        return "--" + self.shown.csv_option.replace("_", "-")

    def title(self, config: RunConfig, server: ServerInfo) -> str:
        stored = [] if config.toast_compression == "default" else [config.toast_compression]
        stored += [] if config.storage == "extended" else [f"storage {config.storage}"]
        column = f" ({', '.join(stored)})" if stored else ""
        return (f"{self.run.describe(config)}, {config.payload_format}{column} into {config.table},"
                f" against {server.describe()}")


SYNC = Mode(SYNC_RUN, SYNC_SHOWN)
ASYNC = Mode(ASYNC_RUN, ASYNC_SHOWN)
MODES = {mode.name: mode for mode in (SYNC, ASYNC)}
