"""Options the user typed that the chosen run does not use: each named in one warning line.

Only what was typed counts: a default is never "given". Which options a mode does not read is its
report's `unused_options` (the report's configuration leaves them out too), so the two never disagree.
A value that would make the run wrong (a C list in sync mode, insert_blocking in async mode) is
refused by cli.py instead; these are harmless but would otherwise silently do nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pgstress.config import ALL_FORMATS, VALUE_LAYOUT, RunConfig, unchunked_formats
from pgstress.modes import MODES

ZSTD_FORMATS = ("ndjson_zstd", ALL_FORMATS)  # the formats --zstd-level compresses
WHY_UNUSED = {  # why a mode does not read an option (dest -> reason)
    "results_csv": "async mode writes --async-results-csv",
    "async_results_csv": "sync mode writes --results-csv",
    "async_concurrency": "sync mode writes one record at a time",
    "max_client_memory_mb": "only async mode has the memory guard",
}


def typed_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> dict[str, object]:
    """The options present in argv (by dest, in the order typed), with their values: argv parsed again with no
    defaults at all.

    `parser` is changed (its defaults suppressed): pass a fresh one. argv must already have parsed cleanly.
    """
    for action in parser._actions:  # argparse keeps its options here; every one gets no default
        action.default = argparse.SUPPRESS
    return dict(vars(parser.parse_args(list(argv))))


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def ignored_warnings(config: RunConfig, typed: dict[str, object]) -> list[str]:
    """One line per typed option this run ignores, naming it and why, in the order they were typed."""
    unused = MODES[config.mode].shown.report.unused_options
    lines = []
    for dest in typed:
        if dest in unused:
            why = WHY_UNUSED.get(dest, f"{config.mode} mode does not read it")
            lines.append(f"warning: {_option(dest)} is ignored with {config.mode} mode: {why}")
        elif dest == "zstd_level" and config.payload_format not in ZSTD_FORMATS:
            lines.append(f"warning: --zstd-level is ignored with --payload-format {config.payload_format}: only"
                         " ndjson_zstd is compressed with zstd")
        elif dest == "chunk_epochs" and config.layout == VALUE_LAYOUT:
            lines.append("warning: --chunk-epochs is ignored with --layout value: only the chunked layout (--layout"
                         " chunked or all) stores a record as chunks")
    for name in unchunked_formats(config):
        lines.append(f"warning: --layout all: {name} stores a record in several columns, not one value a chunk row"
                     " can hold, so it runs in the value layout only")
    return lines
