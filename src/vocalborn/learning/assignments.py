"""Practice sets: the sentences a therapist (or an admin) assigns to a learner."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vocalborn.auth.models import Role, User
from vocalborn.errors import DomainError, Forbidden, NotFound, validation_error
from vocalborn.events import outbox
from vocalborn.learning.access import learner_for
from vocalborn.learning.models import SentenceAssignment
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.practice.service import _visible_sentences, can_see_sentence, get_sentence, live_sentence
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask


class Unassignable(DomainError):
    """The sentence exists and the actor sees it, but the learner may not."""

    status_code = 422

    def body(self, message: str) -> dict[str, Any]:
        return validation_error("sentence_id", message, "sentence_not_visible_to_learner")


def _may_assign(db: Session, actor: User, learner_id: uuid.UUID) -> User:
    learner = learner_for(db, actor, learner_id)
    if actor.role not in (Role.THERAPIST, Role.ADMIN):
        raise Forbidden("this needs the role admin or therapist")
    return learner


def add_assignment(
    db: Session,
    actor: User,
    learner_id: uuid.UUID,
    sentence_id: uuid.UUID,
    goals: dict[str, Any] | None = None,
) -> tuple[SentenceAssignment, bool]:
    """Assign the sentence (True: new) with the goal fields given; assigning it again updates the
    goal fields given and keeps the rest."""
    learner = _may_assign(db, actor, learner_id)
    sentence = live_sentence(db, sentence_id, actor)  # NotFound unless the actor may see it (and not deleted)
    if not can_see_sentence(learner, sentence):
        # Only an admin gets here (a linked therapist's learner sees what the therapist sees).
        raise Unassignable("this learner cannot see this sentence; share it or pick another")
    goals = goals or {}
    existing = db.exec(
        select(SentenceAssignment).where(
            SentenceAssignment.learner_id == learner_id, SentenceAssignment.sentence_id == sentence_id
        )
    ).first()
    if existing is not None:
        if goals:
            for key, value in goals.items():
                setattr(existing, key, value)
            db.add(existing)
            db.commit()
            db.refresh(existing)
        return existing, False
    a = SentenceAssignment(learner_id=learner_id, sentence_id=sentence_id, assigned_by=actor.user_id, **goals)
    db.add(a)
    outbox.add(
        db,
        "assignment.created",
        a.created_at,
        assignment_id=a.assignment_id,
        learner_id=learner_id,
        sentence_id=sentence_id,
        assigned_by=actor.user_id,
    )
    try:
        db.commit()
    except IntegrityError:  # assigned twice at the same moment
        db.rollback()
        existing = db.exec(
            select(SentenceAssignment).where(
                SentenceAssignment.learner_id == learner_id, SentenceAssignment.sentence_id == sentence_id
            )
        ).one()
        return existing, False
    db.refresh(a)
    return a, True


def remove_assignment(db: Session, actor: User, learner_id: uuid.UUID, sentence_id: uuid.UUID) -> None:
    _may_assign(db, actor, learner_id)
    get_sentence(db, sentence_id, actor)  # a sentence the actor may not see is not there for them
    a = db.exec(
        select(SentenceAssignment).where(
            SentenceAssignment.learner_id == learner_id, SentenceAssignment.sentence_id == sentence_id
        )
    ).first()
    if a is None:
        raise NotFound("this sentence is not assigned to this learner")
    db.delete(a)
    db.commit()


def assignments(db: Session, reader: User, learner_id: uuid.UUID) -> list[dict[str, Any]]:
    learner = learner_for(db, reader, learner_id)
    rows = db.exec(
        select(SentenceAssignment, Sentence)
        .join(Sentence, col(Sentence.sentence_id) == col(SentenceAssignment.sentence_id))
        # Only sentences both the learner and the reader may see: an assignment of a sentence
        # the learner lost (relinked, unshared) is not practicable, and never shown to a
        # therapist it is not visible to.
        .where(
            SentenceAssignment.learner_id == learner_id,
            col(Sentence.deleted_at).is_(None),  # a deleted sentence leaves the practice set
            _visible_sentences(learner),
            _visible_sentences(reader),
        )
        .order_by(col(SentenceAssignment.created_at))
    ).all()
    out = []
    for a, sentence in rows:
        scored = list(
            db.exec(
                select(AIAnalysisTask.created_at, AIAnalysisResult.overall_score)
                .join(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
                .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
                .where(AIAnalysisTask.user_id == learner_id, PracticeRecord.sentence_id == sentence.sentence_id)
                .where(col(AIAnalysisResult.counted))  # attempts that count (issue #26)
                .order_by(col(AIAnalysisTask.created_at).desc())
            )
        )
        values = [s for _, s in scored if s is not None]
        out.append(
            {
                "assignment_id": a.assignment_id,
                "learner_id": a.learner_id,
                "sentence_id": sentence.sentence_id,
                "sentence_text": sentence.text,
                "assigned_by": a.assigned_by,
                "created_at": a.created_at,
                "attempts": len(scored),
                "best_overall": max(values) if values else None,
                "last_overall": values[0] if values else None,
                "last_practised_at": scored[0][0] if scored else None,
                "target_attempts_per_week": a.target_attempts_per_week,
                "target_minutes_per_week": a.target_minutes_per_week,
                "days_per_week": a.days_per_week,
                "due_on": a.due_on,
            }
        )
    return out
