"""The one place that defines task states, the legal transitions, and the event each emits.

The API, the worker, Beat jobs and admin actions all change a task through
``vocalborn.tasks.transitions.apply_transition``, which enforces this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vocalborn.practice.models import RecordStatus


class TaskStatus(StrEnum):
    PENDING = "pending"  # accepted and committed; waiting for a worker (queued)
    PROCESSING = "processing"  # a worker claimed it and is running it
    RETRY = "retry"  # a transient error; it will run again after a backoff
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"  # beyond the plan: an operator or the learner cancelled it


ACTIVE_STATUSES = frozenset({TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.RETRY})
TERMINAL_STATUSES = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.CANCELLED})


class EventType(StrEnum):
    SUBMITTED = "submitted"
    QUEUED = "queued"  # (re)published to the broker by a Beat job, or requeued by the reaper
    STARTED = "started"
    PROGRESS = "progress"
    RETRY = "retry"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CANCEL_REQUESTED = "cancel_requested"  # a running task will stop at its next step boundary
    RESUBMITTED = "resubmitted"  # an admin retried a failed or cancelled task


@dataclass(frozen=True)
class Transition:
    sources: frozenset[TaskStatus | None]
    target: TaskStatus


_ANY_ACTIVE: frozenset[TaskStatus | None] = frozenset(ACTIVE_STATUSES)

TRANSITIONS: dict[EventType, Transition] = {
    EventType.SUBMITTED: Transition(frozenset({None}), TaskStatus.PENDING),
    # Republishing a pending task, or the reaper putting back a task whose worker died.
    EventType.QUEUED: Transition(
        frozenset({TaskStatus.PENDING, TaskStatus.RETRY, TaskStatus.PROCESSING}), TaskStatus.PENDING
    ),
    # PROCESSING -> PROCESSING is a takeover after the previous worker's lease expired.
    EventType.STARTED: Transition(_ANY_ACTIVE, TaskStatus.PROCESSING),
    EventType.PROGRESS: Transition(frozenset({TaskStatus.PROCESSING}), TaskStatus.PROCESSING),
    EventType.RETRY: Transition(frozenset({TaskStatus.PROCESSING}), TaskStatus.RETRY),
    EventType.SUCCEEDED: Transition(frozenset({TaskStatus.PROCESSING}), TaskStatus.SUCCESS),
    EventType.FAILED: Transition(_ANY_ACTIVE, TaskStatus.FAILURE),
    EventType.CANCELLED: Transition(_ANY_ACTIVE, TaskStatus.CANCELLED),
    EventType.CANCEL_REQUESTED: Transition(frozenset({TaskStatus.PROCESSING}), TaskStatus.PROCESSING),
    EventType.RESUBMITTED: Transition(frozenset({TaskStatus.FAILURE, TaskStatus.CANCELLED}), TaskStatus.PENDING),
}

# What the practice record says while its latest task is in each state.
RECORD_STATUS_FOR: dict[TaskStatus, RecordStatus] = {
    TaskStatus.PENDING: RecordStatus.AI_QUEUED,
    TaskStatus.RETRY: RecordStatus.AI_QUEUED,
    TaskStatus.PROCESSING: RecordStatus.AI_PROCESSING,
    TaskStatus.SUCCESS: RecordStatus.AI_ANALYZED,
    TaskStatus.FAILURE: RecordStatus.AI_FAILED,
    TaskStatus.CANCELLED: RecordStatus.RECORDED,
}


class IllegalTransition(Exception):
    def __init__(self, event: EventType, current: TaskStatus | None) -> None:
        super().__init__(f"cannot apply '{event}' to a task that is {current or 'new'}")
        self.event = event
        self.current = current


def check_transition(event: EventType, current: TaskStatus | None) -> TaskStatus:
    """Return the state ``event`` leads to from ``current``, or raise IllegalTransition."""
    transition = TRANSITIONS[event]
    if current not in transition.sources:
        raise IllegalTransition(event, current)
    return transition.target
