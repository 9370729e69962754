"""The command's entry point, for `pgstress`, `python -m pgstress` and `python main.py` alike.

Stop signals are handled before anything heavy is imported: a Ctrl-C (or SIGTERM, SIGHUP) while
pgstress's libraries load is one line and exit status 130, not a traceback or a silent kill.
"""

from __future__ import annotations

import contextlib
import signal
import sys

from pgstress import interrupts


def main() -> int:
    interrupts.install()
    try:
        from pgstress.cli import main as run

        interrupts.raise_if_requested()  # a signal whose KeyboardInterrupt a library's import-time code swallowed
        status = run()  # it handles its own signals, and settles before it returns
    except KeyboardInterrupt:
        interrupts.settle()
        what = "pgstress compare" if sys.argv[1:2] == ["compare"] else "pgstress"
        after = "" if what == "pgstress compare" else " before any iteration finished"
        with contextlib.suppress(OSError):
            print(f"{what}: interrupted ({interrupts.signal_name() or 'Ctrl-C'}){after}", file=sys.stderr)
        status = 130
    for signum in interrupts.STOP_SIGNALS:  # the command is over: a signal now has nothing left to stop
        signal.signal(signum, signal.SIG_IGN)
    return status
