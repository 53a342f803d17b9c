"""Container healthchecks that mean something, without a broker round trip.

    python -m vocalborn.healthcheck worker [--hostname NAME] [--max-age S]
    python -m vocalborn.healthcheck beat [--max-age S]
    python -m vocalborn.healthcheck http URL [--timeout S]

``worker``: the worker's main process refreshes its key in the worker registry (Redis, TTL 30 s)
from the moment it is ready until it shuts down; the check passes only if a key for this host is
there and fresh. Unlike ``celery inspect ping`` it needs no broker round trip and no reply from a
busy pool, and it fails when the worker cannot reach Redis, without which it cannot report
progress either.

``beat``: Celery beat syncs its schedule file every few minutes while it ticks; the check passes
while that file is younger than ``--max-age``.

``http``: a GET that must answer 2xx (the API's ``/health/ready``, Flower's ``/healthcheck``);
the slim images have no curl.

Exit status 0 means healthy, 1 unhealthy (with one line on stderr saying why).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from vocalborn.config import get_settings


class Unhealthy(Exception):
    pass


def check_worker(hostname: str | None = None, max_age: float = 30.0) -> str:
    """A fresh registry entry for ``hostname`` (default: any node name ending in ``@<this host>``)."""
    import redis

    settings = get_settings()
    host = socket.gethostname()
    pattern = f"{settings.redis_key_prefix}workers:{hostname or '*@' + host}"
    try:
        from vocalborn.redis_connect import client as redis_client  # reason: a probe: only what it reads

        client = redis_client(settings.effective_redis_url, socket_timeout=3, socket_connect_timeout=3)
        try:
            keys = list(client.scan_iter(match=pattern, count=200))
            values = client.mget(keys) if keys else []
        finally:
            client.close()
    except redis.RedisError as exc:
        raise Unhealthy(f"cannot read the worker registry: {type(exc).__name__}: {exc}") from exc
    now = time.time()
    fresh = []
    for raw in values:
        if not raw:
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if now - float(entry.get("seen", 0)) <= max_age:
            fresh.append(str(entry.get("hostname")))
    if not fresh:
        raise Unhealthy(f"no worker registered as {pattern.split('workers:', 1)[1]} in the last {max_age:.0f} s")
    return "worker alive: " + ", ".join(sorted(fresh))


def check_beat(max_age: float = 600.0, schedule: Path | None = None) -> str:
    """Beat's schedule file (whatever suffix the dbm backend adds) was written recently."""
    base = schedule or get_settings().data_dir / "celerybeat-schedule"
    files = [p for p in base.parent.glob(base.name + "*") if p.is_file()]
    if not files:
        raise Unhealthy(f"no beat schedule file at {base}")
    age = time.time() - max(p.stat().st_mtime for p in files)
    if age > max_age:
        raise Unhealthy(f"beat schedule not written for {age:.0f} s (limit {max_age:.0f} s)")
    return f"beat alive: schedule written {age:.0f} s ago"


def check_relay(max_age: float = 60.0) -> str:
    """The events relay's heartbeat file was touched recently (after each round that reached the
    database and, with rows to send, NATS)."""
    # reason: a probe runs every few seconds: each check loads only what it reads
    from vocalborn.events.relay import heartbeat_path  # reason: each probe loads only what it reads

    path = heartbeat_path()
    if not path.exists():
        raise Unhealthy(f"no relay heartbeat at {path}")
    age = time.time() - path.stat().st_mtime
    if age > max_age:
        raise Unhealthy(f"the relay has not completed a round for {age:.0f} s (limit {max_age:.0f} s)")
    return f"relay alive: last round {age:.0f} s ago"


def check_consumers(max_age: float = 60.0, names: Sequence[str] = ()) -> str:
    """Every event consumer this process family runs (or the ones named, for a process started as
    ``vocalborn consume NAME``) touched its heartbeat recently (after each fetch round while bound
    to NATS)."""
    # reason: a probe runs every few seconds: each check loads only what it reads
    from vocalborn.events.consumer import heartbeat_path, load_consumers  # reason: each probe loads only what it reads

    known = load_consumers()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise Unhealthy(f"no consumer named {', '.join(unknown)} (known: {', '.join(known)})")
    ages = {}
    for name in names or known:
        path = heartbeat_path(name)
        if not path.exists():
            raise Unhealthy(f"no heartbeat of the consumer {name} at {path}")
        ages[name] = time.time() - path.stat().st_mtime
        if ages[name] > max_age:
            raise Unhealthy(f"the consumer {name} has not fetched for {ages[name]:.0f} s (limit {max_age:.0f} s)")
    return "consumers alive: " + ", ".join(f"{n} {a:.0f} s ago" for n, a in ages.items())


def check_http(url: str, timeout: float = 5.0) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - operator-given URL
            status = response.status
    except urllib.error.HTTPError as exc:
        raise Unhealthy(f"{url} answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise Unhealthy(f"{url} unreachable: {exc}") from exc
    if not 200 <= status < 300:
        raise Unhealthy(f"{url} answered {status}")
    return f"{url} answered {status}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vocalborn.healthcheck", description="Container healthchecks (exit 0 healthy, 1 not)."
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    w = sub.add_parser("worker", help="this host's worker is registered and fresh (no broker round trip)")
    w.add_argument("--hostname", help="node name or glob (default: *@<this host>)")
    w.add_argument("--max-age", type=float, default=30.0, help="seconds since the last refresh (default 30)")
    b = sub.add_parser("beat", help="beat's schedule file was written recently")
    b.add_argument("--max-age", type=float, default=600.0, help="seconds (default 600)")
    r = sub.add_parser("relay", help="the events relay completed a round recently")
    r.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    c = sub.add_parser("consumers", help="every event consumer fetched recently")
    c.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    c.add_argument("names", nargs="*", help="only these consumers (default: every registered one)")
    h = sub.add_parser("http", help="GET a URL; healthy on 2xx")
    h.add_argument("url")
    h.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        if args.kind == "worker":
            message = check_worker(args.hostname, args.max_age)
        elif args.kind == "beat":
            message = check_beat(args.max_age)
        elif args.kind == "relay":
            message = check_relay(args.max_age)
        elif args.kind == "consumers":
            message = check_consumers(args.max_age, args.names)
        else:
            message = check_http(args.url, args.timeout)
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a settings error, an import error: unhealthy, and say why
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
