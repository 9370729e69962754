"""What every pgstress command's options share: a parse error is one line and exit status 2, and a path
given empty is refused, never taken to mean a default."""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One clear line and exit status 2 (argparse's usage block is noise here)."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def nonempty_path(text: str) -> str:
    """A path as typed; empty (an unset shell variable, `--report-md "$OUT"`) is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return text
