"""Writing files so that a reader never sees half of one, and a failed write is one clear error."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputFailed(Exception):
    """A file of the run could not be written; the message names the file and the system's error."""

    def __init__(self, path: str | Path, error: OSError) -> None:
        reason = error.strerror or str(error) or type(error).__name__
        super().__init__(f"could not write {path}: {reason}" + (f" [Errno {error.errno}]" if error.errno else ""))
        self.path = Path(path)
        self.error = error


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Write `content` to a temporary file beside `path`, then rename it over `path`.

    The temporary name is short (a long report name plus a prefix could pass the filesystem's name
    limit). Raises OutputFailed; a failure leaves `path` as it was and no temporary file behind.
    """
    target = Path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    temp_name: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=".pgstress-", suffix=".tmp", dir=target.parent)
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
        os.replace(temp_name, target)
    except OSError as exc:
        raise OutputFailed(target, exc) from None
    finally:
        if temp_name is not None:
            with contextlib.suppress(OSError):
                Path(temp_name).unlink(missing_ok=True)
    return target


class AppendOnlyFile:
    """A file written one whole record at a time: each `append` reaches the file entirely or not at all.

    Writes go straight to the file descriptor (no buffer to flush later); a write that fails half-way
    (a full disk) is cut back to the last whole record before OutputFailed is raised.
    """

    def __init__(self, path: Path, *, append: bool, keep_bytes: int | None = None) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | (0 if append else os.O_TRUNC)
            self._fd = os.open(path, flags, 0o666)
            if keep_bytes is not None:  # a damaged tail (--resume) is cut off before anything is added
                os.ftruncate(self._fd, keep_bytes)
            self.size = os.lseek(self._fd, 0, os.SEEK_END)
        except OSError as exc:
            raise OutputFailed(path, exc) from None

    def append(self, data: bytes) -> None:
        start = self.size
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
                os.lseek(self._fd, start, os.SEEK_SET)
            raise OutputFailed(self.path, exc) from None
        self.size = start + len(data)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
