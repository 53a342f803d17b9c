"""The Standard Webhooks signature (the recipe of docs/EVENTS.md, written here again from the
spec: a tampered body, another secret or an old timestamp fails it) and the SSRF guard (private,
loopback, link-local and metadata targets refused unless WEBHOOK_ALLOWED_HOSTS allows them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from vocalborn.webhooks import signing, targets


def recipe(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """docs/EVENTS.md's verification recipe, as a receiver writes it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) <= 300
    return fresh and any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


def test_secret_is_whsec_and_32_random_bytes() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 32


def test_signature_verifies_and_a_tampered_body_fails() -> None:
    secret = signing.new_secret()
    body = b'{"id":"3f1c","type":"review.saved"}'
    headers = signing.headers(secret, "msg-1", body)
    assert headers["webhook-signature"].startswith("v1,")
    assert recipe(secret, headers, body)
    signing.verify(secret, headers, body)
    tampered = body.replace(b"review", b"revieW")
    assert not recipe(secret, headers, tampered)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(secret, headers, tampered)
    other = signing.new_secret()
    assert not recipe(other, headers, body)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(other, headers, body)
    old = signing.headers(secret, "msg-1", body, timestamp=int(time.time()) - 3600)
    assert not recipe(secret, old, body)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(secret, old, body)
    # another id under the same signature (a replay as another message) fails too
    with pytest.raises(signing.InvalidSignature):
        signing.verify(secret, {**headers, "webhook-id": "msg-2"}, body)


def test_known_vector() -> None:
    """A fixed secret, id, time and body give a fixed signature (computed independently above)."""
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"a":1}'
    key = b"k" * 32
    want = "v1," + base64.b64encode(hmac.new(key, b'id1.1700000000.{"a":1}', hashlib.sha256).digest()).decode()
    assert signing.sign(secret, "id1", 1700000000, body) == want


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
    ],
)
def test_private_loopback_link_local_and_metadata_targets_are_refused(url: str) -> None:
    with pytest.raises(targets.UnsafeTarget, match="WEBHOOK_ALLOWED_HOSTS"):
        targets.check(url, targets.Allowed.parse(""))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.216.34/x", "only http and https"),
        ("http:///nohost", "no host"),
        ("http://user:pw@93.184.216.34/x", "credentials"),
        ("http://no-such-host.invalid/x", "does not resolve"),
        ("http://93.184.216.34:99999/x", "not a valid URL"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(targets.UnsafeTarget, match=why):
        targets.check(url, targets.Allowed.parse(""))


def test_allowed_hosts_and_cidrs() -> None:
    allowed = targets.Allowed.parse(" 127.0.0.0/8, localhost ,10.9.0.0/16,::1")
    assert targets.check("http://127.0.0.1:9/x", allowed).addresses == ("127.0.0.1",)
    assert targets.check("http://10.9.3.4/x", allowed).host == "10.9.3.4"
    assert targets.check("http://[::1]/x", allowed).addresses == ("::1",)
    targets.check("http://localhost/x", allowed)  # by name, whatever it resolves to
    with pytest.raises(targets.UnsafeTarget):
        targets.check("http://10.8.0.1/x", allowed)
    public = targets.check("https://93.184.216.34/x", targets.Allowed.parse(""))
    assert public.port == 443 and public.addresses == ("93.184.216.34",)
