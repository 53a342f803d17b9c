"""docker-compose.sentinel.yml on top of the main file: valid, one primary, one replica and three
sentinels, every vocalborn process pointed at the sentinels, and the configs the services render
at start accepted by a real redis-server (as a server and as a sentinel)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.deploy.conftest import Compose, real_secrets
from tests.deploy.test_compose import APP_SERVICES, published_ips
from tests.faults.sentinel import redis_binary, sentinel_supported
from tests.support import wait_until
from vocalborn.celery_app import celery_config
from vocalborn.config import Settings
from vocalborn.redis_connect import parse_sentinels

SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")


def resolved(compose: Compose, env: dict[str, str]) -> dict[str, Any]:
    done = compose.config(env, sentinel=True)
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout))


def test_the_sentinel_override_validates_and_points_every_process_at_the_sentinels(compose: Compose) -> None:
    env = real_secrets()
    services = resolved(compose, env)["services"]
    assert {"redis", "redis-replica", *SENTINELS, *APP_SERVICES} <= services.keys()
    password = env["REDIS_PASSWORD"]
    for name in APP_SERVICES:
        app = services[name]["environment"]
        assert [h for h, _ in parse_sentinels(app["REDIS_SENTINELS"])] == list(SENTINELS), name
        assert app["REDIS_SENTINEL_MASTER"] == "mymaster", name
        assert app["CELERY_BROKER_URL"] == f"redis://:{password}@mymaster/0", name
        assert app["CELERY_RESULT_BACKEND"] == f"redis://:{password}@mymaster/1", name
        assert app["REDIS_URL"] == app["CELERY_BROKER_URL"], name
        if name != "migrate":
            for sentinel in SENTINELS:
                assert services[name]["depends_on"][sentinel]["condition"] == "service_healthy", name
    # what a worker makes of its environment: Celery on the sentinel:// transport
    worker = services["worker"]["environment"]
    conf = celery_config(
        Settings(
            celery_broker_url=worker["CELERY_BROKER_URL"],
            celery_result_backend=worker["CELERY_RESULT_BACKEND"],
            redis_url=worker["REDIS_URL"],
            redis_sentinels=worker["REDIS_SENTINELS"],
            redis_sentinel_master=worker["REDIS_SENTINEL_MASTER"],
        )
    )
    assert conf["broker_url"].split(";")[0] == f"sentinel://:{password}@sentinel-1:26379/0"
    assert conf["broker_transport_options"]["master_name"] == "mymaster"
    # nothing of Redis is published on the host; the replica follows the primary's alias
    for name in ("redis", "redis-replica", *SENTINELS):
        assert not services[name].get("ports"), name
        assert not published_ips(services[name]), name
    assert "redis-primary" in services["redis"]["networks"]["default"]["aliases"]
    assert services["redis-replica"]["environment"]["REDIS_REPLICA_OF"] == "redis-primary"
    # each sentinel keeps its state (current primary, epoch) in a volume of its own
    volumes = {str(services[s]["volumes"][0]).split(":")[0] for s in SENTINELS}
    assert len(volumes) == 3


def _render(script: str, env: dict[str, str], data: Path) -> Path:
    """Run a service's start script up to its `exec`, with /data in a temporary folder."""
    body = script.replace("$$", "$").replace("/data", str(data)).split("\nexec ")[0]
    subprocess.run(["sh", "-c", body], env={**env, "PATH": os.environ["PATH"]}, check=True, timeout=10)
    return data


def test_the_rendered_configs_start_a_real_primary_and_sentinel(compose: Compose) -> None:
    if not sentinel_supported():
        pytest.skip("redis-server cannot run as a sentinel here")
    from vocalborn.embedded import free_port

    env = real_secrets()
    services = resolved(compose, env)["services"]
    binary = redis_binary()
    assert binary is not None
    with tempfile.TemporaryDirectory() as tmp:
        server_dir, sentinel_dir = Path(tmp, "server"), Path(tmp, "sentinel")
        server_dir.mkdir()
        sentinel_dir.mkdir()
        primary = services["redis"]
        _render(primary["command"][2], {k: str(v) for k, v in primary["environment"].items()}, server_dir)
        sentinel = services["sentinel-1"]
        _render(sentinel["command"][2], {k: str(v) for k, v in sentinel["environment"].items()}, sentinel_dir)
        conf = (sentinel_dir / "sentinel.conf").read_text()
        assert "sentinel monitor mymaster redis-primary 6379 2" in conf
        # loopback stand-ins for the compose names
        port, sentinel_port = free_port(), free_port()
        (sentinel_dir / "sentinel.conf").write_text(
            conf.replace("redis-primary 6379", f"127.0.0.1 {port}")
            .replace("port 26379", f"port {sentinel_port}")
            .replace("announce-ip sentinel-1", "announce-ip 127.0.0.1")
        )
        procs = [
            subprocess.Popen(
                [binary, str(server_dir / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [binary, str(sentinel_dir / "sentinel.conf"), "--sentinel", "--bind", "127.0.0.1"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            password = env["REDIS_PASSWORD"]
            server = redis.Redis(port=port, password=password, socket_timeout=2)
            wait_until(lambda: _answers(server), 15, 0.1, "the rendered primary to answer")
            with pytest.raises(redis.ResponseError):
                server.execute_command("CONFIG", "GET", "maxmemory")  # renamed away
            reply = server.execute_command(f"config-{password}", "GET", "maxmemory-policy")
            values = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
            assert values[b"maxmemory-policy"] == b"noeviction"
            watcher = redis.Redis(port=sentinel_port, socket_timeout=2, decode_responses=True)

            def sees_the_primary() -> bool:
                try:
                    master = watcher.sentinel_master("mymaster")
                except redis.RedisError:
                    return False
                return int(master["port"]) == port and "s_down" not in master["flags"]

            wait_until(sees_the_primary, 20, 0.2, "the rendered sentinel to monitor the primary with its password")
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_no_secret_is_written_into_the_override() -> None:
    """Every password comes from .env through a required interpolation."""
    from tests.deploy.conftest import COMPOSE_SENTINEL

    lines = [line.strip() for line in COMPOSE_SENTINEL.read_text().splitlines()]
    given = [line for line in lines if line.startswith("REDIS_PASSWORD:")]
    assert given and all(line.endswith("${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}") for line in given), given
    assert all("@" not in line or "${REDIS_PASSWORD:?" in line for line in lines if "redis://" in line)
