"""The fault scenarios, each a function of (cluster, number of tasks) -> Tally.

tests/faults runs them short (a dozen tasks, CI); bench/faults.py runs them long (hundreds).
Each starts the workers it needs and stops them before returning; the cluster (PostgreSQL,
Redis, API, Beat) is shared and left running (restarted if the scenario stopped it).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable

import httpx

from tests.faults.harness import Cluster, Poller, Tally
from tests.support import WorkerProcess, wait_until

STEP = "0.05"  # ANALYSIS_STEP_DELAY_SECONDS: five steps, ~0.25 s a task, so faults land mid-run


def _stop(workers: list[WorkerProcess], cluster: Cluster) -> None:
    for w in workers:
        w.stop(timeout=15)
        if w in cluster.processes:
            cluster.processes.remove(w)


def _running(cluster: Cluster, task_ids: list[str], at_least: int = 1, timeout: float = 30) -> None:
    def some() -> bool:
        got = cluster.outcomes(task_ids)
        return sum(1 for s, _, _ in got.values() if s in ("processing", "success")) >= at_least

    wait_until(some, timeout, 0.1, "tasks to be running")


def pool_child_sigkill(cluster: Cluster, n: int, heal_timeout: float = 120) -> Tally:
    tally = Tally("pool child SIGKILL")
    w = cluster.worker("childkill", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP)
    learner, records, _ = cluster.learners(n)
    tasks = cluster.submit_all(learner, records, tally)
    poller = Poller(cluster, learner, tasks)
    poller.start()
    kills = max(2, n // 20)
    for _ in range(kills):
        _running(cluster, tasks)
        children = cluster.worker_children(w)
        if children:
            os.kill(random.choice(children), signal.SIGKILL)
        time.sleep(0.5)
    ended = time.monotonic()
    cluster.settle(tasks, ended, heal_timeout, tally)
    poller.stop()
    _stop([w], cluster)
    return tally


def node_sigkill(cluster: Cluster, n: int, heal_timeout: float = 120) -> Tally:
    tally = Tally("node SIGKILL")
    # The product's long time limits: a message the victim had taken but not started must come
    # back because its holder is dead, not because its reservation grew older than the limit.
    limits = {"TASK_TIME_LIMIT": "360", "TASK_SOFT_TIME_LIMIT": "300", "BROKER_VISIBILITY_TIMEOUT": "3900"}
    victim = cluster.worker("victim", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP, **limits)
    learner, records, _ = cluster.learners(n)
    tasks = cluster.submit_all(learner, records, tally)
    poller = Poller(cluster, learner, tasks)
    poller.start()
    _running(cluster, tasks)
    victim.kill()
    cluster.processes.remove(victim)
    ended = time.monotonic()
    rescuer = cluster.worker("rescuer", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP, **limits)
    cluster.settle(tasks, ended, heal_timeout, tally)
    poller.stop()
    _stop([rescuer], cluster)
    return tally


def node_sigterm(cluster: Cluster, n: int, heal_timeout: float = 120) -> Tally:
    tally = Tally("node SIGTERM")
    first = cluster.worker("term", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP)
    learner, records, _ = cluster.learners(n)
    tasks = cluster.submit_all(learner, records, tally)
    poller = Poller(cluster, learner, tasks)
    poller.start()
    _running(cluster, tasks)
    first.stop(timeout=30)  # SIGTERM: warm shutdown, the running tasks finish or are requeued
    cluster.processes.remove(first)
    ended = time.monotonic()
    second = cluster.worker("after-term", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP)
    cluster.settle(tasks, ended, heal_timeout, tally)
    poller.stop()
    _stop([second], cluster)
    return tally


def redis_sigkill_aof(cluster: Cluster, n: int, heal_timeout: float = 120) -> Tally:
    tally = Tally("Redis SIGKILL + restart (AOF)")
    w = cluster.worker("redis-kill", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP)
    learner, records, _ = cluster.learners(n)
    tasks = cluster.submit_all(learner, records, tally)
    poller = Poller(cluster, learner, tasks)
    poller.start()
    _running(cluster, tasks)
    cluster.redis.kill()
    time.sleep(2)
    cluster.redis.start()  # same port, same directory: the AOF is replayed
    ended = time.monotonic()
    cluster.settle(tasks, ended, heal_timeout, tally)
    poller.stop()
    _stop([w], cluster)
    return tally


def _db_outage(
    name: str, begin: Callable[[Cluster], None], end: Callable[[Cluster], None], seconds: float
) -> Callable[[Cluster, int, float], Tally]:
    def scenario(cluster: Cluster, n: int, heal_timeout: float = 120) -> Tally:
        tally = Tally(name)
        w = cluster.worker("db-outage", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP)
        learner, records, _ = cluster.learners(n)
        half = len(records) // 2
        tasks = cluster.submit_all(learner, records[:half], tally)
        poller = Poller(cluster, learner, tasks)
        poller.start()
        _running(cluster, tasks)
        begin(cluster)
        assert cluster.client is not None
        # requests during the outage: each answers (503 JSON) within 5 s, none hangs; a status
        # poll, a submit and a login in turn (each needs the database)
        slowest = 0.0
        outage_end = time.monotonic() + seconds
        asks = [
            lambda: cluster.client.get(f"/api/v1/tasks/analysis/{tasks[0]}/status", headers=learner["headers"]),
            lambda: cluster.api.submit(learner, records[half]),
            lambda: cluster.client.post(
                "/api/v1/auth/login", data={"username": learner["email"], "password": "correct-horse-1"}
            ),
        ]
        k = 0
        while time.monotonic() < outage_end:
            started = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):  # counted by the client as dropped
                asks[k % len(asks)]()
            slowest = max(slowest, time.monotonic() - started)
            k += 1
            time.sleep(0.2)
        end(cluster)
        ended = time.monotonic()
        tasks += cluster.submit_all(learner, records[half:], tally)
        poller.task_ids[:] = tasks
        cluster.settle(tasks, ended, heal_timeout, tally)
        poller.stop()
        tally.slowest_request = max(slowest, poller.slowest)  # type: ignore[attr-defined]
        _stop([w], cluster)
        return tally

    return scenario


postgres_stop = _db_outage("PostgreSQL stopped", lambda c: c.pg.stop(), lambda c: c.pg.start(), 8)
postgres_freeze = _db_outage("PostgreSQL frozen (SIGSTOP)", lambda c: c.pg.freeze(), lambda c: c.pg.thaw(), 10)


def broker_down_at_submit(cluster: Cluster, n: int, heal_timeout: float = 120) -> Tally:
    tally = Tally("broker down at submit")
    learner, records, _ = cluster.learners(n)
    cluster.redis.stop()
    tasks = cluster.submit_all(learner, records, tally)  # accepted: pending in the database
    cluster.redis.start()
    ended = time.monotonic()
    w = cluster.worker("after-broker", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP)
    cluster.settle(tasks, ended, heal_timeout, tally)
    _stop([w], cluster)
    return tally


def poison_task(cluster: Cluster, n: int, heal_timeout: float = 120) -> Tally:
    tally = Tally("poison task (kills its child every delivery)")
    learner, records, poison = cluster.learners(n, poison=1)
    w = cluster.worker(
        "poisoned", concurrency=2, ANALYSIS_STEP_DELAY_SECONDS=STEP, DRILL_POISON_SHA256=",".join(poison)
    )
    started = time.monotonic()
    tasks = cluster.submit_all(learner, records, tally)
    cluster.settle(tasks, started, heal_timeout, tally)
    _stop([w], cluster)
    return tally


def stalled_worker(cluster: Cluster, n: int, heal_timeout: float = 120) -> Tally:
    """A worker frozen (SIGSTOP) mid-task for longer than its lease and the broker's visibility
    timeout: another worker takes the task over; the frozen one, thawed, writes nothing."""
    tally = Tally("stalled worker past the visibility timeout")
    short = {"ANALYSIS_STEP_DELAY_SECONDS": "0.5", "BROKER_VISIBILITY_TIMEOUT": "8", "TASK_TIME_LIMIT": "6"}
    stalled = cluster.worker("stalled", concurrency=1, **short)
    learner, records, _ = cluster.learners(n)
    tasks = cluster.submit_all(learner, records, tally)
    _running(cluster, tasks)
    assert stalled.proc is not None
    os.killpg(stalled.proc.pid, signal.SIGSTOP)
    rescuer = cluster.worker("rescuer", concurrency=2, **short)
    time.sleep(10)  # past the lease (3 s) and the visibility timeout (8 s)
    os.killpg(stalled.proc.pid, signal.SIGCONT)
    ended = time.monotonic()
    cluster.settle(tasks, ended, heal_timeout, tally)
    _stop([stalled, rescuer], cluster)
    return tally


ALL: dict[str, Callable[..., Tally]] = {
    "pool_child_sigkill": pool_child_sigkill,
    "node_sigkill": node_sigkill,
    "node_sigterm": node_sigterm,
    "redis_sigkill_aof": redis_sigkill_aof,
    "postgres_stop": postgres_stop,
    "postgres_freeze": postgres_freeze,
    "broker_down_at_submit": broker_down_at_submit,
    "poison_task": poison_task,
    "stalled_worker": stalled_worker,
}
