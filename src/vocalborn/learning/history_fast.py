"""A learner's own history page in one SQL statement, on PostgreSQL.

The history page is what a learner's client opens most after submit and status, so the common
case skips the ORM and the thread pool: one round trip on the asyncio pool of ``fastdb``. Like
``tasks/submission/fastpath.py`` it answers only the case it can decide alone and returns None otherwise,
so the caller takes the ordinary path (``history.history``), which has every rule and message:

* fast: the token's user exists and is a learner, and reads their own analyses (no ``user_id``
  or their own); the cursor decodes. The filters (sentence, status, since) and the cursor are
  the ordinary path's, written as index conditions on ``(user_id, created_at, task_id)``.
* ordinary: therapists and admins (linked learners, everyone, the access log), another
  learner's ``user_id`` (404), a cursor that does not decode (422), SQLite.

A learner reading their own data writes no access-log entry (``record_access`` skips it), so
the fast path has nothing to log. The page is built with the same models, so its JSON is the
ordinary path's byte for byte (tests/learning/test_history_fast.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

from vocalborn.auth.models import Role
from vocalborn.kit.fastdb import fetch_all, get_pool
from vocalborn.learning.history import decode_cursor, encode_cursor
from vocalborn.learning.models import SCORE_FIELDS
from vocalborn.learning.schemas import HistoryItem, HistoryPage, ReviewSummary
from vocalborn.practice import counting

_SCORES = ", ".join(f"res.{f}::float8 AS {f}" for f in SCORE_FIELDS)
_REVIEW_SCORES = ", ".join(f"rv.{f}::float8 AS review_{f}" for f in SCORE_FIELDS)


@cache
def _sql(sentence: bool, status: bool, since: bool, cursor: bool) -> str:
    """The statement for one combination of filters: each filter present is an index condition
    (never ``%(x)s IS NULL OR ...``, which a generic plan could only filter on)."""
    where = ["t.user_id = me.user_id"]
    if sentence:
        where.append("r.sentence_id = %(sentence)s")
    if status:
        where.append("t.status = %(status)s")
    if since:
        where.append("t.created_at >= %(since)s")
    if cursor:
        where.append("(t.created_at, t.task_id) < (%(at)s, %(tid)s)")
    # One row even for a learner with no analyses (the page's columns then NULL); no row at all
    # when the token's user is gone or is not a learner: the ordinary path decides.
    return f"""
SELECT page.*, rv.therapist_id AS review_therapist_id, rv.comment AS review_comment,
  rv.updated_at AS review_updated_at, {_REVIEW_SCORES}
FROM (SELECT user_id FROM users WHERE user_id = %(uid)s AND role = %(learner)s) me
LEFT JOIN LATERAL (
  SELECT t.task_id, t.practice_record_id, r.practice_session_id, s.sentence_id, s.text AS sentence_text,
    t.user_id, t.status, t.created_at, t.completed_at, {_SCORES}, res.completeness_score::float8 AS completeness_score,
    res.counted, res.not_counted_reason
  FROM ai_analysis_tasks t
  JOIN practice_records r ON r.practice_record_id = t.practice_record_id
  JOIN sentences s ON s.sentence_id = r.sentence_id
  LEFT JOIN ai_analysis_results res ON res.task_id = t.task_id
  WHERE {" AND ".join(where)}
  ORDER BY t.created_at DESC, t.task_id DESC
  LIMIT %(n)s
) page ON true
LEFT JOIN LATERAL (
  SELECT * FROM therapist_reviews v WHERE v.task_id = page.task_id ORDER BY v.updated_at DESC LIMIT 1
) rv ON true
ORDER BY page.created_at DESC, page.task_id DESC
"""


def _utc(value: datetime | None) -> datetime | None:
    """As the ORM's ``UTCDateTime`` reads it: aware, in UTC (psycopg gives the session's zone)."""
    return value.astimezone(UTC) if value is not None else None


def _item(row: dict[str, Any], lang: str) -> HistoryItem:
    review = None
    if row["review_therapist_id"] is not None:
        review = ReviewSummary(
            therapist_id=row["review_therapist_id"],
            comment=row["review_comment"],
            updated_at=_utc(row["review_updated_at"]),
            **{f: row[f"review_{f}"] for f in SCORE_FIELDS},
        )
    return HistoryItem(
        task_id=row["task_id"],
        practice_record_id=row["practice_record_id"],
        practice_session_id=row["practice_session_id"],
        sentence_id=row["sentence_id"],
        sentence_text=row["sentence_text"],
        user_id=row["user_id"],
        status=row["status"],
        created_at=_utc(row["created_at"]),
        completed_at=_utc(row["completed_at"]),
        completeness_score=row["completeness_score"],
        review=review,
        counted=row["counted"],
        not_counted_reason=row["not_counted_reason"],
        not_counted_text=counting.reason_text(row["not_counted_reason"], lang),
        **{f: row[f] for f in SCORE_FIELDS},
    )


async def own_history(
    user_id: uuid.UUID,
    *,
    sentence_id: uuid.UUID | None,
    status: str | None,
    since: datetime | None,
    cursor: str | None,
    limit: int,
    lang: str = "en",
) -> HistoryPage | None:
    """The learner's own page, as ``history.history`` and the router build it, or None: the
    ordinary path must decide. ``since`` is aware and in UTC already (the router's ``_since``)."""
    if await get_pool() is None:
        return None
    params: dict[str, Any] = {"uid": user_id, "learner": Role.LEARNER.value, "n": limit + 1}
    if cursor:
        try:
            params["at"], params["tid"] = decode_cursor(cursor)
        except ValueError:
            return None  # the ordinary path answers 422, after its own checks
    params.update(sentence=sentence_id, status=status, since=since)
    sql = _sql(sentence_id is not None, status is not None, since is not None, bool(cursor))
    rows, names = await fetch_all(sql, params)
    if not rows:
        return None
    found = [dict(zip(names, r, strict=True)) for r in rows if r[0] is not None]
    more = len(found) > limit
    items = [_item(r, lang) for r in found[:limit]]
    last = items[-1] if items else None
    next_cursor = encode_cursor(last.created_at, last.task_id) if more and last else None
    return HistoryPage(items=items, next_cursor=next_cursor)
