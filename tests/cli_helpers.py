"""Helpers the CLI tests share: reading the report's points, interrupting a real run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def report_points(report: str) -> dict[str, str]:
    """The text after each of the report's three point labels."""
    found = {}
    for line in report.splitlines():
        for label in ("Breaking point", "Stability point", "Optimal efficiency point"):
            if line.startswith(f"- **{label}:**"):
                found[label] = line.split(":**", 1)[1].strip()
    return found


def interrupt_after_two_rows(args: list[str], signum: int, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `python main.py ARGS`, send `signum` to its whole process group (as a terminal's Ctrl-C
    does) once the progress line of iteration 2 says two rows are in the CSV; (exit status, stderr)."""
    proc = subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[2/"):
                break
        assert any(line.startswith("[2/") for line in seen), seen
        os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err
