"""Run pgstress with the address space squeezed during one iteration: a real MemoryError in the client.

    python memory_child.py ITERATION PHASE HEADROOM_MIB pgstress-options...

PHASE is `write` (the squeeze starts with the iteration) or `read` (it starts when the read phase
does, once the records are stored). The soft RLIMIT_AS is set to the current address space plus
HEADROOM_MIB; after the iteration the limit is restored, so the run can go on and write its report.
A subprocess, because the limit holds for the whole process.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import install_hooks

from pgstress import cli
from pgstress.run.async_mode import AsyncDriver
from pgstress.run.sync import SyncDriver

MIB = 1024 * 1024


def address_space_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def main() -> int:
    iteration, phase, headroom_mib, *argv = sys.argv[1:]
    hooks = install_hooks(setattr)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    squeezing = {"now": False}

    def squeeze() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes() + int(headroom_mib) * MIB, hard))

    def release(row: object) -> None:
        squeezing["now"] = False
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    def squeezed_read(read: Callable[..., Any]) -> Callable[..., Any]:
        def read_with_less_memory(self: object, written: object) -> Any:
            if squeezing["now"]:
                squeeze()
            return read(self, written)

        return read_with_less_memory

    if phase == "read":
        hooks.before[int(iteration)] = lambda: squeezing.update(now=True)
        for driver in (SyncDriver, AsyncDriver):
            driver.read = squeezed_read(driver.read)  # type: ignore[method-assign]  # the moment, not the work
    else:
        hooks.before[int(iteration)] = squeeze
    hooks.after[int(iteration)] = release
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
