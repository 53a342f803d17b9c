"""Issue 23: X-Forwarded-For is believed only from FORWARDED_ALLOW_IPS (empty by default). A
client that sends its own does not change the address the limits count or the access log
records."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.security.conftest import Pair, login

pytestmark = pytest.mark.worker

LIMITS = {"RATE_LIMIT_LOGIN_PER_ADDRESS": "3", "RATE_LIMIT_LOGIN_PER_ACCOUNT": "100", "LOGIN_LOCKOUT_FAILURES": "0"}


def spoofed() -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250}", "X-Real-IP": "198.51.100.7"}


def email() -> str:
    return f"fwd-{uuid.uuid4().hex[:10]}@example.com"


@pytest.mark.parametrize("trusted", [None, "", "10.9.9.9"], ids=["unset", "empty", "another-proxy"])
def test_a_spoofed_forwarded_for_does_not_change_the_counted_or_logged_address(
    start_pair: Callable[[dict[str, str | None]], Pair], trusted: str | None
) -> None:
    pair = start_pair({**LIMITS, "FORWARDED_ALLOW_IPS": trusted})
    sent = []
    for i in range(3):
        headers = spoofed()
        sent.append(headers["X-Forwarded-For"])
        assert login(pair.alternate(i), email(), "whatever-1", headers).status_code == 401, i
    # a fourth "address" is still the same client (127.0.0.1): refused
    r = login(pair.a, email(), "whatever-1", spoofed())
    assert r.status_code == 429 and "too many logins from this address" in r.json()["detail"], r.text
    logs = "".join(p.log() for p in pair.procs)
    assert "127.0.0.1" in logs and "POST /api/v1/auth/login" in logs, logs[-2000:]
    for address in [*sent, "198.51.100.7"]:
        assert address not in logs, f"the access log recorded the spoofed {address}"


def test_forwarded_for_from_a_listed_proxy_is_the_client_address(start_pair: Callable[[dict[str, str]], Pair]) -> None:
    pair = start_pair({**LIMITS, "FORWARDED_ALLOW_IPS": "127.0.0.1"})
    behind = {"X-Forwarded-For": "192.0.2.44"}
    for i in range(3):
        assert login(pair.alternate(i), email(), "whatever-1", behind).status_code == 401, i
    assert login(pair.b, email(), "whatever-1", behind).status_code == 429
    assert login(pair.b, email(), "whatever-1", {"X-Forwarded-For": "192.0.2.45"}).status_code == 401
    assert "192.0.2.44" in "".join(p.log() for p in pair.procs)  # the access log has the real client
