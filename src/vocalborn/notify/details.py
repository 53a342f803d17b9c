"""What the notifications consumer reads besides the event (notify/consumer.py): the names an
analysis notification carries, and the language and values of a mail."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from sqlmodel import Session, select

from vocalborn.auth.models import User
from vocalborn.notify import mail, preferences, service, texts
from vocalborn.notify.models import AccountToken, Notification, NotificationPreferences
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.tasks.models import AIAnalysisResult


def analysis_details(db: Session, subject: dict[str, str], learner_name: str) -> dict[str, str]:
    """What the therapist's notification names (notify/texts.py): the learner's display name,
    the sentence's text and whether the attempt counts (``counted`` "true"/"false" and
    ``not_counted_reason``), read when the event arrives (the result is committed by then)."""
    details = {"learner_name": learner_name}
    with contextlib.suppress(KeyError, ValueError, TypeError):
        record = db.get(PracticeRecord, uuid.UUID(str(subject["practice_record_id"])))
        sentence = db.get(Sentence, record.sentence_id) if record is not None else None
        if sentence is not None:
            details["sentence_text"] = sentence.text
    with contextlib.suppress(KeyError, ValueError, TypeError):
        result = db.exec(
            select(AIAnalysisResult).where(AIAnalysisResult.task_id == uuid.UUID(str(subject["task_id"])))
        ).first()
        if result is not None:
            details["counted"] = "true" if result.counted else "false"
            if result.not_counted_reason:
                details["not_counted_reason"] = result.not_counted_reason
    return details


def mail_language(db: Session, user_id: uuid.UUID, row: Notification) -> str:
    """The user's mail language (notification preferences) when they have saved preferences;
    otherwise, for the account mails, the language of the request that asked for the mail
    (``account_tokens.language``: the page's ?lang / Accept-Language); zh-TW failing both."""
    saved = db.get(NotificationPreferences, user_id)
    if saved is not None:
        return saved.language
    if row.type in service.ACCOUNT_TYPES and row.subject.get("token_id"):
        with contextlib.suppress(ValueError):
            token = db.get(AccountToken, uuid.UUID(str(row.subject["token_id"])))
            if token is not None and token.language in ("zh-TW", "en"):
                return token.language
    return preferences.get(db, user_id).language


def analysis_mail_values(db: Session, subject: dict[str, Any], language: str) -> dict[str, Any]:
    """The learner, the sentence and the "not counted" line of the analysis mail (a row written
    before the subject carried them: looked up by the learner's id, the sentence unnamed)."""
    name = subject.get("learner_name")
    if not name:
        learner = db.get(User, uuid.UUID(subject["learner_id"]))
        name = learner.name if learner else "?"
    reason = texts.not_counted(subject)
    return {
        "learner": name,
        "sentence": subject.get("sentence_text") or "",
        "counted_line": ""
        if reason is None
        else mail.not_counted_line(language, texts.NOT_COUNTED.get(reason, {}).get(language, reason)),
    }
