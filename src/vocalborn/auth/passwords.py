"""The password rule: long enough, not only spaces, and not easy to guess.

Guessability is zxcvbn's estimate (its dictionaries of common passwords, names, words and
keyboard patterns ship with the package: nothing is looked up online), given the account's own
words (email, name) and the product's, so "learner-pass" or the email itself does not pass. A
refusal says why, in zxcvbn's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from zxcvbn import zxcvbn

MIN_LENGTH = 10
MIN_SCORE = 3  # zxcvbn 0..4: 3 is "safely unguessable" (about 10^8+ guesses) behind Argon2
_ANALYSED = 72  # zxcvbn's own limit; a longer password is judged by its first 72 characters
_PRODUCT_WORDS = ("vocalborn", "learner", "therapist", "admin", "speech", "practice")


class WeakPassword(ValueError):
    pass


def problem(password: str, user_inputs: Iterable[str | None] = ()) -> str | None:
    """Why ``password`` is refused (one sentence), or None when it is good."""
    if not password.strip():
        return "the password cannot be only spaces"
    if len(password) < MIN_LENGTH:
        return f"the password needs at least {MIN_LENGTH} characters (it has {len(password)})"
    words: list[str] = list(_PRODUCT_WORDS)
    for given in user_inputs:
        if given:
            given = given.lower()
            local = given.split("@", 1)[0]
            words += [given, local, re.sub(r"[^\w]|_", "", local)]  # "zhang.mei" and "zhangmei"
            words += [w for w in re.split(r"[@.+_\-\s]+", given) if len(w) >= 3]
    verdict = zxcvbn(password[:_ANALYSED], user_inputs=words)
    if verdict["score"] >= MIN_SCORE:
        return None
    feedback = verdict.get("feedback") or {}
    why = " ".join(x for x in [feedback.get("warning") or "", *(feedback.get("suggestions") or [])] if x).strip()
    return "the password is too easy to guess" + (f": {why}" if why else "; use a few uncommon words")


def check(password: str, user_inputs: Iterable[str | None] = ()) -> str:
    """``password`` when it is good; WeakPassword with the reason otherwise."""
    found = problem(password, user_inputs)
    if found is not None:
        raise WeakPassword(found)
    return password
