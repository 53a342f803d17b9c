"""vocalborn.redis_connect: the settings, the URLs Celery is given, and (marker ``faults``) real
clients following a real Sentinel failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
from pydantic import ValidationError

from tests.faults.sentinel import MASTER, SentinelGroup, sentinel_supported
from vocalborn.celery_app import celery_config
from vocalborn.config import Settings
from vocalborn.redis_connect import async_client, celery_url, client, describe, parse_sentinels


def test_sentinels_parse_and_bad_entries_are_named() -> None:
    assert parse_sentinels(" 10.0.0.1:26379, sentinel-2:26380 ,") == [("10.0.0.1", 26379), ("sentinel-2", 26380)]
    assert parse_sentinels(None) == [] and parse_sentinels("") == []
    for bad in ("host", "host:", ":26379", "host:port", "host:70000"):
        with pytest.raises(ValueError, match="REDIS_SENTINELS"):
            parse_sentinels(bad)
    with pytest.raises(ValidationError, match="not host:port"):
        Settings(redis_sentinels="sentinel-1")


def test_without_sentinels_nothing_changes() -> None:
    s = Settings(celery_broker_url="redis://:pw@h:6379/2", redis_sentinels=None)
    assert celery_url(s.effective_broker_url, s) == "redis://:pw@h:6379/2"
    conf = celery_config(s)
    assert conf["broker_url"] == "redis://:pw@h:6379/2"
    assert "master_name" not in conf["broker_transport_options"]
    assert describe(s) is None


def test_celery_goes_through_the_sentinel_transports() -> None:
    s = Settings(
        celery_broker_url="redis://:p%40ss@mymaster/0",
        celery_result_backend="redis://:p%40ss@mymaster/1",
        redis_sentinels="s1:26379,s2:26380,s3:26381",
        redis_sentinel_master="prod",
        broker_visibility_timeout=3900,
    )
    conf = celery_config(s)
    assert conf["broker_url"] == (
        "sentinel://:p%40ss@s1:26379/0;sentinel://:p%40ss@s2:26380/0;sentinel://:p%40ss@s3:26381/0"
    )
    assert conf["result_backend"].startswith("sentinel://:p%40ss@s1:26379/1;")
    for key in ("broker_transport_options", "result_backend_transport_options"):
        assert conf[key]["master_name"] == "prod"
        assert conf[key]["visibility_timeout"] == 3900  # the redelivery semantics stay
    assert conf["task_acks_late"] is True
    # the rest of the code still sees a Redis URL (it checks the scheme) naming db and password
    assert s.effective_redis_url.startswith("redis://")
    assert describe(s) == "sentinel prod via s1:26379, s2:26380, s3:26381"


def test_sentinels_alone_default_to_db_0_of_the_master() -> None:
    s = Settings(celery_broker_url=None, celery_result_backend=None, redis_url=None, redis_sentinels="s1:26379")
    assert s.effective_broker_url == "redis://mymaster/0"
    assert s.effective_redis_url == s.effective_broker_url == s.effective_result_backend


# --------------------------------------------------------------------------------------------
# a real failover
# --------------------------------------------------------------------------------------------
@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    if not sentinel_supported():
        pytest.skip("redis-server cannot run as a sentinel here")
    g = SentinelGroup()
    try:
        g.start()
        yield g
    finally:
        g.destroy()


@pytest.mark.faults
def test_clients_follow_a_failover(group: SentinelGroup) -> None:
    settings = Settings(redis_sentinels=group.sentinels, redis_sentinel_master=MASTER)
    sync = client(f"{group.url}/3", settings=settings, socket_timeout=2, socket_connect_timeout=2)
    sync.set("before", "1")
    # the URL's database, on the server the sentinels name
    assert group.direct().get("before") is None
    assert redis.Redis(port=group.ports[group.primary], db=3).get("before") == b"1"
    pubsub = sync.pubsub()
    pubsub.subscribe("chan")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"

    wait = time.monotonic() + 10
    while not group.replica_in_sync() and time.monotonic() < wait:
        time.sleep(0.1)
    _, promoted_after = group.kill_primary()

    # the same client object writes to the new primary (its port, not the old one)
    deadline = time.monotonic() + 15
    while True:
        try:
            sync.set("after", "2")
            break
        except redis.RedisError:
            assert time.monotonic() < deadline, "the client never reached the new primary"
            time.sleep(0.2)
    assert sync.get("before") == b"1"  # replicated before the kill
    assert sync.connection_pool.get_master_address()[1] == group.ports[group.primary]

    # pub/sub re-subscribes on the new primary
    got = None
    deadline = time.monotonic() + 15
    while got is None and time.monotonic() < deadline:
        try:
            sync.publish("chan", "hello")
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            got = message["data"] if message else None
        except redis.RedisError:
            time.sleep(0.2)
    assert got == b"hello"
    pubsub.close()
    sync.close()

    async def on_asyncio() -> bytes | None:
        a = async_client(f"{group.url}/3", settings=settings, socket_timeout=2)
        try:
            return await a.get("after")
        finally:
            await a.aclose()

    assert asyncio.run(on_asyncio()) == b"2"
    print(f"\nsentinel promoted the replica {promoted_after:.1f} s after the SIGKILL")


def test_the_app_connects_through_sentinel_even_with_the_celery_variables_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery prefers CELERY_BROKER_URL / CELERY_RESULT_BACKEND to its configuration; with
    sentinels they hold the redis:// URLs, and every connection must still be a sentinel one."""
    from vocalborn.celery_app import celery_app, create_celery_app

    monkeypatch.setenv("CELERY_BROKER_URL", "redis://:pw@mymaster/0")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://:pw@mymaster/1")
    app = create_celery_app(
        Settings(
            celery_broker_url="redis://:pw@mymaster/0",
            celery_result_backend="redis://:pw@mymaster/1",
            redis_sentinels="127.0.0.1:26379,127.0.0.1:26380",
        )
    )
    try:
        for conn in (app.connection_for_read(), app.connection_for_write(), app.connection()):
            assert conn.transport_cls == "sentinel" and conn.transport_options["master_name"] == "mymaster"
            assert type(conn.transport).__name__ == "SentinelTransport"  # ours: its close survives a failover
            assert type(conn.transport).__module__ == "vocalborn.redis_connect"
            assert conn.alt == ["sentinel://:pw@127.0.0.1:26379/0", "sentinel://:pw@127.0.0.1:26380/0"]
        assert type(app.backend).__name__ == "SentinelBackend"
    finally:
        celery_app.set_current()  # the new app made itself the current one
