"""The relay's JetStream publishes (``events/relay.py``): a wave of rows pipelined on the one core
NATS connection, each with its reply subject, and the acknowledgements gathered per wave.

nats-py's ``js.publish_async`` does the same one message at a time, but it awaits a semaphore
through ``asyncio.wait_for`` before each message: the event loop runs between two messages, and
the client's flusher writes each one to the socket on its own (one system call, and one wake-up
of nats-server, per event). Here a wave's messages are queued without giving the loop a turn, so
the flusher writes the whole wave at once; JetStream still stores and acknowledges each message on
its own (its ``Nats-Msg-Id`` header is the event's id), and a row counts as published only once its
acknowledgement came back (``{"stream": ..., "seq": ...}``, with ``"duplicate": true`` when the
stream's duplicate window dropped a copy)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vocalborn.events.catalogue import SUBJECT_PREFIX
from vocalborn.events.outbox_store import Row


class PublishRefused(Exception):
    """JetStream answered a publish with an error (or no stream listens on the subject)."""


@dataclass
class _Wave:
    left: int
    done: asyncio.Future[None]
    failures: dict[int, BaseException] = field(default_factory=dict)  # seq -> why
    acked: set[int] = field(default_factory=set)
    duplicates: int = 0


class WavePublisher:
    """Publishes waves of rows on ``nc`` (a connected nats-py client) and gathers their acks."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox() + "."
        self.sub: Any = None
        self._waiting: dict[str, tuple[_Wave, int]] = {}  # reply token -> (wave, seq)
        self._round = 0

    async def start(self) -> None:
        self.sub = await self.nc.subscribe(self.prefix + "*", cb=self._on_ack)

    async def _on_ack(self, msg: Any) -> None:
        entry = self._waiting.pop(msg.subject[len(self.prefix) :], None)
        if entry is None:
            return  # a wave that already gave up on it: the row goes out again, as a duplicate
        wave, seq = entry
        failure: BaseException | None = None
        try:
            answer = json.loads(msg.data) if msg.data else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "error" in answer:
            status = msg.headers.get("Status") if msg.headers else None
            detail = answer.get("error") if isinstance(answer, dict) else f"status {status}, body {msg.data[:200]!r}"
            failure = PublishRefused(f"JetStream refused the publish: {detail}")
        if failure is not None:
            wave.failures[seq] = failure
        else:
            wave.acked.add(seq)
            wave.duplicates += bool(answer and answer.get("duplicate"))
        wave.left -= 1
        if wave.left == 0 and not wave.done.done():
            wave.done.set_result(None)

    async def publish_wave(self, rows: Sequence[Row], timeout: float) -> tuple[set[int], dict[int, BaseException], int]:
        """Publish ``rows`` (at most one per ordering key) and wait up to ``timeout`` for their
        acks: the seqs acknowledged, the failures by seq (a row neither acknowledged nor refused
        in time failed with TimeoutError), and how many were duplicates. Raises only when the
        connection refused the messages themselves (closed): nothing of the wave counts then."""
        self._round += 1
        wave = _Wave(left=len(rows), done=asyncio.get_running_loop().create_future())
        tokens = [f"{self._round}-{r.seq}" for r in rows]
        for token, row in zip(tokens, rows, strict=True):
            self._waiting[token] = (wave, row.seq)
        try:
            publish = self.nc.publish
            for token, row in zip(tokens, rows, strict=True):  # no await that yields: one write
                await publish(
                    SUBJECT_PREFIX + row.event_type,
                    row.body,
                    reply=self.prefix + token,
                    headers={"Nats-Msg-Id": row.event_id},
                )
            if rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(wave.done), timeout)
        finally:
            for token in tokens:
                self._waiting.pop(token, None)
        for row in rows:
            if row.seq not in wave.acked and row.seq not in wave.failures:
                wave.failures[row.seq] = TimeoutError(f"no acknowledgement from JetStream within {timeout} s")
        return wave.acked, wave.failures, wave.duplicates
