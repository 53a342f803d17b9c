"""Issue #26, drills: minimal pairs from a learner's still-deviating characters (same syllable in
another tone; same final and tone with another initial), in both languages, and one click to
assign one (a private sentence with the therapist's reference recording, which is required).

In-process runner calls against the real database; no worker consumes this module's messages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.learning.test_counted import GOOD, _attempt, _linked, _report
from tests.support import Api, recording
from vocalborn.analysis.sentence import split_pinyin, syllables
from vocalborn.drills import suggest


@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, Any]:
    therapist, learner = _linked(api)
    sid = api.sentence(therapist, recording(), shared=False)["sentence_id"]
    session = api.session(learner)["practice_session_id"]
    _attempt(api, learner, session, sid, _report(70.0, GOOD))  # marks 氣 (tone), 公, 園 (tests/verdicts.py)
    return {"therapist": therapist, "learner": learner, "uid": learner["user"]["user_id"], "sid": sid}


def _drills(api: Api, who: dict[str, Any], uid: str, lang: str = "en") -> Any:
    return api.client.get(f"/api/v1/learners/{uid}/drills?lang={lang}", headers=who["headers"])


def test_minimal_pairs_from_the_still_deviating_characters(api: Api, world: dict[str, Any]) -> None:
    r = _drills(api, world["therapist"], world["uid"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["char"] for c in body["characters"]] == ["氣", "公", "園"]
    assert {c["pinyin"] for c in body["characters"]} == {"qì", "gōng", "yuán"}
    items = body["items"]
    assert items and len(items) <= suggest.MAX_ITEMS
    assert {i["target_char"] for i in items} == {"氣", "公", "園"}
    readings = {}
    for i in items:
        a, sep, b = i["text"]
        assert sep == "、" and (a, b) == (i["target_char"], i["contrast_char"]) and a != b
        [ra, rb] = [c for c in syllables(i["text"]) if c.judged]
        readings[i["text"]] = (ra, rb)
        if i["kind"] == "tone_contrast":  # same syllable, another tone
            assert ra.pinyin == rb.pinyin and ra.base_tone != rb.base_tone
        else:  # same final and tone, another initial
            assert i["kind"] == "initial_contrast"
            assert split_pinyin(ra.pinyin)[1] == split_pinyin(rb.pinyin)[1] and ra.base_tone == rb.base_tone
            assert split_pinyin(ra.pinyin)[0] != split_pinyin(rb.pinyin)[0]
        assert i["pinyin"].count(" ") == 1 and i["target_char"] in i["why"] and i["contrast_char"] in i["why"]
        assert i["existing_sentence_id"] is None
    assert "氣、七" in readings  # qì against qī
    assert any(i["text"] in ("氣、記", "氣、細") for i in items)  # q against a confusable j or x first
    assert "reference" in body["needs_reference_recording"]
    zh = _drills(api, world["learner"], world["uid"], "zh-TW").json()
    assert [i["text"] for i in zh["items"]] == [i["text"] for i in items]
    assert all("聲" in i["why"] for i in zh["items"]) and all("still marked" in i["why"] for i in items)
    assert "參考音檔" in zh["needs_reference_recording"]


def test_who_may_read_drills(api: Api, world: dict[str, Any]) -> None:
    assert _drills(api, api.register("therapist"), world["uid"]).status_code == 404
    assert _drills(api, api.register("learner"), world["uid"]).status_code == 404
    assert api.client.get(f"/api/v1/learners/{world['uid']}/drills").status_code == 401


def test_one_click_assigns_a_private_sentence_with_its_reference(api: Api, world: dict[str, Any]) -> None:
    uid, therapist = world["uid"], world["therapist"]
    url = f"/api/v1/learners/{uid}/drills"
    item = _drills(api, therapist, uid).json()["items"][0]
    no_audio = api.client.post(url, headers=therapist["headers"], data={"text": item["text"]})
    assert no_audio.status_code == 422, no_audio.text
    assert no_audio.json()["detail"][0]["loc"] == ["body", "reference_audio"]
    assert "record the reference" in no_audio.json()["detail"][0]["msg"]
    audio = recording(item["text"].replace("、", "，"))
    other = api.client.post(
        url, headers=therapist["headers"], data={"text": "隨便一句"}, files={"reference_audio": ("r.wav", audio)}
    )
    assert other.status_code == 422 and other.json()["detail"][0]["loc"] == ["body", "text"], other.text
    by_learner = api.client.post(
        url,
        headers=world["learner"]["headers"],
        data={"text": item["text"]},
        files={"reference_audio": ("r.wav", audio)},
    )
    assert by_learner.status_code == 403, by_learner.text
    r = api.client.post(
        url, headers=therapist["headers"], data={"text": item["text"]}, files={"reference_audio": ("r.wav", audio)}
    )
    assert r.status_code == 201, r.text
    sentence_id = r.json()["sentence_id"]
    sentence = api.client.get(f"/api/v1/practice/sentences/{sentence_id}", headers=therapist["headers"]).json()
    assert sentence["text"] == item["text"] and sentence["shared"] is False
    listed = api.client.get(f"/api/v1/learners/{uid}/assignments", headers=world["learner"]["headers"]).json()
    assert sentence_id in {a["sentence_id"] for a in listed}
    # another therapist never sees it; the suggestion now names it
    assert (
        api.client.get(
            f"/api/v1/practice/sentences/{sentence_id}", headers=api.register("therapist")["headers"]
        ).status_code
        == 404
    )
    again = {i["text"]: i for i in _drills(api, therapist, uid).json()["items"]}
    assert again[item["text"]]["existing_sentence_id"] == sentence_id
