"""Submit and status skip FastAPI's request handling in their common case (tasks/submission/hotroute.py);
every other request gets exactly the answer the ordinary handler gives. Each request here is
sent twice, with the hot path in place and with it switched off, and the answers compared."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.services import ServicesUnderTest
from tests.support import Api
from vocalborn.tasks.submission import hotroute

SUBMIT = "/api/v1/tasks/analysis/submit"


@contextmanager
def hot_paths_off() -> Iterator[None]:
    """Every HotRoute answers through its ordinary handler only."""

    async def decline(scope: Any, receive: Any) -> hotroute.Outcome:
        return None, receive

    with _hot_replaced(lambda hot: decline):
        yield


@contextmanager
def counting_hot_answers() -> Iterator[list[str]]:
    """The paths the hot functions answered (rather than leaving to the ordinary handler)."""
    answered: list[str] = []

    def counting(hot: hotroute.Hot) -> hotroute.Hot:
        async def wrapper(scope: Any, receive: Any) -> hotroute.Outcome:
            response, receive = await hot(scope, receive)
            if response is not None:
                answered.append(scope["path"])
            return response, receive

        return wrapper

    with _hot_replaced(counting):
        yield answered


@contextmanager
def _hot_replaced(make: Callable[[hotroute.Hot], hotroute.Hot]) -> Iterator[None]:
    saved = {cls: cls.__dict__["hot"] for cls in hotroute.HotRoute.__subclasses__()}
    try:
        for cls, hot in saved.items():
            cls.hot = staticmethod(make(hot.__func__))  # type: ignore[assignment]
        yield
    finally:
        for cls, hot in saved.items():
            cls.hot = hot


def without_eta(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without its estimates, which are reckoned from the moment of asking."""
    eta = {"estimated_completion_time", "estimated_remaining_time"}
    assert eta & body.keys(), body
    return {k: v for k, v in body.items() if k not in eta}


def both(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, httpx.Response]:
    """The answer with the hot paths in place (checked to come from the ordinary handler: these
    are the cases the hot path must leave), and the answer without them."""
    with counting_hot_answers() as answered:
        hot = send()
    assert answered == [], "the hot path answered a request it must leave"
    with hot_paths_off():
        ordinary = send()
    return hot, ordinary


def test_the_hot_routes_are_in_place() -> None:
    from vocalborn.tasks.api.router import router

    paths = {getattr(r, "path", None) for r in router.routes if isinstance(r, hotroute.HotRoute)}
    assert paths >= {SUBMIT, "/api/v1/tasks/analysis/{task_id}/status"}


def test_submits_the_hot_path_leaves_get_the_ordinary_answer(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    body = json.dumps({"practice_record_id": record}).encode()
    auth = learner["headers"]
    as_json = {**auth, "Content-Type": "application/json"}
    cases: dict[str, tuple[dict[str, str], bytes]] = {
        "another content type": ({**auth, "Content-Type": "text/plain"}, body),
        "no content type": (auth, body),
        "not JSON": (as_json, body[:-3]),
        "empty": (as_json, b""),
        "a list": (as_json, b"[]"),
        "an unknown field": (as_json, json.dumps({"practice_record_id": record, "x": 1}).encode()),
        "a bad id": (as_json, b'{"practice_record_id": "nope"}'),
        "no token": ({"Content-Type": "application/json"}, body),
        "another scheme": ({"Content-Type": "application/json", "Authorization": "Basic abc"}, body),
        "a bad token": ({"Content-Type": "application/json", "Authorization": "Bearer abc"}, body),
        "a bad token, in Chinese": (
            {"Content-Type": "application/json", "Authorization": "Bearer abc", "Accept-Language": "zh-TW"},
            body,
        ),
        "someone else's record": ({**therapist["headers"], "Content-Type": "application/json"}, body),
        "a missing record": (as_json, json.dumps({"practice_record_id": str(uuid.uuid4())}).encode()),
    }
    for name, (headers, content) in cases.items():
        hot, ordinary = both(lambda h=headers, c=content: api.client.post(SUBMIT, headers=h, content=c))
        assert 400 <= hot.status_code < 500, (name, hot.text)
        assert (hot.status_code, hot.json()) == (ordinary.status_code, ordinary.json()), name
    for method in ("PUT", "PATCH", "GET"):  # not this route's method: 405, nothing written
        hot, ordinary = both(lambda m=method: api.client.request(m, SUBMIT, headers=as_json, content=body))
        assert hot.status_code == ordinary.status_code == 405, (method, hot.text)
        assert hot.headers["allow"] == ordinary.headers["allow"] == "POST"
    deep = b"[" * 5_000  # nested too deep for the JSON parser: a 4xx, not a 500
    hot, ordinary = both(lambda: api.client.post(SUBMIT, headers=as_json, content=deep))
    assert 400 <= hot.status_code < 500 and (hot.status_code, hot.json()) == (ordinary.status_code, ordinary.json())
    # nothing of that was written: the record still has no task; the common case is the hot path's
    with counting_hot_answers() as answered:
        first = api.client.post(SUBMIT, headers=as_json, content=body)
    assert first.status_code == 202, first.text
    assert answered == [SUBMIT]
    # the record's active task: the hot path leaves it, the ordinary handler returns it (200)
    hot, ordinary = both(lambda: api.client.post(SUBMIT, headers=as_json, content=body))
    assert hot.status_code == ordinary.status_code == 200
    assert hot.json()["task_id"] == first.json()["task_id"]
    assert without_eta(hot.json()) == without_eta(ordinary.json())


def test_a_chunked_submit_is_read_by_the_ordinary_handler(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    body = json.dumps({"practice_record_id": record}).encode()
    headers = {**learner["headers"], "Content-Type": "application/json"}
    with counting_hot_answers() as answered:
        r = api.client.post(SUBMIT, headers=headers, content=iter([body[:10], body[10:]]))  # no Content-Length
    assert answered == []
    assert r.status_code == 202, r.text
    again = api.client.post(SUBMIT, headers=headers, content=body)
    assert again.status_code == 200 and again.json()["task_id"] == r.json()["task_id"]


def test_polls_the_hot_path_leaves_get_the_ordinary_answer(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], migrated: ServicesUnderTest
) -> None:
    record = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record).json()["task_id"]

    def poll(path_id: str, headers: dict[str, str]) -> Callable[[], httpx.Response]:
        return lambda: api.client.get(f"/api/v1/tasks/analysis/{path_id}/status", headers=headers)

    own = learner["headers"]
    with counting_hot_answers() as answered:  # the common case: the hot path answers it
        hot = poll(task_id, own)()
    assert answered == [f"/api/v1/tasks/analysis/{task_id}/status"]
    with hot_paths_off():
        ordinary = poll(task_id, own)()
    assert hot.status_code == ordinary.status_code == 200
    assert without_eta(hot.json()) == without_eta(ordinary.json())
    for method in ("HEAD", "POST", "PUT"):  # not this route's method
        hot, ordinary = both(
            lambda m=method: api.client.request(m, f"/api/v1/tasks/analysis/{task_id}/status", headers=own)
        )
        assert hot.status_code == ordinary.status_code == 405, method
    cases = {
        "upper-case id": (task_id.upper(), own),
        "not an id": ("xyz", own),
        "no such task": (str(uuid.uuid4()), own),
        "another's task": (task_id, therapist["headers"]),
        "no token": (task_id, {}),
        "a bad token": (task_id, {"Authorization": "Bearer abc", "Accept-Language": "zh-TW"}),
    }
    for name, (path_id, headers) in cases.items():
        hot, ordinary = both(poll(path_id, headers))
        assert (hot.status_code, hot.json()) == (ordinary.status_code, ordinary.json()), name
    assert both(poll(task_id.upper(), own))[0].status_code == 200


def test_a_common_submit_is_answered_alike_by_both_paths(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    def submit_new() -> httpx.Response:
        record = api.ready_record(therapist, learner)["record"]["practice_record_id"]
        return api.client.post(SUBMIT, headers=learner["headers"], json={"practice_record_id": record})

    with counting_hot_answers() as answered:
        hot = submit_new()
    assert answered == [SUBMIT]
    with hot_paths_off():
        ordinary = submit_new()
    assert hot.status_code == ordinary.status_code == 202, (hot.text, ordinary.text)
    assert hot.json().keys() == ordinary.json().keys()
    assert hot.headers["location"] == f"/api/v1/tasks/analysis/{hot.json()['task_id']}/status"
    assert ordinary.headers["location"] == f"/api/v1/tasks/analysis/{ordinary.json()['task_id']}/status"
    assert hot.json()["status"] == ordinary.json()["status"] == "pending"
    assert hot.json()["created"] is ordinary.json()["created"] is True
