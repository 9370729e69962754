"""One event loop for a whole ramp, on which Ctrl-C cancels the running level.

This is `asyncio.Runner` (Python 3.11+), and on 3.10 the same behaviour in a few lines: while
`run` waits, the first SIGINT cancels the task it runs and `run` then raises KeyboardInterrupt.
Raising KeyboardInterrupt from the signal handler itself could land inside a driver's protocol
callbacks instead.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import Runner as LoopRunner
else:  # pragma: no cover - exercised by the suite on Python 3.10
    import asyncio
    import signal
    import threading
    from collections.abc import Coroutine
    from types import FrameType, TracebackType
    from typing import Any, TypeVar

    T = TypeVar("T")

    class LoopRunner:
        def __init__(self) -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)  # as asyncio.Runner does: code asking for "the" loop gets this one
            self._interrupts = 0

        def __enter__(self) -> LoopRunner:
            return self

        def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                     traceback: TracebackType | None) -> None:
            self.close()

        def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
            task = self._loop.create_task(coroutine)
            own_handler = (threading.current_thread() is threading.main_thread()
                           and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
            if own_handler:
                signal.signal(signal.SIGINT, lambda signum, frame: self._on_sigint(task, frame))
            self._interrupts = 0
            try:
                return self._loop.run_until_complete(task)
            except asyncio.CancelledError:
                if self._interrupts:
                    raise KeyboardInterrupt from None
                raise
            finally:
                if own_handler:
                    signal.signal(signal.SIGINT, signal.default_int_handler)

        def _on_sigint(self, task: asyncio.Task[Any], frame: FrameType | None) -> None:
            self._interrupts += 1
            if self._interrupts == 1 and not task.done():
                task.cancel()
                self._loop.call_soon_threadsafe(lambda: None)  # wake the loop if it sleeps in select()
                return
            raise KeyboardInterrupt

        def close(self) -> None:
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
                asyncio.set_event_loop(None)
                loop.close()

__all__ = ["LoopRunner"]
