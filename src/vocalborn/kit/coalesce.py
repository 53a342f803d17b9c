"""Coalescing: the requests of a moment share one round trip.

A :class:`Coalescer` takes items from many coroutines and hands them to ``run`` in batches:
whatever arrived while the batches in flight were running goes in the next one (up to
``max_batch``), at most ``in_flight`` batches at once. Nothing waits to fill a batch: an item
arriving at an idle coalescer runs at once, alone. Under load the batches grow by themselves.

``run(items)`` returns one result per item, in order. If it raises, every item of the batch
gets the exception; if the exception is one of ``fail_all`` (a frozen or unreachable database:
the next batch would wait just as long), every item still queued gets it too, at once, instead
of each waiting its own deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from vocalborn.kit.singletons import PerLoop

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 64,
        in_flight: int = 1,
        fail_all: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.run, self.max_batch, self.in_flight, self.fail_all = run, max_batch, in_flight, fail_all
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0  # run so far, and the largest: for tests and benchmarks
        self.largest = 0

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start()
        return await future

    def _start(self) -> None:
        while self._queue and len(self._running) < self.in_flight:
            batch = [(i, f) for i, f in self._queue[: self.max_batch] if not f.done()]
            del self._queue[: self.max_batch]
            if batch:
                task = asyncio.get_running_loop().create_task(self._batch(batch))
                self._running.add(task)

    async def _batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        try:
            results = await self.run([i for i, _ in batch])
        except asyncio.CancelledError:
            for _, f in batch:
                f.cancel()
            raise
        except Exception as exc:
            failed = batch
            if isinstance(exc, self.fail_all):
                failed, self._queue = batch + self._queue, []
            for _, f in failed:
                if not f.done():
                    f.set_exception(exc)
        else:
            for (_, f), result in zip(batch, results, strict=True):
                if not f.done():
                    f.set_result(result)
        finally:
            self._running.discard(asyncio.current_task())
            self._start()


_COALESCERS: PerLoop[Any] = PerLoop()


def per_loop(name: Hashable, make: Callable[[], Coalescer[T, R]]) -> Coalescer[T, R]:
    """The coalescer ``name`` of this process and event loop (made on first use). ``name`` is
    the whole key: a coalescer made from arguments names them (``("submit", sql)``), so two
    callers with different arguments never share one."""
    found: Coalescer[T, R] = _COALESCERS.get(name, make)
    return found
