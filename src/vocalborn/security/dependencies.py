"""The per-user rate limits as FastAPI dependencies of the routes they guard (the counting is
``ratelimit``'s; these only name the user and the limit)."""

from __future__ import annotations

from fastapi import Request

from vocalborn.auth.dependencies import CurrentUser
from vocalborn.config import get_settings
from vocalborn.errors import raises
from vocalborn.security.ratelimit import client_address, enforce


@raises(429)
def limit_uploads(user: CurrentUser) -> None:
    s = get_settings()
    enforce("upload", user.user_id.hex, s.rate_limit_uploads_per_user, s.rate_limit_window_seconds, "too many uploads")


@raises(429)
def limit_exports(user: CurrentUser) -> None:
    s = get_settings()
    enforce("export", user.user_id.hex, s.rate_limit_exports_per_user, 3600, "too many exports")


@raises(429)
def limit_link_accepts(request: Request, user: CurrentUser) -> None:
    """Invitation codes tried, per learner and per address: a code is ten characters a person
    can read aloud, so the number of guesses is what keeps it from being found."""
    s = get_settings()
    window = s.rate_limit_window_seconds
    detail = "too many invitation codes tried"
    enforce("link-accept", user.user_id.hex, s.rate_limit_link_accepts_per_user, window, detail)
    enforce("link-accept-ip", client_address(request), s.rate_limit_link_accepts_per_address, window, detail)
