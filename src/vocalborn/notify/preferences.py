"""Per-user notification preferences (``GET/PUT /api/v1/me/notification-preferences``) and the
quiet-hours arithmetic."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlmodel import Session

from vocalborn.notify.models import NotificationPreferences
from vocalborn.sqltypes import utcnow

# The kinds a user may turn on or off (the account mails always go).
KINDS: tuple[str, ...] = ("analysis.succeeded", "review.saved")
DEFAULT_TIMEZONE = "Asia/Taipei"
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="HH:MM, local time, e.g. 22:00")
    end: str = Field(description="HH:MM, local time, e.g. 07:00; before start: the window crosses midnight")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("quiet hours are given as HH:MM (00:00 to 23:59)")
        return value

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("start") == value:
            raise ValueError("quiet hours need an end different from their start")
        return value


class PreferencesView(BaseModel):
    kinds: list[str] = Field(description=f"which notifications to get, of {list(KINDS)}")
    email: bool = Field(description="also by email")
    quiet_hours: QuietHours | None = Field(description="nothing is sent or pushed in this window; held until it ends")
    timezone: str = Field(description="IANA time zone of quiet_hours, reminder_hour and the digest")
    reminder_hour: int | None = Field(description="local hour (0-23) of the practice reminder; null: none")
    daily_digest: bool = Field(description="therapists: one mail a day summarising linked learners' practice")
    language: Literal["zh-TW", "en"] = Field(description="the language of the mails")


class PreferencesUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[str] | None = None
    email: bool | None = None
    quiet_hours: QuietHours | None = None
    timezone: str | None = Field(default=None, max_length=64)
    reminder_hour: int | None = Field(default=None, ge=0, le=23)
    daily_digest: bool | None = None
    language: Literal["zh-TW", "en"] | None = None

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown notification kinds {unknown}; the kinds are {list(KINDS)}")
        return [k for k in KINDS if k in value]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value not in _zones():
            raise ValueError(f"{value!r} is not an IANA time zone (such as Asia/Taipei or Europe/Berlin)")
        return value


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones()
    return _ZONES


_ZONES: set[str] | None = None


def get(db: Session, user_id: uuid.UUID) -> NotificationPreferences:
    """The user's preferences (the defaults if never set; not added to the session)."""
    found = db.get(NotificationPreferences, user_id)
    if found is not None:
        return found
    return NotificationPreferences(user_id=user_id, kinds=list(KINDS))


def view(prefs: NotificationPreferences) -> PreferencesView:
    quiet = QuietHours(start=prefs.quiet_start, end=prefs.quiet_end) if prefs.quiet_start and prefs.quiet_end else None
    return PreferencesView(
        kinds=list(prefs.kinds),
        email=prefs.email,
        quiet_hours=quiet,
        timezone=prefs.timezone,
        reminder_hour=prefs.reminder_hour,
        daily_digest=prefs.daily_digest,
        language=prefs.language,  # type: ignore[arg-type,unused-ignore]
    )


def update(db: Session, user_id: uuid.UUID, change: PreferencesUpdate) -> NotificationPreferences:
    prefs = db.get(NotificationPreferences, user_id) or NotificationPreferences(user_id=user_id, kinds=list(KINDS))
    given = change.model_fields_set
    if "kinds" in given and change.kinds is not None:
        prefs.kinds = change.kinds
    if "email" in given and change.email is not None:
        prefs.email = change.email
    if "quiet_hours" in given:
        prefs.quiet_start = change.quiet_hours.start if change.quiet_hours else None
        prefs.quiet_end = change.quiet_hours.end if change.quiet_hours else None
    if "timezone" in given and change.timezone is not None:
        prefs.timezone = change.timezone
    if "reminder_hour" in given:
        prefs.reminder_hour = change.reminder_hour
    if "daily_digest" in given and change.daily_digest is not None:
        prefs.daily_digest = change.daily_digest
    if "language" in given and change.language is not None:
        prefs.language = change.language
    prefs.updated_at = utcnow()
    db.add(prefs)
    db.commit()
    db.refresh(prefs)
    return prefs


def _hm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def zone(prefs: NotificationPreferences) -> ZoneInfo:
    try:
        return ZoneInfo(prefs.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def release_time(prefs: NotificationPreferences, now: datetime | None = None) -> datetime:
    """When something for this user may go out: ``now``, or the end of the quiet window ``now``
    falls in (UTC)."""
    now = now or utcnow()
    if not prefs.quiet_start or not prefs.quiet_end:
        return now
    tz = zone(prefs)
    local = now.astimezone(tz)
    start, end = _hm(prefs.quiet_start), _hm(prefs.quiet_end)
    t = local.time()
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # crosses midnight: 22:00-07:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return now
    ends = datetime.combine(end_day, end, tzinfo=tz)
    return ends.astimezone(now.tzinfo)
