"""Options the user typed that the chosen run does not use: each named in one warning line.

Only what was typed counts: a default is never "given". A value that would make the run wrong (a C
list in sync mode, insert_blocking in async mode) is refused by cli.py instead; these are harmless
but would otherwise be silently without effect.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from pgstress.config import ALL_FORMATS, RunConfig

ZSTD_FORMATS = ("ndjson_zstd", ALL_FORMATS)  # the formats --zstd-level compresses

# dest -> (whether the run ignores it, why), in the order the warnings are printed
RULES: dict[str, tuple[Callable[[RunConfig], bool], str]] = {
    "results_csv": (lambda c: c.mode == "async", "async mode writes --async-results-csv"),
    "async_results_csv": (lambda c: c.mode == "sync", "sync mode writes --results-csv"),
    "async_concurrency": (lambda c: c.mode == "sync", "sync mode writes one record at a time"),
    "max_client_memory_mb": (lambda c: c.mode == "sync", "only async mode has the memory guard"),
    "zstd_level": (lambda c: c.payload_format not in ZSTD_FORMATS,
                   "only ndjson_zstd is compressed with zstd"),
}


def typed_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> dict[str, object]:
    """The options present in argv (by dest), with their values: argv parsed again with no defaults at all.

    `parser` is changed (its defaults suppressed): pass a fresh one. argv must already have parsed cleanly.
    """
    for action in parser._actions:  # argparse keeps its options here; every one gets no default
        action.default = argparse.SUPPRESS
    return dict(vars(parser.parse_args(list(argv))))


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def ignored_warnings(config: RunConfig, typed: dict[str, object]) -> list[str]:
    """One line per typed option this run ignores, naming it and why."""
    lines = []
    for dest, (ignored, why) in RULES.items():
        if dest in typed and ignored(config):
            where = f"{config.mode} mode" if dest != "zstd_level" else f"--payload-format {config.payload_format}"
            lines.append(f"warning: {_option(dest)} is ignored with {where}: {why}")
    return lines
