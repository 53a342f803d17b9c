from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from vocalborn.auth import sessions
from vocalborn.auth.models import Role, User
from vocalborn.auth.security import hash_password, verify_password


class EmailTaken(Exception):
    pass


def create_user(db: Session, *, email: str, password: str, name: str, role: Role) -> User:
    user = User(email=email.strip().lower(), name=name.strip(), role=role.value, password_hash=hash_password(password))
    db.add(user)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise EmailTaken(email) from exc
    db.refresh(user)
    return user


def authenticate(db: Session, email: str, password: str) -> User | None:
    user = db.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        # Spend the same time as a real check, so response time does not reveal who exists.
        verify_password(password, _DUMMY_HASH())
        return None
    return user if verify_password(password, user.password_hash) else None


def authenticate_user(user: User, password: str) -> bool:
    return verify_password(password, user.password_hash)


def set_password(db: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    db.add(user)
    db.commit()


def change_role(db: Session, user: User, role: Role) -> int:
    """A new role; every session of the user ends at once (the number ended)."""

    user.role = role.value
    db.add(user)
    db.commit()
    return sessions.end_all(db, user.user_id, "role changed")


def get_user_by_email(db: Session, email: str) -> User | None:
    return db.exec(select(User).where(User.email == email.strip().lower())).first()


def link_therapist(db: Session, learner: User, therapist: User) -> None:
    if learner.role != Role.LEARNER or therapist.role != Role.THERAPIST:
        raise ValueError("link a learner to a therapist")
    learner.therapist_id = therapist.user_id
    db.add(learner)
    db.commit()


def can_read(reader: User, owner_id: uuid.UUID, owner_therapist_id: uuid.UUID | None) -> bool:
    """Owners, their linked therapist and admins may read a learner's records and analyses."""
    return (
        reader.role == Role.ADMIN
        or reader.user_id == owner_id
        or (reader.role == Role.THERAPIST and owner_therapist_id == reader.user_id)
    )


_dummy: list[str] = []


def _DUMMY_HASH() -> str:  # noqa: N802
    if not _dummy:
        _dummy.append(hash_password("not-a-real-password"))
    return _dummy[0]
