"""The command's entry point, for `pgstress`, `python -m pgstress` and `python main.py` alike.

Stop signals are handled before anything heavy is imported: a Ctrl-C (or SIGTERM, SIGHUP) while
pgstress's libraries load is one line and exit status 130, not a traceback or a silent kill.
"""

from __future__ import annotations

import signal
import sys

from pgstress import interrupts


def main() -> int:
    interrupts.install()
    try:
        from pgstress.cli import main as run
    except KeyboardInterrupt:
        print(f"pgstress: interrupted ({interrupts.signal_name()}) before any iteration finished", file=sys.stderr)
        return 130
    status = run()
    for signum in interrupts.STOP_SIGNALS:  # the run is over: a signal now has nothing left to stop
        signal.signal(signum, signal.SIG_IGN)
    return status
