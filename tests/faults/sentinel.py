"""A Redis Sentinel deployment of our own on free loopback ports: one primary, one replica and
three sentinels (quorum 2), each a real redis-server process, so the primary can be SIGKILLed
without touching the machine's services."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from tests.support import wait_until

MASTER = "mymaster"
DOWN_AFTER_MS = 1000  # a primary silent this long is down for a sentinel (production: 5000)


def redis_binary() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        with contextlib.suppress(RuntimeError):
            from vocalborn.embedded import redis_server_binary

            binary = redis_server_binary()
    return binary


def sentinel_supported() -> bool:
    """redis-server runs as a sentinel (Debian's redis-sentinel is the same binary)."""
    binary = redis_binary()
    if binary is None:
        return False
    # Without a config file a sentinel refuses to start, and says so: proof it is one.
    done = subprocess.run([binary, "--sentinel", "--port", "0"], capture_output=True, timeout=10)
    return b"Sentinel needs config file" in done.stdout + done.stderr


class SentinelGroup:
    """``start`` / ``destroy`` / ``url`` like harness.OwnRedis, plus ``env`` (the REDIS_SENTINELS
    setting) and ``kill_primary``."""

    def __init__(self) -> None:
        from vocalborn.embedded import free_port

        self.dir = Path(tempfile.mkdtemp(prefix="vb-sentinel-"))
        self.ports = {"a": free_port(), "b": free_port()}
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.primary = "a"

    # the app's view: the master's name stands where a host would
    @property
    def url(self) -> str:
        return f"redis://{MASTER}"

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def env(self) -> dict[str, str]:
        return {"REDIS_SENTINELS": self.sentinels, "REDIS_SENTINEL_MASTER": MASTER}

    def _spawn(self, name: str, args: list[str]) -> None:
        binary = redis_binary()
        assert binary is not None
        self.procs[name] = subprocess.Popen(
            [binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    def _server(self, name: str, replica_of: int | None = None) -> None:
        data = self.dir / name
        data.mkdir(exist_ok=True)
        args = [
            "--port",
            str(self.ports[name]),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(data / "redis.log"),
        ]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self._spawn(name, args)

    def start(self) -> None:
        self._server("a")
        self._wait_ping(self.ports["a"])
        self._server("b", replica_of=self.ports["a"])
        self._wait_ping(self.ports["b"])
        for i, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel-{i}.conf"  # the sentinel rewrites it: a file of its own
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\nlogfile {self.dir}/sentinel-{i}.log\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.ports['a']} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self._spawn(f"sentinel-{i}", [str(conf), "--sentinel"])
        for port in self.sentinel_ports:
            self._wait_ping(port)

        def ready() -> bool:
            # every sentinel knows the replica and the two other sentinels; the replica is in sync
            for port in self.sentinel_ports:
                s = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
                try:
                    if len(s.sentinel_slaves(MASTER)) < 1 or len(s.sentinel_sentinels(MASTER)) < 2:
                        return False
                except redis.RedisError:
                    return False
                finally:
                    s.close()
            return self.replica_in_sync()

        wait_until(ready, 60, 0.2, "the sentinels to know the replica and each other")

    def _wait_ping(self, port: int) -> None:
        client = redis.Redis(port=port, socket_connect_timeout=0.5)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(up, 15, 0.05, f"redis on {port} to answer")
        finally:
            client.close()

    def replica_in_sync(self) -> bool:
        replica = "b" if self.primary == "a" else "a"
        client = redis.Redis(port=self.ports[replica], socket_timeout=1, decode_responses=True)
        try:
            info: dict[str, Any] = client.info("replication")
            return info.get("role") == "slave" and info.get("master_link_status") == "up"
        except redis.RedisError:
            return False
        finally:
            client.close()

    def master_port(self) -> int | None:
        """The primary's port as the sentinels (a majority) name it now."""
        seen: list[int] = []
        for port in self.sentinel_ports:
            s = redis.Redis(port=port, socket_timeout=1)
            try:
                addr = s.sentinel_get_master_addr_by_name(MASTER)
                if addr:
                    seen.append(int(addr[1]))
            except redis.RedisError:
                pass
            finally:
                s.close()
        for port in set(seen):
            if seen.count(port) >= 2:
                return port
        return None

    def direct(self, which: str | None = None) -> redis.Redis:
        """A plain client of the primary (or of server ``which``)."""
        return redis.Redis(port=self.ports[which or self.primary], socket_timeout=2)

    def kill_primary(self) -> tuple[float, float]:
        """SIGKILL the primary; wait until the sentinels name the replica. Returns (the time of the
        kill, seconds until the promotion was visible)."""
        old = self.primary
        new = "b" if old == "a" else "a"
        proc = self.procs[old]
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: self.master_port() == self.ports[new], 60, 0.05, "the sentinels to promote the replica")
        self.primary = new
        return killed, time.monotonic() - killed

    def destroy(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
