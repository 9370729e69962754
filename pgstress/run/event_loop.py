"""One event loop for a whole ramp, on which a stop signal cancels the running level.

Like `asyncio.Runner`, but wired to pgstress.interrupts rather than to SIGINT alone: while `run`
waits, the first stop signal (Ctrl-C, SIGTERM, SIGHUP) cancels the task it runs and `run` then
raises KeyboardInterrupt; later signals are only counted. Raising KeyboardInterrupt from the
signal handler itself could land inside a driver's protocol callbacks instead (that crashed the
interpreter), and asyncio.Runner's second Ctrl-C does exactly that.

A cancelled task gets CANCEL_GRACE_S to end; then the loop stops waiting for it. asyncpg can wait
forever on a connection that lost a result (short of memory, measured), and cancelling that wait
only adds another that never ends: without the grace the run could not be stopped at all. Closing
the loop waits as long for what is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from pgstress import interrupts

T = TypeVar("T")
CANCEL_GRACE_S = 5.0


class LoopRunner:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)  # as asyncio.Runner does: code asking for "the" loop gets this one

    def __enter__(self) -> LoopRunner:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        task = loop.create_task(coroutine)
        stopped = False
        give_up: list[asyncio.TimerHandle] = []

        def cancel() -> None:
            task.cancel()
            give_up.append(loop.call_later(CANCEL_GRACE_S, loop.stop))

        def stop() -> None:  # the signal handler's: the first signal cancels, a forced one stops waiting at once
            nonlocal stopped
            if task.done():
                return
            loop.call_soon_threadsafe(loop.stop if stopped else cancel)  # also wakes a loop asleep in select()
            stopped = True

        with interrupts.while_waiting(stop):
            try:
                return loop.run_until_complete(task)
            except (asyncio.CancelledError, RuntimeError):  # RuntimeError: stopped before the task ended
                if stopped:
                    raise KeyboardInterrupt from None
                raise
            finally:
                for handle in give_up:
                    handle.cancel()

    def close(self) -> None:
        """Cancel what is left and close the loop; clean-up, so no signal interrupts it."""
        with interrupts.deferred():
            self._close()

    def _close(self) -> None:
        loop = self._loop
        if loop.is_closed():
            return
        try:
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            if leftovers:  # (asyncio.wait of nothing refuses)
                loop.run_until_complete(asyncio.wait(leftovers, timeout=CANCEL_GRACE_S))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            asyncio.set_event_loop(None)


__all__ = ["LoopRunner"]
