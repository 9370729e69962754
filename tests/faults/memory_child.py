"""Run pgstress with the address space squeezed during one iteration: a real MemoryError in the client.

    python memory_child.py ITERATION HEADROOM_MIB pgstress-options...

Before ITERATION the soft RLIMIT_AS is set to the current address space plus HEADROOM_MIB; after it
the limit is restored, so the run can go on and write its report. A subprocess, because the limit
holds for the whole process.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

from helpers import install_hooks

from pgstress import cli

MIB = 1024 * 1024


def address_space_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def main() -> int:
    iteration, headroom_mib, *argv = sys.argv[1:]
    hooks = install_hooks(setattr)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)

    def squeeze() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes() + int(headroom_mib) * MIB, hard))

    def release(row: object) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    hooks.before[int(iteration)] = squeeze
    hooks.after[int(iteration)] = release
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
