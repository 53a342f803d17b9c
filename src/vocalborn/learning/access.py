"""Who may see a learner's data (the rule every learning service applies).

A learner's analyses are visible to the learner, to the therapist linked to them
(``users.therapist_id``) and to admins. Anyone else is told the learner, task or review does not
exist (404), so ids cannot be probed.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from vocalborn.auth.models import Role, User
from vocalborn.errors import NotFound


def learner_for(db: Session, reader: User, learner_id: uuid.UUID) -> User:
    """The learner if ``reader`` is the learner, their linked therapist or an admin; else NotFound."""
    learner = db.get(User, learner_id)
    if learner is None or learner.role != Role.LEARNER:
        raise NotFound("learner not found")
    if reader.role == Role.ADMIN or reader.user_id == learner.user_id:
        return learner
    if reader.role == Role.THERAPIST and learner.therapist_id == reader.user_id:
        return learner
    raise NotFound("learner not found")


def linked_learner_ids(db: Session, therapist: User) -> list[uuid.UUID]:
    stmt = select(User.user_id).where(User.therapist_id == therapist.user_id, User.role == Role.LEARNER.value)
    return list(db.exec(stmt))
