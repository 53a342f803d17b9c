"""A row whose stored file is gone answers 410 JSON (issue #11, defect 2: it was a 500 and a
dropped connection)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support import Api
from vocalborn.db import open_session
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.storage import get_storage


def _key(model: Any, pk: str, attr: str) -> str:
    with open_session() as db:
        return str(getattr(db.get(model, uuid.UUID(pk)), attr))


def test_audio_whose_file_is_missing_answers_410_json(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    ready = api.ready_record(therapist, learner)
    record_id, sentence_id = ready["record"]["practice_record_id"], ready["sentence"]["sentence_id"]
    record_url = f"/api/v1/practice/records/{record_id}/audio"
    sentence_url = f"/api/v1/practice/sentences/{sentence_id}/audio"
    assert api.client.get(record_url, headers=learner["headers"]).status_code == 200
    assert api.client.get(sentence_url, headers=learner["headers"]).status_code == 200

    storage = get_storage()
    storage.delete(_key(PracticeRecord, record_id, "audio_key"))
    storage.delete(_key(Sentence, sentence_id, "reference_audio_key"))
    for url, what in ((record_url, "practice recording"), (sentence_url, "reference recording")):
        r = api.client.get(url, headers=learner["headers"])
        assert r.status_code == 410, (url, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"detail": f"the {what} is no longer in storage"}
    # someone else's record stays a 404, file or no file
    other = api.register("learner")
    assert api.client.get(record_url, headers=other["headers"]).status_code == 404
