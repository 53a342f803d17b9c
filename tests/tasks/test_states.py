"""The state machine table: pure, no services needed."""

from __future__ import annotations

import pytest

from vocalborn.practice.models import RecordStatus
from vocalborn.tasks.states import (
    ACTIVE_STATUSES,
    RECORD_STATUS_FOR,
    TERMINAL_STATUSES,
    TRANSITIONS,
    EventType,
    IllegalTransition,
    TaskStatus,
    check_transition,
)


def test_every_status_is_either_active_or_terminal() -> None:
    assert set(TaskStatus) == ACTIVE_STATUSES | TERMINAL_STATUSES
    assert not ACTIVE_STATUSES & TERMINAL_STATUSES


def test_nothing_leaves_a_terminal_state_except_an_admin_resubmit() -> None:
    for event, transition in TRANSITIONS.items():
        for terminal in TERMINAL_STATUSES:
            if terminal in transition.sources:
                assert event == EventType.RESUBMITTED


@pytest.mark.parametrize(
    ("event", "current", "expected"),
    [
        (EventType.SUBMITTED, None, TaskStatus.PENDING),
        (EventType.STARTED, TaskStatus.PENDING, TaskStatus.PROCESSING),
        (EventType.STARTED, TaskStatus.RETRY, TaskStatus.PROCESSING),
        (EventType.STARTED, TaskStatus.PROCESSING, TaskStatus.PROCESSING),  # takeover after lease expiry
        (EventType.RETRY, TaskStatus.PROCESSING, TaskStatus.RETRY),
        (EventType.SUCCEEDED, TaskStatus.PROCESSING, TaskStatus.SUCCESS),
        (EventType.QUEUED, TaskStatus.PROCESSING, TaskStatus.PENDING),
        (EventType.CANCELLED, TaskStatus.PENDING, TaskStatus.CANCELLED),
        (EventType.RESUBMITTED, TaskStatus.FAILURE, TaskStatus.PENDING),
    ],
)
def test_legal_transitions_lead_where_expected(
    event: EventType, current: TaskStatus | None, expected: TaskStatus
) -> None:
    assert check_transition(event, current) == expected


@pytest.mark.parametrize(
    ("event", "current"),
    [
        (EventType.SUCCEEDED, TaskStatus.PENDING),  # success without running
        (EventType.STARTED, TaskStatus.SUCCESS),  # a redelivered message must not rerun a finished task
        (EventType.STARTED, TaskStatus.CANCELLED),
        (EventType.RETRY, TaskStatus.PENDING),
        (EventType.PROGRESS, TaskStatus.RETRY),
        (EventType.CANCELLED, TaskStatus.SUCCESS),
        (EventType.RESUBMITTED, TaskStatus.SUCCESS),
        (EventType.SUBMITTED, TaskStatus.PENDING),
    ],
)
def test_illegal_transitions_are_refused(event: EventType, current: TaskStatus) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(event, current)


def test_the_record_shows_where_its_latest_task_is() -> None:
    assert RECORD_STATUS_FOR[TaskStatus.PENDING] == RecordStatus.AI_QUEUED
    assert RECORD_STATUS_FOR[TaskStatus.PROCESSING] == RecordStatus.AI_PROCESSING
    assert RECORD_STATUS_FOR[TaskStatus.SUCCESS] == RecordStatus.AI_ANALYZED
    assert RECORD_STATUS_FOR[TaskStatus.CANCELLED] == RecordStatus.RECORDED
    assert set(RECORD_STATUS_FOR) == set(TaskStatus)
