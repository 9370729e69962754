"""Every file a command will write, checked against each other and against what it reads, before anything
is read or written.

Each output names the files it writes (`Output.planned_files`); a command names the files it reads
(`--resume`'s CSV and its run record, `compare`'s runs and the run records beside them). A path that
cannot be written (its directory is read-only or missing under a file, it names a directory or a
device, a name is too long for the filesystem), that is the same file as another output, or that is
a file the command reads is refused up front with one line naming the option: otherwise the ramp
would run, or the table be created, and the failure come at the end, or one file silently replace
another. "The same file" is the same inode when it exists (hard links, `a/../b`), else the same
resolved path.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_DEFAULT_NAME_MAX = 255
_DEFAULT_PATH_MAX = 4096


@dataclass(frozen=True)
class PlannedFile:
    option: str  # the option that names it, as typed on the command line
    text: str  # the path as given (or derived from it)
    what: str  # "the CSV", "the report", ...
    appends: bool = False  # written by adding to the file as it is (--resume's CSV): it may be the input it extends

    @property
    def path(self) -> Path:
        return Path(self.text)


def _existing_ancestor(path: Path) -> Path:
    current = path.absolute().parent
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _limit(directory: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(directory, name)
    except (OSError, ValueError):  # not every filesystem answers; the common limits then
        return default


def _why_not_writable(planned: PlannedFile, create_dirs: bool = False) -> str | None:
    """Why this file cannot be written, or None. A folder that does not exist is refused unless `create_dirs`:
    a mistyped path would otherwise create folders and start a long ramp."""
    if planned.text.endswith((os.sep, "/")):
        return "names a directory"
    path = planned.path
    try:
        found = path.stat()
    except FileNotFoundError:
        found = None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return "is too long a path for this filesystem"
        if exc.errno != errno.ENOTDIR:
            return f"cannot be examined ({exc.strerror})"
        found = None
    if found is not None:
        if stat.S_ISDIR(found.st_mode):
            return "is a directory"
        if not stat.S_ISREG(found.st_mode):
            return "is not a regular file (a device, pipe or socket)"
        if not os.access(path, os.R_OK | os.W_OK):
            return "is not writable"
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot be created: {ancestor} is not writable" + (
            " (read-only filesystem)" if _read_only_filesystem(ancestor) else "")
    refused = _probe(ancestor)
    if refused is not None:
        return f"cannot be created in {ancestor}: {refused}"
    if not create_dirs and ancestor != path.absolute().parent:
        return f"cannot be created: its folder {path.absolute().parent} does not exist (--create-dirs creates it)"
    name_max = _limit(ancestor, "PC_NAME_MAX", _DEFAULT_NAME_MAX)
    too_long = [part for part in path.absolute().parts if len(os.fsencode(part)) > name_max]
    if too_long:
        return f"has a name longer than this filesystem allows ({name_max} bytes): {too_long[0][:40]}..."
    if len(os.fsencode(str(path.absolute()))) >= _limit(ancestor, "PC_PATH_MAX", _DEFAULT_PATH_MAX):
        return "is too long a path for this filesystem"
    return None


def _probe(directory: Path) -> str | None:
    """Why a file cannot be made in `directory`, found by making one and removing it at once: permission bits
    do not bind root, and some filesystems (/proc, a read-only mount) refuse what the bits allow."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".pgstress-probe-", dir=directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(handle)
    os.unlink(probe)
    return None


def _read_only_filesystem(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _identity(path: Path) -> object:
    """The file a path names: its inode when it exists (hard links, bind mounts), else its resolved path."""
    try:
        found = path.stat()
    except OSError:
        return os.path.realpath(path)
    return (found.st_dev, found.st_ino)


def output_problem(files: Sequence[PlannedFile], inputs: Sequence[PlannedFile] = (), create_dirs: bool = False
                   ) -> str | None:
    """One line naming the option of the first file that cannot be written, is another output's file, or is
    one of the `inputs` (which only the output that appends to that very input may be); None when every
    file can be written (`create_dirs`: a folder that does not exist yet will be created)."""
    seen: dict[object, PlannedFile] = {}
    for planned in files:
        why = _why_not_writable(planned, create_dirs)
        if why is not None:
            return f"argument {planned.option}: {planned.text} ({planned.what}) {why}"
        key = _identity(planned.path)
        other = seen.get(key)
        if other is not None:
            names = other.option if other.option == planned.option else f"{other.option} and {planned.option}"
            return (f"argument {planned.option}: {planned.text} ({planned.what}) is the same file as {other.text}"
                    f" ({other.what}); {names} must name different files")
        seen[key] = planned
    for read in inputs:
        written = seen.get(_identity(read.path))
        if written is not None and not (written.appends and written.text == read.text):
            return (f"argument {written.option}: {written.text} ({written.what}) is the same file as {read.text}"
                    f" ({read.what}), which is read: it must name another file")
    return None
