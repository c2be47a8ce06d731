"""An asyncio event loop in a daemon thread, driven synchronously (for asyncio clients)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from actors.service.transport import TransportError

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on a private event loop from any thread: :meth:`run` blocks until
    the coroutine finishes or ``timeout`` seconds pass (then it is cancelled)."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        """Result of ``coro``; :class:`TransportError` naming ``what`` after ``timeout`` s."""
        if self.loop.is_closed():
            coro.close()
            raise TransportError(f"{what}: the connection is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TransportError(f"{what}: no answer within {timeout:g} s") from None

    def close(self) -> None:
        """Stop the loop and join its thread (idempotent)."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive():               # let the client's tasks end cleanly
            done = asyncio.run_coroutine_threadsafe(_cancel_others(), self.loop)
            try:
                done.result(5)
            except (concurrent.futures.TimeoutError, asyncio.CancelledError):
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_others() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=2)
