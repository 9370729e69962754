"""One event loop for a whole ramp, on which a stop signal cancels the running level.

Like `asyncio.Runner`, but wired to pgstress.interrupts rather than to SIGINT alone: while `run`
waits, the first stop signal (Ctrl-C, SIGTERM, SIGHUP) cancels the task it runs and `run` then
raises KeyboardInterrupt; later signals are only counted. Raising KeyboardInterrupt from the
signal handler itself could land inside a driver's protocol callbacks instead (that crashed the
interpreter), and asyncio.Runner's second Ctrl-C does exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from pgstress import interrupts

T = TypeVar("T")


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
        task = self._loop.create_task(coroutine)
        stopped = False

        def stop() -> None:
            nonlocal stopped
            stopped = True
            if not task.done():
                self._loop.call_soon_threadsafe(task.cancel)  # also wakes a loop asleep in select()

        with interrupts.while_waiting(stop):
            try:
                return self._loop.run_until_complete(task)
            except asyncio.CancelledError:
                if stopped:
                    raise KeyboardInterrupt from None
                raise

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
            if leftovers:  # gather() of nothing would make its future on another loop
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            asyncio.set_event_loop(None)


__all__ = ["LoopRunner"]
