"""The task WebSocket on real API processes, a real worker, PostgreSQL and Redis: auth, order and
resume, fan-out across processes, one subscription per process, slow clients, Redis drops."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from tests.services import ServicesUnderTest
from tests.support import Api, ServiceProcess, WorkerProcess, api_process, recording, wait_until
from vocalborn.embedded import free_port

pytestmark = pytest.mark.worker

WS_PATH = "/api/v1/tasks/ws/task/{task_id}"
TERMINAL = {"succeeded", "failed", "cancelled"}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


class Stack:
    def __init__(self, proc: ServiceProcess, port: int) -> None:
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.api = Api(httpx.Client(base_url=self.base, timeout=30))

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid

    def ws_url(self, task_id: str, token: str | None = None, after: int | None = None) -> str:
        url = f"ws://127.0.0.1:{self.port}" + WS_PATH.format(task_id=task_id)
        query = []
        if token is not None:
            query.append(f"token={token}")
        if after is not None:
            query.append(f"after={after}")
        return url + ("?" + "&".join(query) if query else "")

    def stop(self) -> None:
        self.api.client.close()
        self.proc.stop()


def start_stack(log_dir: Path, env: dict[str, str] | None = None) -> Stack:
    port = free_port()
    return Stack(api_process(port, log_dir, env), port)


def open_socket(url: str, headers: dict[str, str] | None = None) -> ClientConnection:
    return ws_connect(url, additional_headers=headers, proxy=None, open_timeout=20, close_timeout=5)


def read_until_closed(ws: ClientConnection, timeout: float = 90) -> tuple[list[dict[str, Any]], int | None, str]:
    """Every message until the server closes; the close code and reason."""
    messages: list[dict[str, Any]] = []
    try:
        while True:
            messages.append(json.loads(ws.recv(timeout=timeout)))
    except ConnectionClosed as closed:
        rcvd = closed.rcvd
        return messages, (rcvd.code if rcvd else None), (rcvd.reason if rcvd else "")


def closing_of(url: str, headers: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], int | None, str]:
    with open_socket(url, headers) as ws:
        return read_until_closed(ws, timeout=30)


def db_event_ids(task_id: str) -> list[int]:
    from sqlmodel import col, select

    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisTaskEvent

    with open_session() as db:
        rows = db.exec(
            select(AIAnalysisTaskEvent.event_id)
            .where(AIAnalysisTaskEvent.task_id == uuid.UUID(task_id))
            .order_by(col(AIAnalysisTaskEvent.event_id))
        ).all()
    return [int(r) for r in rows if r is not None]


def unpublished_task(stack: Stack, therapist: dict[str, Any], learner: dict[str, Any]) -> str:
    """A pending task no worker will ever receive: its message is never published (and Beat,
    which would republish it, does not run in these tests). Sockets on it stay idle."""
    from vocalborn.auth.models import User
    from vocalborn.db import open_session
    from vocalborn.tasks import service
    from vocalborn.tasks.submission import ordinary

    ready = stack.api.ready_record(therapist, learner)
    original = service.send_task_message
    service.send_task_message = lambda task, countdown=None: False  # type: ignore[assignment]
    try:
        with open_session() as db:
            user = db.get(User, uuid.UUID(learner["user"]["user_id"]))
            assert user is not None
            outcome = ordinary.submit_analysis(db, user, uuid.UUID(ready["record"]["practice_record_id"]), {})
    finally:
        service.send_task_message = original  # type: ignore[assignment]
    return str(outcome.task.task_id)


def log_an_event(task_id: str, publish_on: redis.Redis | None = None) -> int:
    """Append an event to the task's history; publish it only on ``publish_on`` (by default
    nowhere, as if the publish was lost)."""
    from vocalborn.analysis.types import TOTAL_STEPS
    from vocalborn.db import open_session
    from vocalborn.tasks import transitions
    from vocalborn.tasks.events import channel_name, event_message
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.states import EventType

    with open_session() as db:
        task = db.get(AIAnalysisTask, uuid.UUID(task_id))
        assert task is not None
        event = transitions.apply_transition(db, task, EventType.QUEUED, message="test: a queued event")
        db.commit()
    assert event.event_id is not None
    if publish_on is not None:
        publish_on.publish(channel_name(), json.dumps(event_message(event, TOTAL_STEPS)))
    return event.event_id


def ws_subscribers(client: redis.Redis) -> int:
    from vocalborn.tasks.events import channel_name

    return int(dict(client.pubsub_numsub(channel_name()))[channel_name().encode()])


def hub_connections(client: redis.Redis, pid: int) -> list[dict[str, Any]]:
    """The subscriber connections that the API process ``pid`` holds (named by the hub)."""
    return [c for c in client.client_list() if c.get("name") == f"vocalborn-ws-{pid}" and c.get("sub") == "1"]


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(migrated: ServicesUnderTest) -> Iterator[Stack]:
    s = start_stack(migrated.data_dir)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def slow_worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    """Pauses at each of the five steps, so a run can be watched (and interrupted)."""
    w = WorkerProcess("ws", migrated.data_dir, concurrency=2, env={"ANALYSIS_STEP_DELAY_SECONDS": "0.6"}).start()
    yield w
    w.stop()


@pytest.fixture
def therapist(stack: Stack) -> dict[str, Any]:
    return stack.api.register("therapist")


@pytest.fixture
def learner(stack: Stack) -> dict[str, Any]:
    return stack.api.register("learner")


@pytest.fixture
def rds(services: ServicesUnderTest) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(services.redis_url, decode_responses=False)
    yield client
    client.close()


# --------------------------------------------------------------------------------------------
# who may watch
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "not-a-token"], ids=["no-token", "empty-token", "garbage-token"])
def test_a_socket_without_a_valid_token_is_refused_before_any_data(
    stack: Stack, therapist: dict[str, Any], learner: dict[str, Any], token: str | None
) -> None:
    task_id = unpublished_task(stack, therapist, learner)
    messages, code, reason = closing_of(stack.ws_url(task_id, token=token))
    assert messages == []
    assert code == 1008
    assert "token" in reason or "authenticated" in reason


def test_another_learners_task_is_refused_like_a_missing_one(
    stack: Stack, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    task_id = unpublished_task(stack, therapist, learner)
    stranger = stack.api.register("learner")
    for url in (stack.ws_url(task_id, token=stranger["token"]), stack.ws_url(str(uuid.uuid4()), learner["token"])):
        messages, code, reason = closing_of(url)
        assert (messages, code, reason) == ([], 1008, "task not found")
    # a therapist the learner is not linked to is a stranger too
    messages, code, _ = closing_of(stack.ws_url(task_id), headers=therapist["headers"])
    assert (messages, code) == ([], 1008)


def test_the_owner_the_linked_therapist_and_an_admin_may_watch(
    stack: Stack, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.auth import service as auth_service
    from vocalborn.auth.models import Role, User
    from vocalborn.db import open_session

    task_id = unpublished_task(stack, therapist, learner)
    with open_session() as db:
        lrn = db.get(User, uuid.UUID(learner["user"]["user_id"]))
        thr = db.get(User, uuid.UUID(therapist["user"]["user_id"]))
        assert lrn is not None and thr is not None
        auth_service.link_therapist(db, lrn, thr)
        admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        auth_service.create_user(db, email=admin_email, password="admin-pass-1", name="Admin", role=Role.ADMIN)
    admin_token = stack.api.login(admin_email, "admin-pass-1")

    for url, headers in (
        (stack.ws_url(task_id, token=learner["token"]), None),  # query parameter
        (stack.ws_url(task_id), therapist["headers"]),  # Authorization header
        (stack.ws_url(task_id, token=admin_token), None),
    ):
        with open_socket(url, headers) as ws:
            snapshot = json.loads(ws.recv(timeout=20))
            assert snapshot["event_type"] == "snapshot" and snapshot["task_id"] == task_id
            assert snapshot["status"] == "pending" and snapshot["event_id"] is None
            submitted = json.loads(ws.recv(timeout=20))
            assert submitted["event_type"] == "submitted" and submitted["event_id"] == snapshot["last_event_id"]


# --------------------------------------------------------------------------------------------
# order, completeness, resume
# --------------------------------------------------------------------------------------------
def test_events_arrive_in_order_without_gaps_across_a_reconnect(
    stack: Stack, slow_worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    ready = stack.api.ready_record(therapist, learner)
    task_id = stack.api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]

    first: list[dict[str, Any]] = []
    with open_socket(stack.ws_url(task_id, token=learner["token"])) as ws:
        snapshot = json.loads(ws.recv(timeout=20))
        assert snapshot["event_type"] == "snapshot"
        while len([m for m in first if m["event_id"] is not None]) < 3:  # submitted, started, a step
            first.append(json.loads(ws.recv(timeout=60)))
    seen_first = [m["event_id"] for m in first if m["event_id"] is not None]
    last = seen_first[-1]
    # events happen while nobody listens
    wait_until(lambda: len(db_event_ids(task_id)) > len(seen_first), 60, 0.1, "an event while disconnected")

    with open_socket(stack.ws_url(task_id, token=learner["token"], after=last)) as ws:
        second, code, reason = read_until_closed(ws)
    assert second[0]["event_type"] == "snapshot"
    seen_second = [m["event_id"] for m in second if m["event_id"] is not None]
    assert (code, reason) == (1000, "task finished")
    assert second[-1]["event_type"] == "succeeded" and second[-1]["progress"] == 100

    union = seen_first + seen_second
    assert union == db_event_ids(task_id)  # in order, none missing, none twice
    assert union == [e["event_id"] for e in stack.api.events(learner, task_id)]


def test_a_late_client_gets_the_whole_history_then_the_close(
    stack: Stack, slow_worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    ready = stack.api.ready_record(therapist, learner)
    task_id = stack.api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    stack.api.wait_for(learner, task_id, {"success"}, timeout=90)

    messages, code, _ = closing_of(stack.ws_url(task_id, token=learner["token"]))
    assert code == 1000
    assert messages[0]["event_type"] == "snapshot" and messages[0]["status"] == "success"
    assert [m["event_id"] for m in messages[1:]] == db_event_ids(task_id)
    assert [m["event_type"] for m in messages[1:3]] == ["submitted", "started"]
    assert messages[-1]["event_type"] == "succeeded"

    # resuming after the last event: only the snapshot, then the close
    last = messages[-1]["event_id"]
    messages, code, _ = closing_of(stack.ws_url(task_id, token=learner["token"], after=last))
    assert code == 1000 and [m["event_type"] for m in messages] == ["snapshot"]


def test_a_bad_after_value_is_refused(stack: Stack, therapist: dict[str, Any], learner: dict[str, Any]) -> None:
    task_id = unpublished_task(stack, therapist, learner)
    url = stack.ws_url(task_id, token=learner["token"]) + "&after=soon"
    messages, code, reason = closing_of(url)
    assert (messages, code) == ([], 1008) and "after" in reason


# --------------------------------------------------------------------------------------------
# fan-out
# --------------------------------------------------------------------------------------------
def test_two_api_processes_fan_out_to_their_own_sockets(
    stack: Stack,
    slow_worker: WorkerProcess,
    migrated: ServicesUnderTest,
    therapist: dict[str, Any],
    learner: dict[str, Any],
    rds: redis.Redis,
) -> None:
    other = start_stack(migrated.data_dir)
    try:
        ready = stack.api.ready_record(therapist, learner)
        task_id = stack.api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
        with (
            open_socket(other.ws_url(task_id, token=learner["token"])) as on_other,
            open_socket(stack.ws_url(task_id, token=learner["token"])) as on_first,
        ):
            for ws in (on_other, on_first):
                assert json.loads(ws.recv(timeout=20))["event_type"] == "snapshot"
            # both processes hold exactly one subscription each
            assert len(hub_connections(rds, other.pid)) == 1
            assert len(hub_connections(rds, stack.pid)) == 1
            assert ws_subscribers(rds) == 2
            got_other, code_other, _ = read_until_closed(on_other)
            got_first, code_first, _ = read_until_closed(on_first)
        assert code_other == code_first == 1000
        history = db_event_ids(task_id)
        assert [m["event_id"] for m in got_other if m["event_id"] is not None] == history
        assert [m["event_id"] for m in got_first if m["event_id"] is not None] == history
        kinds = [m["event_type"] for m in got_other]
        assert "started" in kinds and "progress" in kinds and kinds[-1] == "succeeded"
    finally:
        other.stop()


def test_200_idle_sockets_cost_one_redis_subscription(
    stack: Stack, therapist: dict[str, Any], learner: dict[str, Any], rds: redis.Redis
) -> None:
    import websockets

    task_id = unpublished_task(stack, therapist, learner)
    url = stack.ws_url(task_id, token=learner["token"])

    async def scenario() -> tuple[int, int, int]:
        sockets = []
        try:
            for batch in range(4):
                opened = await asyncio.gather(
                    *(websockets.connect(url, proxy=None, open_timeout=60) for _ in range(50)),
                )
                sockets.extend(opened)
                assert len(sockets) == 50 * (batch + 1)
            snapshots = await asyncio.gather(*(asyncio.wait_for(ws.recv(), 60) for ws in sockets))
            assert all(json.loads(s)["event_type"] == "snapshot" for s in snapshots)
            # all 200 are open now
            return len(sockets), ws_subscribers(rds), len(hub_connections(rds, stack.pid))
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    opened, subscribers, of_this_process = asyncio.run(asyncio.wait_for(scenario(), 180))
    assert opened == 200
    assert subscribers == 1  # PUBSUB NUMSUB: one API process, one subscriber
    assert of_this_process == 1


class StalledClient:
    """A WebSocket client on a raw socket with a tiny receive window that reads only when told:
    the server's sends to it block once the kernel buffers are full."""

    def __init__(self, port: int, path: str) -> None:
        import base64
        import socket

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no window autotuning
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        """The next (opcode, payload) from the server (unmasked, unfragmented here)."""
        b0, b1 = self._take(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(self._take(2), "big")
        elif length == 127:
            length = int.from_bytes(self._take(8), "big")
        return b0 & 0x0F, self._take(length)

    def text(self) -> dict[str, Any]:
        opcode, payload = self.frame()
        assert opcode == 1, (opcode, payload[:100])
        return dict(json.loads(payload))

    def drain_until_closed(self) -> tuple[int, int | None]:
        """Read everything left: (text messages, close code or None if the stream was cut)."""
        texts = 0
        try:
            while True:
                opcode, payload = self.frame()
                if opcode == 8:
                    return texts, int.from_bytes(payload[:2], "big")
                texts += opcode == 1
        except (EOFError, ConnectionResetError):
            return texts, None

    def close(self) -> None:
        self.sock.close()


def test_a_slow_client_is_disconnected_without_holding_up_the_others(
    migrated: ServicesUnderTest, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    """A client that stops reading falls behind; its queue overflows and it alone is closed
    (1013), while a client reading on the same task gets every message."""
    from vocalborn.tasks import events

    small = start_stack(migrated.data_dir, env={"WS_QUEUE_SIZE": "8"})
    stalled: StalledClient | None = None
    try:
        task_id = unpublished_task(small, therapist, learner)
        url = small.ws_url(task_id, token=learner["token"])
        stalled = StalledClient(small.port, url.split(str(small.port), 1)[1])
        assert [stalled.text()["event_type"] for _ in range(2)] == ["snapshot", "submitted"]
        blob = "x" * 200_000
        flood = 120  # 24 MB: far more than the kernel buffers towards a stalled 4 kB window hold

        got: list[int] = []
        with open_socket(url) as reader:
            assert [json.loads(reader.recv(timeout=20))["event_type"] for _ in range(2)] == ["snapshot", "submitted"]
            for i in range(flood):
                events.publish_live(
                    {
                        "event_id": None,
                        "task_id": task_id,
                        "event_type": "progress",
                        "status": "processing",
                        "progress": i % 101,
                        "message": blob,
                    }
                )
                got.append(json.loads(reader.recv(timeout=30))["progress"])  # keeps up, one by one
        assert got == [i % 101 for i in range(flood)]  # the reading client missed nothing

        wait_until(lambda: "messages behind; disconnected" in small.proc.log(), 60, 0.2, "the slow client to go")
        texts, code = stalled.drain_until_closed()
        assert texts < flood
        # 1013 when the close frame got through; None when the server had to cut the stalled stream
        assert code in (1013, None), code
    finally:
        if stalled is not None:
            stalled.close()
        small.stop()


# --------------------------------------------------------------------------------------------
# Redis drops
# --------------------------------------------------------------------------------------------
def test_sockets_resync_from_the_database_when_the_subscription_drops(
    stack: Stack, therapist: dict[str, Any], learner: dict[str, Any], rds: redis.Redis
) -> None:
    task_id = unpublished_task(stack, therapist, learner)
    with open_socket(stack.ws_url(task_id, token=learner["token"])) as ws:
        assert json.loads(ws.recv(timeout=20))["event_type"] == "snapshot"
        assert json.loads(ws.recv(timeout=20))["event_type"] == "submitted"
        lost = log_an_event(task_id)  # committed, but its publish never happens
        (conn,) = hub_connections(rds, stack.pid)
        rds.client_kill_filter(_id=conn["id"])
        message = json.loads(ws.recv(timeout=30))
        assert (message["event_id"], message["event_type"]) == (lost, "queued")
    wait_until(lambda: len(hub_connections(rds, stack.pid)) == 1, 30, 0.2, "the hub to subscribe again")


def test_while_redis_is_down_sockets_poll_and_the_subscription_comes_back(
    migrated: ServicesUnderTest, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    """The API's pub/sub Redis (its own here) goes away for a while and comes back on the same
    port: the socket keeps getting events from the database, and the hub reconnects."""
    from vocalborn.embedded import EmbeddedRedis

    bus_dir = migrated.data_dir / f"bus-{uuid.uuid4().hex[:6]}"
    bus = EmbeddedRedis(bus_dir)
    bus.start()
    own = start_stack(migrated.data_dir, env={"REDIS_URL": f"{bus.url}/0", "WS_POLL_SECONDS": "0.5"})
    try:
        client = redis.Redis.from_url(f"{bus.url}/0")
        task_id = unpublished_task(own, therapist, learner)
        with open_socket(own.ws_url(task_id, token=learner["token"])) as ws:
            assert json.loads(ws.recv(timeout=20))["event_type"] == "snapshot"
            assert json.loads(ws.recv(timeout=20))["event_type"] == "submitted"
            assert len(hub_connections(client, own.pid)) == 1
            client.close()
            bus.stop()
            # nothing can be published now; the socket polls the database
            first = log_an_event(task_id)
            assert json.loads(ws.recv(timeout=30))["event_id"] == first
            bus = EmbeddedRedis(bus_dir, port=bus.port)
            bus.start()
            client = redis.Redis.from_url(f"{bus.url}/0")
            wait_until(lambda: len(hub_connections(client, own.pid)) == 1, 60, 0.2, "the hub to reconnect")
            # and live events flow again through the new subscription
            second = log_an_event(task_id, publish_on=client)
            assert json.loads(ws.recv(timeout=30))["event_id"] == second
        client.close()
    finally:
        own.stop()
        bus.stop()


# --------------------------------------------------------------------------------------------
# in-process: no leaks
# --------------------------------------------------------------------------------------------
def test_sockets_are_forgotten_when_clients_leave(
    migrated: ServicesUnderTest, stack: Stack, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from fastapi.testclient import TestClient

    from vocalborn.main import app
    from vocalborn.tasks.api import ws

    task_id = unpublished_task(stack, therapist, learner)
    with TestClient(app) as client:
        path = WS_PATH.format(task_id=task_id) + f"?token={learner['token']}"
        with client.websocket_connect(path) as a, client.websocket_connect(path) as b:
            for sock in (a, b):
                assert sock.receive_json()["event_type"] == "snapshot"
            assert ws.open_socket_count() == 2
            hub = ws._hub
            assert hub is not None and hub.socket_count() == 2
        wait_until(lambda: ws.open_socket_count() == 0, 10, 0.05, "both sockets to be forgotten")
        assert hub.by_task == {}
    assert ws._hub is None  # the lifespan stopped the subscription


# --------------------------------------------------------------------------------------------
# the command-line client
# --------------------------------------------------------------------------------------------
def _cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "submit", *args],
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_submit_command_creates_the_sentence_watches_progress_and_prints_scores(
    stack: Stack, slow_worker: WorkerProcess, tmp_path: Path
) -> None:
    stack.api.register("therapist", email=(t_email := f"t-{uuid.uuid4().hex[:8]}@example.com"))
    stack.api.register("learner", email=(l_email := f"l-{uuid.uuid4().hex[:8]}@example.com"))
    reference, attempt = tmp_path / "reference.wav", tmp_path / "attempt.mp3"
    reference.write_bytes(recording())
    attempt.write_bytes(recording(voice="Male1", fmt="mp3"))

    done = _cli(
        [
            str(attempt),
            "--reference",
            str(reference),
            "--text",
            "今天天氣很好，我們去公園散步。",
            "--url",
            stack.base,
            "--therapist-email",
            t_email,
            "--therapist-password",
            "correct-horse-1",
            "--lang",
            "en",
        ],
        env={"VOCALBORN_EMAIL": l_email, "VOCALBORN_PASSWORD": "correct-horse-1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100%" in done.stderr  # the progress bar reached the end
    import re

    shown = [int(p) for p in re.findall(r"\]\s+(\d+)%", done.stderr)]
    assert shown == sorted(shown), shown  # it never ran backwards
    assert "Overall" in done.stdout and "Pronunciation" in done.stdout and "Rhythm" in done.stdout

    # the sentence now exists: submit another attempt against it, by id, asking for JSON
    sentence_id = done.stderr.split("sentence ")[1].split()[0]
    again = _cli(
        [str(attempt), "--sentence", sentence_id, "--url", stack.base, "--json"],
        env={"VOCALBORN_EMAIL": l_email, "VOCALBORN_PASSWORD": "correct-horse-1"},
    )
    assert again.returncode == 0, again.stdout + again.stderr
    result = json.loads(again.stdout)
    assert 0 <= result["overall_score"] <= 100 and result["detailed_analysis"]["pitch_analysis"]
    # both attempts went into one reused session, not one new session each
    learner_token = stack.api.login(l_email, "correct-horse-1")
    sessions = stack.api.client.get(
        "/api/v1/practice/sessions", headers={"Authorization": f"Bearer {learner_token}"}
    ).json()
    assert [x["title"] for x in sessions] == ["vocalborn submit"]


def test_the_submit_command_explains_a_wrong_password_and_a_server_that_is_down(stack: Stack, tmp_path: Path) -> None:
    learner = stack.api.register("learner")
    attempt = tmp_path / "attempt.wav"
    attempt.write_bytes(recording(voice="Male1"))
    args = [str(attempt), "--sentence", str(uuid.uuid4())]

    wrong = _cli([*args, "--url", stack.base, "--email", learner["email"], "--password", "not-it-at-all"])
    assert wrong.returncode == 3, wrong.stdout + wrong.stderr
    assert "wrong email or password" in wrong.stderr

    down = _cli([*args, "--url", f"http://127.0.0.1:{free_port()}", "--email", "a@example.com", "--password", "x" * 8])
    assert down.returncode == 4, down.stdout + down.stderr
    assert "cannot reach" in down.stderr

    missing = _cli([*args, "--url", stack.base, "--email", learner["email"], "--password", "correct-horse-1"])
    assert missing.returncode == 5, missing.stdout + missing.stderr
    assert "sentence not found" in missing.stderr


def test_a_retried_task_streams_past_its_old_failure_to_the_new_outcome(
    stack: Stack, slow_worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    """An admin retried a failed task: its history holds an old terminal event that must not end
    the stream of a client replaying from the start."""
    from vocalborn.auth import service as auth_service
    from vocalborn.auth.models import Role
    from vocalborn.db import open_session
    from vocalborn.practice.models import PracticeRecord
    from vocalborn.storage import get_storage
    from vocalborn.tasks import service
    from vocalborn.tasks.models import AIAnalysisTask

    ready = stack.api.ready_record(therapist, learner)
    record_id = ready["record"]["practice_record_id"]
    with open_session() as db:
        record = db.get(PracticeRecord, uuid.UUID(record_id))
        assert record is not None
        path = get_storage().path(record.audio_key)
    good = path.read_bytes()
    path.write_bytes(b"rotten" * 300)
    task_id = stack.api.submit(learner, record_id).json()["task_id"]
    assert stack.api.wait_for(learner, task_id, {"success", "failure"}, timeout=60)["status"] == "failure"
    path.write_bytes(good)
    with open_session() as db:
        admin = auth_service.create_user(
            db, email=f"ops-{uuid.uuid4().hex[:6]}@example.com", password="ops-password-1", name="Ops", role=Role.ADMIN
        )
        task = db.get(AIAnalysisTask, uuid.UUID(task_id))
        assert task is not None
        service.retry_task(db, task, admin)
    stack.api.wait_for(learner, task_id, {"success"}, timeout=60)

    messages, code, _ = closing_of(stack.ws_url(task_id, token=learner["token"], after=0))
    kinds = [m["event_type"] for m in messages[1:]]
    assert code == 1000
    assert kinds.index("failed") < kinds.index("resubmitted") < len(kinds) - 1
    assert kinds[-1] == "succeeded"
    assert [m["event_id"] for m in messages[1:]] == db_event_ids(task_id)
