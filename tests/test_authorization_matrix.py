"""Who may call what: one table, every route of the app (and the WebSocket) in it.

The routes are read from the app itself: a route without an entry in ``MATRIX`` fails
``test_every_route_has_an_entry``. Each entry gives, per role, the status codes that count as
the right answer (a set where the outcome depends on order, e.g. 202 then 200 for a repeated
submit, or 200/409 for a result that may not be ready: both mean "allowed"; 403 and 404 mean
"refused", and a refusal must never reveal whether the resource exists).

Roles: anonymous, the learner who owns the data, another learner, the therapist linked to the
owner (users.therapist_id), a therapist who is not, and an admin. To add a route: add one line
``"METHOD /path/{param}": row(anonymous=..., owner=..., ...)`` (or ``same(...)``), with a body
in ``BODIES`` if it takes one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from sqlalchemy import update
from sqlmodel import col

from tests.support import Api, recording
from vocalborn.auth.models import User
from vocalborn.db import open_session
from vocalborn.main import app

PASSWORD = "correct-horse-1"  # tests.support.Api.register's
ROLES = ("anonymous", "other_learner", "unlinked_therapist", "linked_therapist", "admin", "owner")
Expect = dict[str, set[int]]


def row(
    anonymous: int | set[int],
    owner: int | set[int],
    other_learner: int | set[int],
    linked_therapist: int | set[int],
    unlinked_therapist: int | set[int],
    admin: int | set[int],
) -> Expect:
    given = {
        "anonymous": anonymous,
        "owner": owner,
        "other_learner": other_learner,
        "linked_therapist": linked_therapist,
        "unlinked_therapist": unlinked_therapist,
        "admin": admin,
    }
    return {k: v if isinstance(v, set) else {v} for k, v in given.items()}


def same(code: int | set[int]) -> Expect:
    return row(code, code, code, code, code, code)


def signed_in(code: int | set[int]) -> Expect:
    return row(401, code, code, code, code, code)


# The owner's own data: readable by the owner, the linked therapist and admins; 404 to the rest.
OWNED = row(401, 200, 404, 200, 404, 200)
ADMIN_ONLY = row(401, 403, 403, 403, 403, 200)
MAYBE_READY = {200, 409}  # a result: allowed, but the analysis may not have finished

MATRIX: dict[str, Expect] = {
    # --- public --------------------------------------------------------------------------------
    "GET /health": same(200),
    "GET /health/ready": same({200, 503}),
    "GET /": same(200),
    "GET /docs": same(200),
    "GET /docs/openapi.json": same(200),
    "GET /openapi.json": same(200),
    "GET /redoc": same(200),
    "GET /metrics": same(200),
    "GET /asyncapi.json": same(200),
    "POST /api/v1/auth/register": same(202),  # the same answer for a new and a taken email
    "POST /api/v1/auth/login": same(200),
    # --- auth ----------------------------------------------------------------------------------
    "GET /api/v1/auth/me": signed_in(200),
    # a fresh refresh token of the owner's each time: whoever sends it gets the next pair
    "POST /api/v1/auth/refresh": same(200),
    # the body's current password is wrong for everyone: refused, nothing changes
    "POST /api/v1/auth/password": row(401, 403, 403, 403, 403, 403),
    "GET /api/v1/auth/sessions": signed_in(200),
    # the second factor: therapists and admins; a wrong code to confirm (409 before any set-up)
    "POST /api/v1/auth/totp/setup": row(401, 403, 403, 200, 200, 200),
    "POST /api/v1/auth/totp/confirm": row(401, 403, 403, {409, 422}, {409, 422}, {409, 422}),
    # a second login of the owner's (URL_IDS: not the practice session): only the owner ends it
    # (the owner comes last)
    "DELETE /api/v1/auth/sessions/{session_id}": row(401, 204, 404, 404, 404, 404),
    # --- practice ------------------------------------------------------------------------------
    "POST /api/v1/practice/sentences": row(401, 403, 403, 201, 201, 201),
    "GET /api/v1/practice/sentences": signed_in(200),
    "GET /api/v1/practice/sentences/{sentence_id}": signed_in(200),
    "GET /api/v1/practice/sentences/{sentence_id}/audio": signed_in(200),
    "POST /api/v1/practice/sessions": row(401, 201, 201, 403, 403, 201),
    "GET /api/v1/practice/sessions": signed_in(200),
    "GET /api/v1/practice/sessions/{session_id}": OWNED,
    # only the learner records into their session; readers who may see it get 404 all the same
    "POST /api/v1/practice/sessions/{session_id}/records": row(401, 201, 404, 404, 404, 404),
    "GET /api/v1/practice/sessions/{session_id}/records": OWNED,
    "GET /api/v1/practice/records/{record_id}": OWNED,
    "GET /api/v1/practice/records/{record_id}/audio": OWNED,
    # --- analysis tasks ------------------------------------------------------------------------
    # admin (before the owner) may submit for a learner; the owner then gets the same task (200)
    "POST /api/v1/tasks/analysis/submit": row(401, {200, 202}, 404, 403, 404, {200, 202}),
    "GET /api/v1/tasks/analysis/{task_id}/status": OWNED,
    "GET /api/v1/tasks/analysis/{task_id}/result": row(401, MAYBE_READY, 404, MAYBE_READY, 404, MAYBE_READY),
    "GET /api/v1/tasks/analysis/{task_id}/events": OWNED,
    "GET /api/v1/tasks/analysis/session/{session_id}/status": OWNED,
    # cancel: the owner or an admin (whoever comes second finds it cancelled: 409)
    "DELETE /api/v1/tasks/analysis/{task_id}": row(401, {200, 409}, 404, 403, 404, {200, 409}),
    # the WebSocket: "accept" or the close code it refuses with
    "WS /api/v1/tasks/ws/task/{task_id}": row(1008, 1000, 1008, 1000, 1008, 1000),
    # --- admin ---------------------------------------------------------------------------------
    "GET /api/v1/admin/tasks/stats": ADMIN_ONLY,
    "GET /api/v1/admin/tasks": ADMIN_ONLY,
    "DELETE /api/v1/admin/tasks/{task_id}": row(401, 403, 403, 403, 403, {200, 409}),
    "POST /api/v1/admin/tasks/{task_id}/retry": row(401, 403, 403, 403, 403, {200, 409}),
    "POST /api/v1/admin/tasks/cleanup": ADMIN_ONLY,
    "POST /api/v1/admin/tasks/retry": ADMIN_ONLY,  # the bulk retry (a dry run here)
    "POST /api/v1/admin/therapist-invitations": row(401, 403, 403, 403, 403, 201),
    # --- history, progress, dashboard, links, reviews, practice sets (issue 10) ---------------------
    # everyone signed in has a history: their own, their linked learners', or (admin) all
    "GET /api/v1/tasks/analysis": signed_in(200),
    "GET /api/v1/learners/{user_id}/progress": OWNED,
    "GET /api/v1/therapists/me/learners": row(401, 403, 403, 200, 200, 403),
    "POST /api/v1/links/invitations": row(401, 403, 403, 201, 201, 403),
    "GET /api/v1/links/invitations": row(401, 403, 403, 200, 200, 403),
    "GET /api/v1/links/therapist": row(401, 200, 200, 403, 403, 403),
    # a fresh code of the linked therapist's: the owner is linked to them already (200, idempotent);
    # the other learner becomes linked; therapists and admins accept nothing
    "POST /api/v1/links/accept": row(401, {200, 409}, 200, 403, 403, 403),
    "GET /api/v1/tasks/analysis/{task_id}/review": OWNED,
    # the linked therapist reviews (the analysis may not have finished: 409); the owner and an
    # admin may read but not write a therapist's review
    "PUT /api/v1/tasks/analysis/{task_id}/review": row(401, 403, 404, {200, 201, 409}, 404, 403),
    "GET /api/v1/reviews/export": ADMIN_ONLY,
    "GET /api/v1/learners/{user_id}/assignments": OWNED,
    "GET /api/v1/learners/{user_id}/goals": OWNED,
    "POST /api/v1/learners/{user_id}/assignments": row(401, 403, 404, {200, 201}, 404, {200, 201}),
    # (the assignment is made again before each role's request: see BEFORE_EACH)
    "DELETE /api/v1/learners/{user_id}/assignments/{sentence_id}": row(401, 403, 404, 204, 404, 204),
    # --- security (issue 12) -------------------------------------------------------------------------
    # the linked therapist wrote the (shared) sentence: its author and admins may (un)share it;
    # the other therapist sees it but may not change it
    "PUT /api/v1/practice/sentences/{sentence_id}/shared": row(401, 403, 403, 200, 403, 200),
    "GET /api/v1/me/access-log": signed_in(200),
    # --- issue #26: report, drills, editing a sentence -------------------------------------------
    # the clinical report: the learner and the linked therapist only (an admin: 403)
    "GET /api/v1/learners/{user_id}/report": row(401, 200, 404, 200, 404, 403),
    "GET /api/v1/learners/{user_id}/drills": OWNED,
    # assigning a drill: the world's learner has no suggestion yet, so a therapist or admin allowed
    # to assign gets 422 on the text; a learner 403; the rest 404
    "POST /api/v1/learners/{user_id}/drills": row(401, 403, 404, 422, 404, 422),
    # only the author edits (the world's sentence is shared: the other therapist sees it, 403)
    "PATCH /api/v1/practice/sentences/{sentence_id}": row(401, 403, 403, 200, 403, 403),
    "GET /api/v1/me/export": signed_in(200),
    # --- notifications, accounts, dead letters (issue 25) --------------------------------------------
    "GET /api/v1/notifications": signed_in(200),
    "GET /api/v1/notifications/unread-count": signed_in(200),
    # nobody's notification (URL_IDS): 404 to everyone signed in
    "POST /api/v1/notifications/{notification_id}/read": row(401, 404, 404, 404, 404, 404),
    "GET /api/v1/me/notification-preferences": signed_in(200),
    "PUT /api/v1/me/notification-preferences": signed_in(200),
    "WS /api/v1/notifications/ws": row(1008, 1000, 1000, 1000, 1000, 1000),
    "POST /api/v1/auth/password-reset": same(202),  # the same answer whether an account has the address
    "POST /api/v1/auth/password-reset/confirm": same(400),  # a token nobody was sent
    "POST /api/v1/auth/verify-email": same(400),
    "GET /api/v1/admin/events/dead-letters": ADMIN_ONLY,
    "POST /api/v1/admin/events/dead-letters/{letter_id}/replay": row(401, 403, 403, 403, 403, 404),
    "GET /api/v1/admin/mail": ADMIN_ONLY,
    "GET /api/v1/admin/mail/{mail_id}": row(401, 403, 403, 403, 403, 404),
    # --- integration events (issue 25): dead letters, webhooks, the activity projection ------------
    "GET /api/v1/admin/webhooks": ADMIN_ONLY,
    "POST /api/v1/admin/webhooks": row(401, 403, 403, 403, 403, 201),
    "GET /api/v1/admin/webhooks/{endpoint_id}": row(401, 403, 403, 403, 403, 404),
    "PATCH /api/v1/admin/webhooks/{endpoint_id}": row(401, 403, 403, 403, 403, 404),
    "DELETE /api/v1/admin/webhooks/{endpoint_id}": row(401, 403, 403, 403, 403, 404),
    "GET /api/v1/admin/webhooks/{endpoint_id}/deliveries": row(401, 403, 403, 403, 403, 404),
    "POST /api/v1/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": row(401, 403, 403, 403, 403, 404),
    "GET /api/v1/me/activity": signed_in(200),
}

# Rows that change the people they act on run in a world of their own (see ``fresh_world``).
# Unlink: the linked therapist (204) unlinks the owner; after that the admin's and the owner's own
# unlink find no link to remove (204 or 404 both mean "allowed, nothing linked").
MATRIX["DELETE /api/v1/links/{learner_id}"] = row(401, {204, 404}, 404, 204, 404, {204, 404})
# Erasure of one's own account: the therapist who wrote the world's sentence is refused (409:
# their sentences are other people's practice material); everyone else is erased.
MATRIX["DELETE /api/v1/me"] = row(401, 200, 200, 409, 200, 200)
# An admin erases the owner; the owner's own request then carries the token of a deleted user.
MATRIX["DELETE /api/v1/admin/users/{user_id}"] = row(401, 401, 403, 403, 403, 200)
# Logout ends each role's session: a world of its own (the cookie jar emptied first, so the
# anonymous request carries nothing).
MATRIX["POST /api/v1/auth/logout"] = signed_in(204)
# The learner deletes their own attempt (204; 409 while its analysis is still queued, as here);
# the linked therapist and an admin see it but may not delete it (403); the rest get 404.
MATRIX["DELETE /api/v1/practice/records/{record_id}"] = row(401, {204, 409}, 404, 403, 404, 403)
# Only the author deletes a sentence (204); the admin, after it, finds it deleted (404) or is refused.
MATRIX["DELETE /api/v1/practice/sentences/{sentence_id}"] = row(401, 403, 403, 204, 403, {403, 404})
FRESH_WORLD = {
    "DELETE /api/v1/practice/sentences/{sentence_id}",
    "DELETE /api/v1/links/{learner_id}",
    "DELETE /api/v1/me",
    "DELETE /api/v1/admin/users/{user_id}",
    "POST /api/v1/auth/logout",
    "DELETE /api/v1/practice/records/{record_id}",
}


def app_routes() -> list[str]:
    """'METHOD /path' for every route the app serves (mounted static files aside)."""

    def walk(routes: list[Any], prefix: str = "") -> list[str]:
        out: list[str] = []
        for route in routes:
            kind = type(route).__name__
            if kind == "_IncludedRouter":  # FastAPI >= 0.16x keeps included routers nested
                out += walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif kind == "Mount":
                continue
            elif kind in ("APIWebSocketRoute", "WebSocketRoute"):
                out.append(f"WS {prefix}{route.path}")
            else:
                out += [f"{m} {prefix}{route.path}" for m in sorted(route.methods or []) if m != "HEAD"]
        return out

    return walk(list(app.routes))


def test_every_route_has_an_entry() -> None:
    routes = app_routes()
    missing = sorted(set(routes) - set(MATRIX))
    assert not missing, f"routes without an entry in MATRIX ({__file__}): {missing}"
    stale = sorted(set(MATRIX) - set(routes))
    assert not stale, f"entries for routes that no longer exist: {stale}"
    for key, expect in MATRIX.items():
        assert set(expect) == set(ROLES), key


# --- the people and their data --------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, Any]:
    return make_world(api)


def make_world(api: Api) -> dict[str, Any]:
    from tests.broker.scenarios import make_admin

    people = {
        "owner": api.register("learner"),
        "other_learner": api.register("learner"),
        "linked_therapist": api.register("therapist"),
        "unlinked_therapist": api.register("therapist"),
        "admin": make_admin(api),
        "anonymous": {"headers": {}, "token": None},
    }
    with open_session() as db:  # linking has no API of its own here: one therapist per learner
        db.execute(
            update(User)
            .where(col(User.user_id) == uuid.UUID(people["owner"]["user"]["user_id"]))
            .values(therapist_id=uuid.UUID(people["linked_therapist"]["user"]["user_id"]))
        )
        db.commit()
    ready = api.ready_record(people["linked_therapist"], people["owner"])
    # a second record for the submit row, so it starts clean
    r = api.record(
        people["owner"], ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"], recording()
    )
    assert r.status_code == 201
    task = api.submit(people["owner"], ready["record"]["practice_record_id"])
    assert task.status_code == 202
    second = api.client.post("/api/v1/auth/login", data={"username": people["owner"]["email"], "password": PASSWORD})
    assert second.status_code == 200, second.text
    second_sid = jwt.decode(second.json()["access_token"], options={"verify_signature": False})["sid"]
    ids = {
        "sentence_id": ready["sentence"]["sentence_id"],
        "session_id": ready["session"]["practice_session_id"],
        "record_id": ready["record"]["practice_record_id"],
        "task_id": task.json()["task_id"],
        "submit_record_id": r.json()["practice_record_id"],
        "user_id": people["owner"]["user"]["user_id"],
        "learner_id": people["owner"]["user"]["user_id"],
        "auth_session_id": second_sid,
        "no_such_number": 999999999,  # an integer id nothing has
    }
    return {"people": people, "ids": ids, "owner_email": people["owner"]["email"], "api": api}


def _invitation_code(w: dict[str, Any]) -> str:
    therapist = w["people"]["linked_therapist"]
    r = w["api"].client.post("/api/v1/links/invitations", headers=therapist["headers"], json={})
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


def _multipart_sentence(w: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"text": "你好"}, "files": {"reference_audio": ("ref.wav", recording())}}


def _multipart_record(w: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"sentence_id": w["ids"]["sentence_id"]}, "files": {"audio": ("try.wav", recording())}}


BODIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "POST /api/v1/auth/register": lambda w: {
        "json": {
            "email": f"m-{uuid.uuid4().hex[:8]}@example.com",
            "password": "correct-horse-1",
            "name": "M",
            "role": "learner",
        }
    },
    "POST /api/v1/auth/login": lambda w: {"data": {"username": w["owner_email"], "password": PASSWORD}},
    "POST /api/v1/auth/refresh": lambda w: {"json": {"refresh_token": _fresh_refresh_token(w)}},
    "POST /api/v1/auth/totp/confirm": lambda w: {"json": {"code": "000000"}},
    "POST /api/v1/auth/password": lambda w: {
        "json": {"current_password": "not-the-password-1", "new_password": "an0ther-Long-phrase"}
    },
    "POST /api/v1/practice/sentences": _multipart_sentence,
    "POST /api/v1/practice/sessions": lambda w: {"json": {"title": "matrix"}},
    "POST /api/v1/practice/sessions/{session_id}/records": _multipart_record,
    "POST /api/v1/tasks/analysis/submit": lambda w: {"json": {"practice_record_id": w["ids"]["submit_record_id"]}},
    "POST /api/v1/admin/therapist-invitations": lambda w: {"json": {}},
    "POST /api/v1/links/invitations": lambda w: {"json": {}},
    "POST /api/v1/links/accept": lambda w: {"json": {"code": _invitation_code(w)}},
    "PUT /api/v1/tasks/analysis/{task_id}/review": lambda w: {"json": {"overall_score": 80, "comment": "good"}},
    "POST /api/v1/learners/{user_id}/assignments": lambda w: {"json": {"sentence_id": w["ids"]["sentence_id"]}},
    "PUT /api/v1/practice/sentences/{sentence_id}/shared": lambda w: {"json": {"shared": True}},
    "PATCH /api/v1/practice/sentences/{sentence_id}": lambda w: {"json": {"shared": True}},
    "POST /api/v1/learners/{user_id}/drills": lambda w: {
        "data": {"text": "氣、七"},
        "files": {"reference_audio": ("ref.wav", recording("氣，七"))},
    },
    "POST /api/v1/admin/tasks/retry": lambda w: {"json": {"failed_from": "2026-01-01T00:00:00Z", "dry_run": True}},
    "PUT /api/v1/me/notification-preferences": lambda w: {"json": {"email": True}},
    "POST /api/v1/auth/password-reset": lambda w: {"json": {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com"}},
    "POST /api/v1/auth/password-reset/confirm": lambda w: {
        "json": {"token": "not-a-token", "new_password": "an0ther-Long-phrase"}
    },
    "POST /api/v1/auth/verify-email": lambda w: {"json": {"token": "not-a-token"}},
    # a literal public address: registered, never called (no consumer runs in this test)
    "POST /api/v1/admin/webhooks": lambda w: {
        "json": {"url": "https://93.184.216.34/matrix", "event_types": ["review.saved"]}
    },
    "PATCH /api/v1/admin/webhooks/{endpoint_id}": lambda w: {"json": {"enabled": False}},
}


def _fresh_refresh_token(w: dict[str, Any]) -> str:
    r = w["api"].client.post("/api/v1/auth/login", data={"username": w["owner_email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["refresh_token"])


def _no_cookies(w: dict[str, Any]) -> None:
    w["api"].client.cookies.clear()


def _no_webhooks(w: dict[str, Any]) -> None:
    from tests.webhooks.support import clear_endpoints

    clear_endpoints()


def _assign_again(w: dict[str, Any]) -> None:
    r = w["api"].client.post(
        f"/api/v1/learners/{w['ids']['user_id']}/assignments",
        headers=w["people"]["linked_therapist"]["headers"],
        json={"sentence_id": w["ids"]["sentence_id"]},
    )
    assert r.status_code in (200, 201), r.text


# Path parameters that name something else than the world's id of the same name.
URL_IDS: dict[str, dict[str, str]] = {
    "DELETE /api/v1/auth/sessions/{session_id}": {"session_id": "auth_session_id"},
    "POST /api/v1/notifications/{notification_id}/read": {"notification_id": "task_id"},
    "POST /api/v1/admin/events/dead-letters/{letter_id}/replay": {"letter_id": "task_id"},
    "GET /api/v1/admin/mail/{mail_id}": {"mail_id": "task_id"},
    "GET /api/v1/admin/webhooks/{endpoint_id}": {"endpoint_id": "task_id"},
    "PATCH /api/v1/admin/webhooks/{endpoint_id}": {"endpoint_id": "task_id"},
    "DELETE /api/v1/admin/webhooks/{endpoint_id}": {"endpoint_id": "task_id"},
    "GET /api/v1/admin/webhooks/{endpoint_id}/deliveries": {"endpoint_id": "task_id"},
    "POST /api/v1/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": {
        "endpoint_id": "task_id",
        "delivery_id": "no_such_number",
    },
}


# Set-up run before each role's request, for rows that consume what they act on.
BEFORE_EACH: dict[str, Callable[[dict[str, Any]], None]] = {
    "POST /api/v1/auth/logout": _no_cookies,
    "POST /api/v1/auth/refresh": _no_cookies,
    "DELETE /api/v1/learners/{user_id}/assignments/{sentence_id}": _assign_again,
    # the admin's endpoint is gone before the next role (the owner, last) asks: none stays behind
    "POST /api/v1/admin/webhooks": _no_webhooks,
}


def _ws_outcome(api: Api, url: str, token: str | None) -> int:
    from starlette.websockets import WebSocketDisconnect

    query = f"?token={token}" if token else ""
    try:
        with api.client.websocket_connect(url + query) as ws:  # type: ignore[union-attr]
            ws.receive_json()  # the snapshot: accepted
            return 1000
    except WebSocketDisconnect as exc:
        return int(exc.code)


@pytest.mark.parametrize("key", sorted(MATRIX))
def test_each_role_gets_what_the_matrix_says(api: Api, world: dict[str, Any], key: str) -> None:
    if key in FRESH_WORLD:
        world = make_world(api)
    method, path = key.split(" ", 1)
    ids = {**world["ids"], **{k: world["ids"][v] for k, v in URL_IDS.get(key, {}).items()}}
    url = path.format(**ids)
    got: dict[str, int] = {}
    for role in ROLES:
        person = world["people"][role]
        if method == "WS":
            got[role] = _ws_outcome(api, url, person["token"])
            continue
        if key in BEFORE_EACH:
            BEFORE_EACH[key](world)
        kwargs = BODIES[key](world) if key in BODIES else {}
        r = api.client.request(method, url, headers=person["headers"], **kwargs)
        got[role] = r.status_code
    wrong = {role: code for role, code in got.items() if code not in MATRIX[key][role]}
    assert not wrong, f"{key}: got {got}, expected {MATRIX[key]}"
