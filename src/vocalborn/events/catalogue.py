"""The event types: their current schema version and the ids each message's ``subject`` holds.

One place: the outbox writes through it, the relay builds messages with it, and the JSON Schemas
under ``schemas/``, the AsyncAPI document and docs/EVENTS.md are checked against it
(tests/events/test_schemas.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SUBJECT_PREFIX = "vocalborn.events."
SCHEMA_DIR = Path(__file__).parent / "schemas"


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    subject: tuple[str, ...]  # the ids the message's subject holds, all required
    ordering_key: str  # which of them orders the stream (the learner)
    summary: str

    @property
    def nats_subject(self) -> str:
        return SUBJECT_PREFIX + self.name


_ANALYSIS = ("task_id", "learner_id", "practice_record_id")

CATALOGUE: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType(
            "analysis.submitted",
            1,
            _ANALYSIS,
            "learner_id",
            "An analysis was accepted (or retried) and waits for a worker.",
        ),
        EventType("analysis.started", 1, _ANALYSIS, "learner_id", "A worker started an attempt of the analysis."),
        EventType("analysis.succeeded", 1, _ANALYSIS, "learner_id", "The analysis finished; its result can be read."),
        EventType("analysis.failed", 1, _ANALYSIS, "learner_id", "The analysis failed for good (no retry left)."),
        EventType("analysis.cancelled", 1, _ANALYSIS, "learner_id", "The analysis was cancelled."),
        EventType(
            "review.saved",
            1,
            ("review_id", "task_id", "learner_id", "therapist_id"),
            "learner_id",
            "A therapist saved (created or edited) a review of an analysis.",
        ),
        EventType(
            "assignment.created",
            1,
            ("assignment_id", "learner_id", "sentence_id", "assigned_by"),
            "learner_id",
            "A sentence was put in a learner's practice set.",
        ),
        EventType("link.created", 1, ("learner_id", "therapist_id"), "learner_id", "A learner linked to a therapist."),
        EventType(
            "link.ended", 1, ("learner_id", "therapist_id"), "learner_id", "A learner's link to a therapist ended."
        ),
        EventType(
            "account.erased",
            1,
            ("user_id",),
            "user_id",
            "An account and everything that was its own was erased; consumers forget the id.",
        ),
        EventType(
            "account.password_reset_requested",
            1,
            ("user_id", "token_id"),
            "user_id",
            "Someone asked for a password reset of the account: the notifications consumer mails the link.",
        ),
        EventType(
            "account.verification_requested",
            1,
            ("user_id", "token_id"),
            "user_id",
            "An account's email address needs confirming: the notifications consumer mails the link.",
        ),
        EventType(
            "practice.reminder_due",
            1,
            ("learner_id", "therapist_id"),
            "learner_id",
            "A linked learner behind on this week's target reached their reminder hour (once per local day).",
        ),
    )
}

# The task state changes that are integration events (tasks/states.EventType value -> type).
FOR_TASK_EVENT: dict[str, str] = {
    "submitted": "analysis.submitted",
    "resubmitted": "analysis.submitted",
    "started": "analysis.started",
    "succeeded": "analysis.succeeded",
    "failed": "analysis.failed",
    "cancelled": "analysis.cancelled",
}


def timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def message(
    event_id: str, event_type: str, schema_version: int, occurred_at: datetime, subject: dict[str, Any]
) -> dict[str, Any]:
    """The body of a published message (docs/EVENTS.md): ids only."""
    return {
        "id": event_id,
        "type": event_type,
        "schema_version": schema_version,
        "occurred_at": timestamp(occurred_at),
        "subject": {k: str(v) for k, v in subject.items()},
    }
