"""Redis through Sentinel: the primary is SIGKILLed in the middle of a 200-task run.

Our own PostgreSQL, a Sentinel group of our own (primary, replica, three sentinels: quorum 2),
the API, Beat and a real Celery worker (the drill engine), all with REDIS_SENTINELS set. The
run: 150 submits, the primary killed once a few tasks have succeeded, 50 more submits sent one
by one from the moment of the kill. Asserted (and printed):

- every one of the 200 tasks succeeds, with exactly one result: 0 lost, 0 duplicates;
- no request answered a 5xx outside the documented 503 contract, none went unanswered;
- a submit is answered again (2xx) within 15 s of the kill, and one is published straight to the
  new primary (not healed later by the republisher) within 15 s;
- live progress resumes: the API's hub is subscribed on the new primary, and a WebSocket opened
  before the kill receives its task's progress after it, through to the end;
- rate limits count on the new primary; the worker keeps consuming there.

Bounded (settle 150 s, the late submits 120 s): 295 s in all on the shared two-core machine at a
load average of 12-18, 93 s of it starting the cluster; docs/RELIABILITY.md has the figures.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.faults.harness import Cluster, Poller, Tally, markdown_table
from tests.faults.sentinel import SentinelGroup, sentinel_supported
from tests.services import ServicesUnderTest, in_ci
from tests.support import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.worker]

N = 200
FIRST = 150  # submitted before the kill; the rest from the moment of the kill
STEP = "0.02"  # ANALYSIS_STEP_DELAY_SECONDS: ~0.1 s a task
ANSWER_BUDGET = 15.0


class SentinelCluster(Cluster):
    """harness.Cluster with a Sentinel group where the single Redis was."""

    def __init__(self, log_dir: Any) -> None:
        super().__init__(
            log_dir,
            env={
                # 200 uploads and submits by one learner within the window must not be refused
                "RATE_LIMIT_SUBMITS_PER_USER": "10000",
                "RATE_LIMIT_UPLOADS_PER_USER": "10000",
                "MAX_ACTIVE_TASKS_PER_LEARNER": "1000",
                "RATE_LIMIT_WINDOW_SECONDS": "600",
            },
        )
        self.group = SentinelGroup()
        self.redis = self.group  # type: ignore[assignment]  # start/destroy/url, as OwnRedis

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.group.env()}


@pytest.fixture(scope="module")
def cluster(migrated: ServicesUnderTest) -> Iterator[SentinelCluster]:
    if not sentinel_supported():
        message = "this drill starts redis-server as primary, replica and sentinels; redis-server is missing"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    log_dir = migrated.data_dir / "faults-sentinel"
    log_dir.mkdir(exist_ok=True)
    c = SentinelCluster(log_dir)
    try:
        c.start()
        c.beat()
        yield c
    finally:
        c.stop()


class Socket(threading.Thread):
    """A WebSocket on one task: every message with the time it came."""

    def __init__(self, port: int, task_id: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url = f"ws://127.0.0.1:{port}/api/v1/tasks/ws/task/{task_id}"
        self.headers = headers
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.opened = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            with ws_connect(self.url, additional_headers=self.headers, proxy=None, open_timeout=30) as ws:
                self.opened.set()
                while True:
                    raw = ws.recv(timeout=170)
                    self.messages.append((time.monotonic(), json.loads(raw)))
        except ConnectionClosed:
            pass
        except Exception as exc:  # reported by the test
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.opened.set()


class Submitter(threading.Thread):
    """Sends the run's last submits one at a time from the moment of the kill."""

    def __init__(self, cluster: Cluster, learner: dict[str, Any], records: list[str], tally: Tally) -> None:
        super().__init__(daemon=True)
        self.cluster, self.learner, self.records, self.tally = cluster, learner, records, tally
        self.go = threading.Event()
        self.answers: list[tuple[float, float, int, str | None]] = []  # sent, answered, status, task

    def run(self) -> None:
        self.go.wait()
        for record_id in self.records:
            sent = time.monotonic()
            self.tally.submitted += 1
            try:
                r = self.cluster.api.submit(self.learner, record_id)
            except httpx.HTTPError:
                self.answers.append((sent, time.monotonic(), 0, None))
                continue
            task = r.json().get("task_id") if r.status_code in (200, 202) else None
            if task:
                self.tally.accepted += 1
            self.answers.append((sent, time.monotonic(), r.status_code, task))
            time.sleep(0.1)


def _republished(cluster: Cluster, task_ids: list[str]) -> set[str]:
    with cluster.db().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT task_id::text FROM ai_analysis_task_events "
                "WHERE task_id::text = ANY(:ids) AND message LIKE 'republished%'"
            ),
            {"ids": task_ids},
        ).all()
    return {r[0] for r in rows}


def test_primary_sigkill_mid_run(cluster: SentinelCluster) -> None:
    group = cluster.group
    tally = Tally("Redis primary SIGKILL (Sentinel failover)")
    started = time.monotonic()
    worker = cluster.worker("sentinel", concurrency=4, ANALYSIS_STEP_DELAY_SECONDS=STEP)
    learner, records, _ = cluster.learners(N)
    tasks = cluster.submit_all(learner, records[:FIRST], tally)
    assert len(tasks) == FIRST, tally.refused[:3]

    assert cluster.api_proc is not None and cluster.client is not None
    port = int(str(cluster.client.base_url).rsplit(":", 1)[1].strip("/"))
    socket = Socket(port, tasks[-1], learner["headers"])  # the run's last task of the first batch
    socket.start()
    assert socket.opened.wait(30) and socket.error is None, socket.error
    poller = Poller(cluster, learner, tasks)
    poller.start()

    def succeeded(at_least: int) -> bool:
        return sum(1 for s, _, _ in cluster.outcomes(tasks).values() if s == "success") >= at_least

    wait_until(lambda: succeeded(10), 60, 0.1, "the run to be under way")
    wait_until(group.replica_in_sync, 10, 0.1, "the replica to be in sync")
    done_at_kill = sum(1 for s, _, _ in cluster.outcomes(tasks).values() if s == "success")

    submitter = Submitter(cluster, learner, records[FIRST:], tally)
    submitter.start()
    submitter.go.set()
    killed, promoted_after = group.kill_primary()
    promoted = killed + promoted_after

    # the API's progress hub subscribes again, on the new primary
    channel = f"{cluster._env['REDIS_KEY_PREFIX']}task-events"
    new_primary = group.direct()

    def hub_subscribed() -> bool:
        return int(dict(new_primary.pubsub_numsub(channel)).get(channel.encode(), 0)) >= 1

    wait_until(hub_subscribed, ANSWER_BUDGET, 0.1, "the API to subscribe on the new primary")
    resubscribed_after = time.monotonic() - killed

    submitter.join(120)
    assert not submitter.is_alive()
    tasks += [t for _, _, _, t in submitter.answers if t]
    cluster.settle(tasks, time.monotonic(), 150, tally)
    poller.stop()
    socket.join(30)

    # --- the figures ---------------------------------------------------------------------------
    answered = [a for a in submitter.answers if 200 <= a[2] < 300]
    first_answer = min((a[1] - killed for a in answered), default=float("inf"))
    slowest = max((a[1] - a[0] for a in submitter.answers), default=0.0)
    healed = _republished(cluster, [t for _, _, _, t in answered if t])
    direct = [a for a in answered if a[3] not in healed]
    first_direct = min((a[1] - killed for a in direct), default=float("inf"))
    after_kill = [m for t, m in socket.messages if t > promoted]
    rl_keys = list(new_primary.scan_iter(match=f"{cluster._env['REDIS_KEY_PREFIX']}rl:submit:*", count=500))
    newest_count = max((float(new_primary.zrange(k, -1, -1, withscores=True)[0][1]) for k in rl_keys), default=0.0)

    print()
    print(markdown_table([tally]))
    print(
        f"tasks {N}: succeeded {tally.succeeded}, lost {tally.lost}, duplicate results {tally.duplicate_results}; "
        f"{done_at_kill} had succeeded at the kill"
    )
    print(
        f"replica promoted {promoted_after:.1f} s after the SIGKILL; first submit answered 2xx "
        f"{first_answer:.1f} s after it, first one published straight to the new primary {first_direct:.1f} s "
        f"after it; slowest submit answer {slowest:.2f} s; {len(healed)} of {len(answered)} post-kill submits "
        f"healed by the republisher"
    )
    print(
        f"progress hub re-subscribed {resubscribed_after:.1f} s after the kill; the socket got {len(after_kill)} "
        f"message(s) after the promotion; 503s {tally.unavailable}; total {time.monotonic() - started:.0f} s"
    )

    # --- the verdict ---------------------------------------------------------------------------
    assert len(tasks) == N == tally.accepted, (len(tasks), tally.refused[:3])
    assert tally.succeeded == N, (tally.failed, tally.lost, worker.log()[-2000:])
    assert tally.lost == 0 and tally.duplicate_results == 0
    assert tally.server_errors == 0, cluster.client.server_errors[:3]
    assert tally.dropped == 0, cluster.client.dropped[:3]
    assert first_answer <= ANSWER_BUDGET, submitter.answers[:5]
    assert first_direct <= ANSWER_BUDGET, (first_direct, len(healed))
    assert socket.error is None, socket.error
    assert after_kill, "the WebSocket got nothing after the failover"
    assert after_kill[-1].get("status") == "success", after_kill[-1]
    # rate limits count on the new primary (a submit after the promotion added to the window)
    assert newest_count / 1000 > time.time() - (time.monotonic() - promoted), "no submit counted after the failover"
