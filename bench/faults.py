"""Fault drills, long versions: hundreds of tasks per scenario on processes of our own.

    uv run python bench/faults.py                 # every scenario, 200 tasks each
    uv run python bench/faults.py -n 50 -s postgres_freeze -s poison_task

Starts a PostgreSQL cluster (initdb, free port) and a redis-server (AOF) of its own, the API,
Beat and workers with the drill engine (tests/faults/drill.py: the real worker pipeline, a fast
analysis), runs each scenario, and prints the table of docs/RELIABILITY.md. Needs the test
services' environment only for defaults (tests/services.py); it touches no shared database, Redis
key or queue. Bounded: each scenario waits at most --heal-timeout seconds, then counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The product's default timings (lease 30 s, republish after 60 s, ...) except where a drill
# needs a process of its own; SECRET_KEY and the like as in the test suite.
DEFAULTS = {
    "ENVIRONMENT": "test",
    "SECRET_KEY": "bench-faults-" + "x" * 40,
    "TASK_QUEUE": "ai_analysis",
    "MAINTENANCE_QUEUE": "vocalborn_maintenance",
    "WORKER_METRICS_PORT": "0",
    "LOG_LEVEL": "INFO",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--tasks", type=int, default=200, help="tasks per scenario (default 200)")
    parser.add_argument("-s", "--scenario", action="append", help="run only these (repeatable)")
    parser.add_argument("--heal-timeout", type=float, default=600.0, help="seconds to wait for healing")
    parser.add_argument("--fast-timings", action="store_true", help="the test suite's short lease/republish timings")
    args = parser.parse_args()

    for k, v in DEFAULTS.items():
        os.environ.setdefault(k, v)
    if args.fast_timings:
        from tests.services import ServicesUnderTest

        fast = ServicesUnderTest("bench", Path("."), "", "", "", "").env
        for k in (
            "TASK_HEARTBEAT_SECONDS",
            "TASK_LEASE_SECONDS",
            "REPUBLISH_AFTER_SECONDS",
            "REPUBLISH_INTERVAL_SECONDS",
            "REAPER_INTERVAL_SECONDS",
            "RETRY_BACKOFF_BASE",
            "RETRY_BACKOFF_MAX",
        ):
            os.environ[k] = fast[k]
    # the in-process settings (used only to build URLs) must not need a broker of their own
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")

    from tests.faults import scenarios
    from tests.faults.harness import Cluster, markdown_table

    chosen = args.scenario or list(scenarios.ALL)
    log_dir = Path(tempfile.mkdtemp(prefix="vb-bench-faults-"))
    cluster = Cluster(log_dir).start()
    cluster.beat()
    tallies = []
    try:
        for name in chosen:
            started = time.monotonic()
            n = min(args.tasks, 20) if name == "stalled_worker" else args.tasks
            tally = scenarios.ALL[name](cluster, n, args.heal_timeout)
            tallies.append(tally)
            print(f"{name}: {tally.row()} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        cluster.stop()
    print()
    print(markdown_table(tallies))
    print(f"\nlogs: {log_dir}")
    bad = [t for t in tallies if t.lost or t.duplicate_results or t.server_errors]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
