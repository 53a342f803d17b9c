"""Objects made once: per process (made again after a fork), or per process and event loop.

Written once here for every client, pool and batcher of the app: a forked child must not share
its parent's sockets, and an asyncio object cannot be used from another event loop (a test
client's loop, long gone, say).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """``make()``'s object, one per process: made on first use, made again in a forked child."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._made: tuple[int, T] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._made is None or self._made[0] != os.getpid():
                self._made = (os.getpid(), self._make())
            return self._made[1]


class PerLoop(Generic[T]):
    """One object per key in each process and event loop, made on first use. The key is the whole
    key: objects made from different arguments name them in it. Making one drops the objects of
    the same key made on other loops or in a parent process (they cannot run here)."""

    def __init__(self) -> None:
        self._made: dict[tuple[Hashable, int, int], T] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        here = (key, os.getpid(), id(asyncio.get_running_loop()))
        found = self._made.get(here)
        if found is None:
            for stale in [k for k in self._made if k[0] == key]:
                del self._made[stale]
            found = self._made[here] = make()
        return found

    def take_all(self) -> list[T]:
        """Forget every object; return those of this process and event loop (for closing: the
        others' loops can no longer run a close)."""
        try:
            here: tuple[int, int] | None = (os.getpid(), id(asyncio.get_running_loop()))
        except RuntimeError:
            here = None
        mine = [obj for (_, pid, loop), obj in self._made.items() if (pid, loop) == here]
        self._made.clear()
        return mine
