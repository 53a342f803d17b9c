"""The owner's status rows, remembered by each API process until the task's next event.

A waiting learner polls the status every second or two, and between two events of its task the
answer does not change. So ``fastpath.status`` keeps the row it read, per task, and answers the
next polls from memory, until one of these drops it:

* any event of that task: every state change is committed, then published on the events channel
  (``unit_of_work.transition``), and this process's hub receives every message of that channel;
  a change made in this process is also dropped at once, before its publish;
* for a task still waiting in the queue: any event that is not a progress report (a task started,
  finished or was requeued somewhere), since its position in the queue may have changed;
* the owner's erasure (``events.publish_forget_user``);
* age: ``TTL`` seconds at most, a bound for an event that was never published. A row still
  polled is read again in the background before that (``fastpath.status``: the first poll after
  a refresh age, drawn for each row between 40 % and 60 % of ``TTL`` so rows read together are
  not read again together, is answered from memory and starts the read), so a waiting client's
  polls keep being answered from memory: a poll that has to wait for the database waits for
  several turns of a busy event loop (measured under bench/api.py's load: a hit ~15 ms, a miss
  ~45 ms at p50 and ~120 ms at p99);
* the subscription itself: while the hub is not subscribed (starting, reconnecting) nothing is
  remembered or answered from memory, and a re-subscription forgets everything.

A read that raced with an event (read before the event's commit, stored after its message) is
not kept: every drop is numbered, and a row is only stored if no drop of its task (or of
everything) came after its read began.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

TTL = 5.0  # seconds: the longest a row is answered without an event having been seen
MAX_ENTRIES = 10_000  # ~1.2 KB each: ~12 MiB at most per API process
_TRACKED = 20_000  # recent drops remembered per task, for the race check


class Read(NamedTuple):
    """When a read from the database began: the drops seen so far, and the time."""

    seq: int
    at: float  # time.monotonic()


@dataclass(frozen=True)
class _Entry:
    user_id: uuid.UUID
    row: dict[str, Any]
    stored_at: float  # time.monotonic() when the read of this row began
    refresh_at: float  # the first lookup after this asks for a fresh read (once)
    waiting: bool


class StatusCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[uuid.UUID, _Entry] = OrderedDict()
        self._waiting: set[uuid.UUID] = set()
        self._dropped: OrderedDict[uuid.UUID, int] = OrderedDict()  # task -> number of its last drop
        self._seq = 0  # drops so far
        self._floor = 0  # drops of everything (or forgotten history) happened up to here
        self.live = False  # the hub is subscribed: events are being seen
        self.hits = 0

    # --- reading -----------------------------------------------------------------------------
    def begin(self) -> Read:
        """Call before reading a row from the database; pass what it returns to ``put``."""
        with self._lock:
            return Read(self._seq, time.monotonic())

    def get(self, task_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
        return self.lookup(task_id, user_id)[0]

    def lookup(self, task_id: uuid.UUID, user_id: uuid.UUID) -> tuple[dict[str, Any] | None, bool]:
        """The remembered row (or None), and whether the caller should read it again now (True
        for one lookup once the row has reached its refresh age)."""
        if not self.live:
            return None, False
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is None or entry.user_id != user_id:
                return None, False
            now = time.monotonic()
            if now - entry.stored_at > TTL:
                self._remove(task_id)
                return None, False
            self.hits += 1
            due = now >= entry.refresh_at
            if due:  # the others go on being answered while this caller reads
                self._entries[task_id] = replace(entry, refresh_at=math.inf)
            return entry.row, due

    def put(self, task_id: uuid.UUID, user_id: uuid.UUID, row: dict[str, Any], began: Read, waiting: bool) -> None:
        """Remember ``row``, read from the database after ``began``; its age counts from then."""
        if not self.live:
            return
        with self._lock:
            if began.seq < self._floor or self._dropped.get(task_id, -1) > began.seq:
                return  # an event (or a reset) came after the read began: the row may be stale
            kept = self._entries.get(task_id)
            if kept is not None and kept.stored_at > began.at:
                return  # a read that began later is remembered already (a slow refresh, a faster miss)
            refresh_at = began.at + TTL * random.uniform(0.4, 0.6)
            self._entries[task_id] = _Entry(user_id, row, began.at, refresh_at, waiting)
            self._entries.move_to_end(task_id)
            if waiting:
                self._waiting.add(task_id)
            while len(self._entries) > MAX_ENTRIES:
                oldest, _ = self._entries.popitem(last=False)
                self._waiting.discard(oldest)

    # --- dropping ----------------------------------------------------------------------------
    def drop(self, task_id: uuid.UUID, *, queue_moved: bool) -> None:
        """An event of ``task_id``; ``queue_moved``: it may change other tasks' queue positions."""
        with self._lock:
            self._seq += 1
            self._dropped[task_id] = self._seq
            self._dropped.move_to_end(task_id)
            while len(self._dropped) > _TRACKED:
                _, forgotten = self._dropped.popitem(last=False)
                self._floor = max(self._floor, forgotten)
            self._remove(task_id)
            if queue_moved:
                for waiting in tuple(self._waiting):
                    self._remove(waiting)

    def drop_user(self, user_id: uuid.UUID) -> None:
        with self._lock:
            self._seq += 1
            self._floor = self._seq  # rows being read now are not kept either
            for task_id in [t for t, e in self._entries.items() if e.user_id == user_id]:
                self._remove(task_id)

    def clear(self) -> None:
        with self._lock:
            self._seq += 1
            self._floor = self._seq
            self._entries.clear()
            self._waiting.clear()

    def set_live(self, live: bool) -> None:
        """The hub's subscription came up (True) or went away (False): forget everything."""
        self.clear()
        self.live = live

    def _remove(self, task_id: uuid.UUID) -> None:
        self._entries.pop(task_id, None)
        self._waiting.discard(task_id)

    def __len__(self) -> int:
        return len(self._entries)


CACHE = StatusCache()


def message_dropped(message: dict[str, Any]) -> None:
    """Apply one message of the events channel (the hub calls this for every message)."""
    user = message.get("forget_user")
    if user is not None:
        try:
            CACHE.drop_user(uuid.UUID(str(user)))
        except ValueError:
            CACHE.clear()
        return
    try:
        task_id = uuid.UUID(str(message["task_id"]))
    except (KeyError, ValueError):
        return
    CACHE.drop(task_id, queue_moved=message.get("event_type") != "progress")
