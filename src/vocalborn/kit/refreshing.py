"""A value that is costly to read and may be a little old (a count of the queue, the workers'
capacity): "serve the last value while a new one is read in the background", written once.

The value is read again once it is older than ``ttl`` seconds. While the last value is younger
than ``usable`` seconds the callers get it at once and one read per event loop runs in the
background; an older one (the process's first call, or after a quiet spell) is not used: the
callers wait for the read, all for the same one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class Refreshing(Generic[T]):
    """Subclasses say where the value lives (:meth:`peek`) and how it is read and kept
    (:meth:`read`)."""

    what = "a value"

    def __init__(self, ttl: float, usable: float) -> None:
        self.ttl = ttl
        self.usable = usable
        self.reading: asyncio.Task[T] | None = None  # the last read (in flight, or done)

    def peek(self, max_age: float) -> T | None:
        """The value if it was read within ``max_age`` seconds."""
        raise NotImplementedError

    async def read(self) -> T:
        """Read the value and keep it (so that :meth:`peek` finds it); return it."""
        raise NotImplementedError

    async def get(self) -> T:
        fresh = self.peek(self.ttl)
        if fresh is not None:
            return fresh
        loop = asyncio.get_running_loop()
        reading = self.reading
        if reading is None or reading.done() or reading.get_loop() is not loop:  # (a finished loop's)
            reading = self.reading = loop.create_task(self.read())
            reading.add_done_callback(self._done)
        last = self.peek(self.usable)
        if last is not None:
            return last
        return await asyncio.shield(reading)

    def _done(self, task: asyncio.Task[T]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:  # retrieved: the waiters have it
            log.debug("could not read %s: %s", self.what, exc)

    def cancel(self) -> None:
        """Stop this event loop's read in flight (at shutdown, before what it reads closes)."""
        reading = self.reading
        if reading is not None and not reading.done() and reading.get_loop() is asyncio.get_running_loop():
            reading.cancel()
