"""Issue #22's per-character verdicts as the engine's contract defines them (CONTRACT22), for the
tests of everything around the engine: the result, the history, the worker, the page, the CLIs.

``VERDICTS`` is a realistic ``detailed_analysis`` fragment for tests/support.SENTENCE
(今天天氣很好，我們去公園散步。): every kind of ``error_type``, a heard tone known and unknown, a
neutral-tone syllable, punctuation never judged, one insertion and the completeness they imply.
``FeedbackService`` is an AI service on loopback (the remote engine's protocol) that analyses for
real with the local engine and puts these verdicts and a pitch profile the test chooses into the
report, recording the params the worker sent: the worker's pipeline, end to end, with verdicts the
test knows.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse

# (char, pinyin, pinyin_marks, expected_tone, accepted_tones, error_type, heard_tone)
_ROWS: list[tuple[str, str | None, str | None, int | None, list[int], str | None, int | None]] = [
    ("今", "jin1", "jīn", 1, [1], "none", 1),
    ("天", "tian1", "tiān", 1, [1], "none", 1),
    ("天", "tian1", "tiān", 1, [1], "none", None),  # not confident of the tone: nothing claimed
    ("氣", "qi4", "qì", 4, [4], "tone", 2),  # said in tone 2
    ("很", "hen2", "hén", 2, [2, 3], "none", 2),  # third-tone sandhi before 好
    ("好", "hao3", "hǎo", 3, [3], "none", 3),
    ("，", None, None, None, [], None, None),
    ("我", "wo3", "wǒ", 3, [3], "none", 3),
    ("們", "men5", "men", 5, [5], "none", None),  # neutral: the tone is not judged
    ("去", "qu4", "qù", 4, [4], "none", 4),
    ("公", "gong1", "gōng", 1, [1], "mispronunciation", 1),
    ("園", "yuan2", "yuán", 2, [2], "omission", None),
    ("散", "san4", "sàn", 4, [4], "none", 4),
    ("步", "bu4", "bù", 4, [4], "none", 4),
    ("。", None, None, None, [], None, None),
]
_STATUS = {"none": "matched", "omission": "missing", "mispronunciation": "deviating", "tone": "deviating"}
_ISSUES = {"none": [], "omission": ["missing"], "mispronunciation": ["pronunciation"], "tone": ["tone"]}


def characters() -> list[dict[str, Any]]:
    """One entry per character of the sentence, old keys and new."""
    out: list[dict[str, Any]] = []
    t = 0.35
    for index, (char, pinyin, marks, tone, accepted, error_type, heard) in enumerate(_ROWS):
        if error_type is None:
            out.append({"index": index, "char": char, "status": "not_judged", "error_type": None})
            t += 0.2
            continue
        start = None if error_type == "omission" else round(t, 2)
        end = None if error_type == "omission" else round(t + 0.24, 2)
        out.append(
            {
                "index": index,
                "char": char,
                "pinyin": pinyin,
                "pinyin_marks": marks,
                "expected_tone": tone,
                "accepted_tones": accepted,
                "reference_heard_tone": tone if tone != 5 else None,
                "heard_tone": heard,
                "tone_confidence": None if heard is None else (0.91 if error_type == "tone" else 0.8),
                "tone_match": False if error_type == "tone" else (None if heard is None else True),
                "status": _STATUS[error_type],
                "issues": _ISSUES[error_type],
                "error_type": error_type,
                "confidence": 0.9 if error_type != "none" else 0.75,
                "start": start,
                "end": end,
                "ref_start": round(0.3 + 0.26 * index, 2),
                "ref_end": round(0.3 + 0.26 * index + 0.24, 2),
                "score": {"none": 92.0, "tone": 71.0, "mispronunciation": 38.0, "omission": 0.0}[error_type],
            }
        )
        if error_type != "omission":
            t += 0.26
    return out


# The extra syllable said after 去 (index 9).
INSERTIONS = [{"start": 2.61, "end": 2.83, "after_index": 9, "after_char": "去"}]
JUDGED = sum(1 for r in _ROWS if r[5] is not None)
OMITTED = sum(1 for r in _ROWS if r[5] == "omission")
COMPLETENESS = round(100.0 * (JUDGED - OMITTED) / JUDGED, 2)  # 12 of 13: 92.31


def verdict_detail(detail: dict[str, Any], profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """``detail`` (a real engine's detailed_analysis) with the verdicts above in place of its own."""
    out = copy.deepcopy(detail)
    out["characters"] = characters()
    out["insertions"] = copy.deepcopy(INSERTIONS)
    if profile is not None:
        out["pitch_profile"] = dict(profile)
    return out


class FeedbackService:
    """The remote engine's service: the local engine's analysis, then the verdicts above, the
    next pitch profile of ``profiles`` (popped; none when empty) and the completeness."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []  # what the worker sent, call by call
        self.profiles: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/analyze")
        async def analyze(
            reference: UploadFile = File(), attempt: UploadFile = File(), params: str = Form("{}")
        ) -> JSONResponse:
            from vocalborn.analysis.engine import analyze as run

            sent = json.loads(params)
            self.params.append(sent)
            report = run(await reference.read(), await attempt.read(), sent)
            profile = self.profiles.pop(0) if self.profiles else None
            report.detailed_analysis = verdict_detail(report.detailed_analysis, profile)
            report.completeness_score = COMPLETENESS
            return JSONResponse(report.to_dict())


@contextmanager
def running_feedback_service() -> Iterator[tuple[FeedbackService, int]]:
    """Serve a FeedbackService on a free loopback port in a thread; stop it afterwards."""
    import uvicorn

    from vocalborn.embedded import free_port

    service = FeedbackService()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the feedback AI service did not start")
        time.sleep(0.05)
    try:
        yield service, port
    finally:
        server.should_exit = True
        thread.join(10)


def error_type_of(c: dict[str, Any]) -> str | None:
    """A character's verdict as the page and the CLI read it: ``error_type`` when the result has
    one, else from an older result's status and issues; None: never judged."""
    if "error_type" in c:
        return c["error_type"] if c["error_type"] in _ISSUES else None
    issues = c.get("issues") or []
    status = c.get("status")
    if status == "matched":
        return "none"
    if status == "missing":
        return "omission"
    if status == "deviating":
        return "tone" if "tone" in issues and "pronunciation" not in issues else "mispronunciation"
    return None
