"""Stop signals: Ctrl-C (SIGINT), `kill` (SIGTERM) and a closed terminal (SIGHUP) end a run the same way.

The first signal stops what runs: it raises KeyboardInterrupt, or, while an event loop waits
(`while_waiting`), cancels the loop's task instead (raising inside a driver's protocol callbacks
crashed the interpreter). A signal soon after it is only counted: the run is already stopping, and
a double Ctrl-C must not cut its clean-up short. Sections that must run to their end whatever the
moment (`deferred`: the report, the embedded server's stop, the temporary directory's removal, each
bounded by its own timeouts) count every signal without raising; `stop_requested` then says that
the run was asked to stop. Only when stopping takes longer than FORCE_AFTER_S (a driver waiting on
a server that does not answer its cancel) does a further signal force its way out of that wait.

Every signal is recorded in this module's state before anything else happens, and the record is
never cleared: a KeyboardInterrupt can be swallowed on its way up (raised inside a finaliser or an
import-time callback, where Python prints and drops it), so what decides whether the command was
asked to stop is `stop_requested`, checked where the work goes on (`raise_if_requested`), never the
exception alone. Once a command has its result, `settle` makes every later signal counted only.

This module imports nothing of pgstress, so main.py installs it before importing anything heavy.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


FORCE_AFTER_S = 10.0  # a stop still under way this long after the first signal: the next one forces it


@dataclass
class _State:
    received: list[int] = field(default_factory=list)  # every stop signal so far, in order
    first_at: float = 0.0  # time.monotonic() of the first
    deferring: int = 0  # depth of `deferred` sections
    on_stop: Callable[[], None] | None = None  # while an event loop waits: how to stop it instead of raising


_state = _State()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    first = not _state.received
    _state.received.append(signum)
    if first:
        _state.first_at = time.monotonic()
    elif time.monotonic() - _state.first_at < FORCE_AFTER_S:
        return  # the run is stopping: nothing may cut that short
    if _state.deferring:
        return
    if _state.on_stop is not None:
        _state.on_stop()
        return
    raise KeyboardInterrupt


def install() -> Callable[[], None]:
    """Handle the stop signals from now on; returns what restores the previous handlers. Signals already
    received stay received (one that arrived while pgstress loaded still stops the command)."""
    _state.deferring = 0
    _state.on_stop = None
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def stop_requested() -> bool:
    """Whether a stop signal arrived since the process first installed the handlers."""
    return bool(_state.received)


def raise_if_requested() -> None:
    """Raise KeyboardInterrupt when a stop signal arrived (its own KeyboardInterrupt may have been swallowed)."""
    if _state.received:
        raise KeyboardInterrupt


def settle() -> None:
    """The command has its result: from now on a stop signal is counted, never raised (until `install`)."""
    _state.deferring += 1


def signal_name() -> str:
    """The first stop signal's name, for messages ("SIGTERM"); empty when none arrived."""
    return signal.Signals(_state.received[0]).name if _state.received else ""


@contextmanager
def deferred() -> Iterator[None]:
    """A section that runs to its end: a signal inside it is counted (`stop_requested`), never raised."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1


@contextmanager
def while_waiting(stop: Callable[[], None]) -> Iterator[None]:
    """While an event loop waits: the first signal calls `stop` (cancel its task) instead of raising."""
    previous, _state.on_stop = _state.on_stop, stop
    try:
        yield
    finally:
        _state.on_stop = previous


def run_to_end(work: Callable[[], T]) -> T:
    """Run `work` (clean-up) to its end whatever signals arrive; it must be safe to start again.

    A first signal that lands just before its deferred section begins raises KeyboardInterrupt
    there: the work then starts again (the signal is counted, `stop_requested` says so). One that
    lands just after it ended is dropped: the work is done.
    """
    for _attempt in range(3):
        finished = False
        try:
            with deferred():
                value = work()
                finished = True
            return value
        except KeyboardInterrupt:
            if finished:
                return value
            if not stop_requested():
                raise  # not a signal's: the work itself raised it
    with deferred():  # only a first signal ever raises: a third attempt cannot be interrupted
        return work()
