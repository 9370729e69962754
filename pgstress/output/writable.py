"""Whether a file an option names can be written, checked before anything runs (as argparse's `type`)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


def new_file(text: str) -> str:
    """A file that may be created or replaced: not a directory, its folder (or the nearest one that exists,
    under which the rest is created) writable; otherwise argparse's one-line error."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    path = Path(text).absolute()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory")
    folder = next(parent for parent in path.parents if parent.exists())
    try:  # a file made and removed at once: permission bits do not tell root, or a read-only or special file system
        handle, probe = tempfile.mkstemp(prefix=".pgstress-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be written in {folder}: {exc.strerror}") from None
    return text
