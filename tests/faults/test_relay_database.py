"""The relay across a database outage (issue #25): a PostgreSQL of its own is stopped for 30 s
while events are being written and published, then started again. Every event committed
arrives once, in order per learner, at a durable pull consumer of a real nats-server (from the
wheel); the relay process is never restarted: it catches up by itself."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.events.support import NatsServer, check_exactly_once_in_order, consume, write_events
from tests.faults.harness import OwnPostgres
from tests.support import ServiceProcess, wait_until
from vocalborn.embedded import free_port

OUTAGE_SECONDS = float(os.environ.get("RELAY_FAULT_OUTAGE_SECONDS", "30"))


def test_the_database_stopped_for_a_while_loses_and_repeats_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    pg = OwnPostgres(free_port())
    nats_server = NatsServer(tmp_path / "nats-root").start()
    relay: ServiceProcess | None = None
    engine = None
    try:
        pg.start()
        env = {"DATABASE_URL": pg.url, "NATS_URL": nats_server.url, "DATA_DIR": str(tmp_path / "data")}
        subprocess.run(
            [sys.executable, "-m", "vocalborn.cli", "migrate"],
            env=dict(os.environ, **env),
            check=True,
            capture_output=True,
            timeout=120,
        )
        engine = create_engine(pg.url, pool_pre_ping=True, connect_args={"connect_timeout": 2})
        relay = ServiceProcess("relay", ["relay"], tmp_path, env).start()
        written: list[tuple[str, str]] = []
        writer = threading.Thread(
            target=lambda: written.extend(write_events(3000, learners=25, pause=0.004, per_commit=2, engine=engine))
        )
        writer.start()

        def sent() -> int:
            with engine.connect() as conn:  # type: ignore[union-attr]
                return int(
                    conn.execute(text("SELECT count(*) FROM event_outbox WHERE sent_at IS NOT NULL")).scalar_one()
                )

        wait_until(lambda: sent() > 300, 60, what="the relay to be under way")
        pg.stop()
        stopped = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        pg.start()
        outage = time.monotonic() - stopped
        writer.join(180)
        assert not writer.is_alive() and len(written) == 3000
        wait_until(lambda: sent() == 3000, 90, 0.2, "the relay to catch up after the outage")
        got = consume(nats_server.url, "test-db-outage", {e for e, _ in written}, timeout=60)
        check_exactly_once_in_order(written, got)
        assert len(got.messages) == 3000  # nothing but ours: the database is this test's own
        assert outage >= OUTAGE_SECONDS
        assert relay.proc is not None and relay.proc.poll() is None, "the relay died: " + relay.log()[-2000:]
        assert "the database is unavailable" in relay.log()  # it did see the outage
    finally:
        if relay is not None:
            relay.stop(10)
        if engine is not None:
            engine.dispose()
        nats_server.stop()
        pg.destroy()
