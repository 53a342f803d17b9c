"""The status cache (tasks/status_cache.py) never answers what the database no longer says
once an event said so: dropped by the task's own events, by queue movement for waiting tasks,
by erasure, by age, and never filled by a read that raced with an event."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.services import ServicesUnderTest
from tests.support import Api, wait_until
from vocalborn.db import get_engine
from vocalborn.tasks import events, status_cache
from vocalborn.tasks.status_cache import StatusCache


def _live() -> StatusCache:
    cache = StatusCache()
    cache.set_live(True)
    return cache


def test_a_row_is_answered_until_its_task_has_an_event() -> None:
    cache, task, user = _live(), uuid.uuid4(), uuid.uuid4()
    began = cache.begin()
    cache.put(task, user, {"status": "processing"}, began, waiting=False)
    assert cache.get(task, user) == {"status": "processing"}
    assert cache.get(task, uuid.uuid4()) is None  # only its owner
    cache.drop(task, queue_moved=False)
    assert cache.get(task, user) is None


def test_a_read_that_raced_with_an_event_is_not_kept() -> None:
    cache, task, user = _live(), uuid.uuid4(), uuid.uuid4()
    began = cache.begin()  # the read starts...
    cache.drop(task, queue_moved=False)  # ...an event of the task arrives meanwhile...
    cache.put(task, user, {"status": "pending"}, began, waiting=True)  # ...the old row comes back
    assert cache.get(task, user) is None
    other = uuid.uuid4()
    began = cache.begin()
    cache.drop(uuid.uuid4(), queue_moved=False)  # another task's event does not matter
    cache.put(other, user, {"status": "success"}, began, waiting=False)
    assert cache.get(other, user) == {"status": "success"}


def test_waiting_rows_go_when_the_queue_moves_and_stay_on_progress() -> None:
    cache, user = _live(), uuid.uuid4()
    waiting, done = uuid.uuid4(), uuid.uuid4()
    cache.put(waiting, user, {"status": "pending"}, cache.begin(), waiting=True)
    cache.put(done, user, {"status": "success"}, cache.begin(), waiting=False)
    cache.drop(uuid.uuid4(), queue_moved=False)  # a progress report elsewhere
    assert cache.get(waiting, user) is not None
    cache.drop(uuid.uuid4(), queue_moved=True)  # a task started elsewhere: positions changed
    assert cache.get(waiting, user) is None
    assert cache.get(done, user) is not None


def test_nothing_is_kept_without_the_subscription_or_past_its_age(monkeypatch: pytest.MonkeyPatch) -> None:
    cache, task, user = StatusCache(), uuid.uuid4(), uuid.uuid4()
    cache.put(task, user, {"status": "success"}, cache.begin(), waiting=False)
    assert cache.get(task, user) is None  # not live yet
    cache.set_live(True)
    cache.put(task, user, {"status": "success"}, cache.begin(), waiting=False)
    assert cache.get(task, user) is not None
    later = time.monotonic() + status_cache.TTL + 1
    monkeypatch.setattr(status_cache.time, "monotonic", lambda: later)
    assert cache.get(task, user) is None
    monkeypatch.undo()
    cache.put(task, user, {"status": "success"}, cache.begin(), waiting=False)
    cache.set_live(False)  # the subscription went away: everything is forgotten
    cache.set_live(True)
    assert cache.get(task, user) is None


def test_a_polled_row_is_read_again_before_it_ages_out_and_not_all_rows_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache, user = _live(), uuid.uuid4()
    now = time.monotonic()
    monkeypatch.setattr(status_cache.time, "monotonic", lambda: now)
    tasks = [uuid.uuid4() for _ in range(200)]
    for task in tasks:  # a burst of polls: every row read at the same moment
        cache.put(task, user, {"status": "success"}, cache.begin(), waiting=False)

    def at(age: float) -> list[tuple[dict[str, Any] | None, bool]]:
        monkeypatch.setattr(status_cache.time, "monotonic", lambda: now + status_cache.TTL * age)
        return [cache.lookup(t, user) for t in tasks]

    assert all(row is not None and not due for row, due in at(0.39))  # young: answered, no read
    halfway = at(0.5)
    assert all(row is not None for row, _ in halfway)  # answered from memory meanwhile
    assert 20 < sum(due for _, due in halfway) < 180  # spread out: not every row read again at once
    late = at(0.61)
    assert all(row is not None for row, _ in late)
    assert sum(due for _, due in halfway) + sum(due for _, due in late) == 200  # each asked for once
    assert not any(due for _, due in at(0.9))  # a read in flight is not asked for twice
    assert all(row is None for row, _ in at(1.01))  # never answered past the age


def test_an_erased_users_rows_go_and_reads_in_flight_are_not_kept() -> None:
    cache, user, other = _live(), uuid.uuid4(), uuid.uuid4()
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    cache.put(mine, user, {"status": "success"}, cache.begin(), waiting=False)
    cache.put(theirs, other, {"status": "success"}, cache.begin(), waiting=False)
    began = cache.begin()
    status_cache.message_dropped({"forget_user": str(user)})  # would go to CACHE, not this one
    cache.drop_user(user)
    assert cache.get(mine, user) is None and cache.get(theirs, other) is not None
    cache.put(mine, user, {"status": "success"}, began, waiting=False)
    assert cache.get(mine, user) is None


def _change_elsewhere(task_id: str, status: str, progress: int, event_type: str | None) -> None:
    """Another process (a worker, or someone editing by hand) changes the row, and publishes its
    event or not."""
    with get_engine().begin() as c:
        c.execute(
            text("UPDATE ai_analysis_tasks SET status = :s, progress = :p WHERE task_id = :t"),
            {"s": status, "p": progress, "t": task_id},
        )
    if event_type is not None:
        events.publish_live({"task_id": task_id, "event_type": event_type, "status": status, "attempt": 1})


def _poll_until(api: Api, learner: dict[str, Any], task_id: str, status: str) -> dict[str, Any]:
    return wait_until(
        lambda: (s := api.status(learner, task_id))["status"] == status and s, 10, 0.02, f"status {status}"
    )


@pytest.mark.postgresql
def test_an_api_process_sees_a_change_made_elsewhere_through_its_event(
    api: Api,
    therapist: dict[str, Any],
    learner: dict[str, Any],
    migrated: ServicesUnderTest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(status_cache, "TTL", 600.0)  # no read again by age during this test, however slow
    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    api.status(learner, task_id)  # the first poll starts the subscription
    wait_until(lambda: status_cache.CACHE.live, 10, 0.05, "the status cache to be live")

    # Running (no longer waiting: only this task's own events drop its row, whatever else runs).
    _change_elsewhere(task_id, "processing", 40, "started")
    _poll_until(api, learner, task_id, "processing")
    hits = status_cache.CACHE.hits
    assert api.status(learner, task_id)["progress"] == 40
    assert status_cache.CACHE.hits == hits + 1  # answered from memory
    _change_elsewhere(task_id, "processing", 80, None)  # no event published: the remembered row still answers
    assert api.status(learner, task_id)["progress"] == 40
    _change_elsewhere(task_id, "processing", 80, "progress")
    seen = wait_until(lambda: (s := api.status(learner, task_id))["progress"] == 80 and s, 10, 0.02, "progress 80")
    assert seen["status"] == "processing"


def test_a_cancel_in_this_process_is_seen_by_the_very_next_poll(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], migrated: ServicesUnderTest
) -> None:
    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    for _ in range(3):
        assert api.status(learner, task_id)["status"] == "pending"
    cancelled = api.client.delete(f"/api/v1/tasks/analysis/{task_id}", headers=learner["headers"])
    assert cancelled.status_code == 200, cancelled.text
    assert api.status(learner, task_id)["status"] == "cancelled"


@pytest.mark.postgresql
def test_a_row_changed_without_an_event_is_seen_within_the_age(
    api: Api,
    therapist: dict[str, Any],
    learner: dict[str, Any],
    migrated: ServicesUnderTest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hand edit (no event): polls answer the remembered row until its refresh age, then the
    row is read again in the background and the following polls answer the new one, every one
    of them from memory."""
    monkeypatch.setattr(status_cache, "TTL", 6.0)  # read again after 2.4-3.6 s; never aged out below
    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    api.status(learner, task_id)
    wait_until(lambda: status_cache.CACHE.live, 10, 0.05, "the status cache to be live")
    _change_elsewhere(task_id, "processing", 30, "started")
    _poll_until(api, learner, task_id, "processing")

    def remembered() -> bool:  # the event has been seen and the processing row is kept
        hits = status_cache.CACHE.hits
        return api.status(learner, task_id)["status"] == "processing" and status_cache.CACHE.hits > hits

    wait_until(remembered, 10, 0.02, "the processing row to be remembered")
    started = time.monotonic()  # the row was read before this: it ages out 6 s after its read at most
    _change_elsewhere(task_id, "processing", 55, None)  # by hand: no event
    hits = status_cache.CACHE.hits
    seen: list[int] = []
    while time.monotonic() - started < 4.5:  # a client polling its task, within the row's age
        seen.append(api.status(learner, task_id)["progress"])
        if seen[-1] == 55:
            break
        time.sleep(0.05)
    assert seen[0] == 30 and seen[-1] == 55, seen  # the remembered row first, then the new one
    assert status_cache.CACHE.hits - hits == len(seen)  # every poll answered from memory


def test_a_slower_read_does_not_replace_a_later_one() -> None:
    """A refresh that began before a miss's read, and finished after it, is not kept."""
    cache, task, user = _live(), uuid.uuid4(), uuid.uuid4()
    slow = cache.begin()  # a background read begins...
    time.sleep(0.002)
    fast = cache.begin()  # ...a poll's read begins after it and finishes first
    cache.put(task, user, {"progress": 55}, fast, waiting=False)
    cache.put(task, user, {"progress": 30}, slow, waiting=False)
    assert cache.get(task, user) == {"progress": 55}
