"""The admin API of webhook endpoints on the real database: 201 with id and whsec_ secret,
clear 4xx on bad input (a loopback URL, an unknown type, a missing field), list/get without the
secret, enable/disable, delete; admins only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import Api
from tests.webhooks.support import clear_endpoints

BASE = "/api/v1/admin/webhooks"
PUBLIC = "https://93.184.216.34/hooks/vocalborn"  # a literal public address: no DNS, never called


@pytest.fixture
def clean(api: Api) -> Iterator[None]:
    clear_endpoints()
    yield
    clear_endpoints()


def test_register_list_get_update_delete(api: Api, clean: None) -> None:
    admin = api.admin()["headers"]
    r = api.client.post(
        BASE, json={"url": PUBLIC, "event_types": ["review.saved", "analysis.succeeded"]}, headers=admin
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["secret"].startswith("whsec_") and made["enabled"] is True
    assert made["event_types"] == ["analysis.succeeded", "review.saved"]
    hook = made["id"]
    listed = api.client.get(BASE, headers=admin).json()
    assert [h["id"] for h in listed] == [hook] and "secret" not in listed[0]
    one = api.client.get(f"{BASE}/{hook}", headers=admin)
    assert one.status_code == 200 and "secret" not in one.json()
    off = api.client.patch(f"{BASE}/{hook}", json={"enabled": False}, headers=admin)
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert off.json()["disabled_reason"] == "disabled by an admin"
    on = api.client.patch(f"{BASE}/{hook}", json={"enabled": True, "event_types": ["link.created"]}, headers=admin)
    assert on.json()["enabled"] is True and on.json()["disabled_reason"] is None
    assert on.json()["event_types"] == ["link.created"]
    assert api.client.get(f"{BASE}/{hook}/deliveries", headers=admin).json() == []
    assert api.client.delete(f"{BASE}/{hook}", headers=admin).status_code == 204
    assert api.client.get(f"{BASE}/{hook}", headers=admin).status_code == 404
    assert api.client.delete(f"{BASE}/{hook}", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"url": "http://127.0.0.1:9000/x", "event_types": ["review.saved"]}, "url", "loopback"),
        ({"url": "http://169.254.169.254/latest", "event_types": ["review.saved"]}, "url", "link-local"),
        ({"url": "http://10.0.0.5/x", "event_types": ["review.saved"]}, "url", "private"),
        ({"url": "file:///etc/passwd", "event_types": ["review.saved"]}, "url", "http and https"),
        ({"url": PUBLIC, "event_types": ["review.saved", "nope.never"]}, "event_types", "nope.never"),
        ({"url": PUBLIC, "event_types": []}, "event_types", ""),
        ({"url": PUBLIC}, "event_types", ""),
        ({"event_types": ["review.saved"]}, "url", ""),
        ({"url": PUBLIC, "event_types": ["review.saved"], "secret": "mine"}, "secret", ""),
    ],
)
def test_bad_input_is_a_clear_422_and_writes_nothing(
    api: Api, clean: None, body: dict[str, Any], field: str, text: str
) -> None:
    admin = api.admin()["headers"]
    r = api.client.post(BASE, json=body, headers=admin)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(field in ".".join(map(str, d["loc"])) for d in detail), detail
    assert text in str(detail)
    assert api.client.get(BASE, headers=admin).json() == []


def test_updating_to_a_loopback_url_is_refused(api: Api, clean: None) -> None:
    admin = api.admin()["headers"]
    hook = api.client.post(BASE, json={"url": PUBLIC, "event_types": ["review.saved"]}, headers=admin).json()["id"]
    r = api.client.patch(f"{BASE}/{hook}", json={"url": "http://localhost:8000/x"}, headers=admin)
    assert r.status_code == 422 and "loopback" in r.text
    assert api.client.get(f"{BASE}/{hook}", headers=admin).json()["url"] == PUBLIC


def test_admins_only_and_unknown_ids(api: Api, clean: None) -> None:
    learner = api.register("learner")["headers"]
    therapist = api.register("therapist")["headers"]
    for who in (learner, therapist):
        assert (
            api.client.post(BASE, json={"url": PUBLIC, "event_types": ["review.saved"]}, headers=who).status_code == 403
        )
        assert api.client.get(BASE, headers=who).status_code == 403
    assert api.client.get(BASE).status_code == 401
    admin = api.admin()["headers"]
    missing = uuid.uuid4()
    assert api.client.get(f"{BASE}/{missing}/deliveries", headers=admin).status_code == 404
    assert api.client.post(f"{BASE}/{missing}/deliveries/1/redeliver", headers=admin).status_code == 404
    assert api.client.get(f"{BASE}/not-a-uuid", headers=admin).status_code == 422


def test_refusals_in_both_languages(api: Api, clean: None) -> None:
    admin = api.admin()["headers"]
    body = {"url": "http://127.0.0.1:9000/x", "event_types": ["review.saved"]}
    en = api.client.post(BASE, json=body, headers=admin)
    zh = api.client.post(BASE, json=body, headers={**admin, "Accept-Language": "zh-TW"})
    assert en.status_code == zh.status_code == 422
    assert "loopback" in en.text and "WEBHOOK_ALLOWED_HOSTS" in en.text
    assert "本機" in zh.json()["detail"][0]["msg"], zh.text
    missing = api.client.get(f"{BASE}/{uuid.uuid4()}", headers={**admin, "Accept-Language": "zh-TW"})
    assert missing.status_code == 404 and "webhook" in missing.text and "找不到" in missing.json()["detail"]
