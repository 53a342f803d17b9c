"""Miscues and completeness on synthetic pairs (reference and attempt in different
Praat/eSpeak voices): omitted characters, inserted syllables, an attempt that stops half
way, punctuation never judged. The measured shares over many sentences are in
docs/ANALYSIS.md ("Miscues and completeness", scripts/evaluate.py --synthetic-miscues);
these tests check clear single cases and the report's shape.
"""

from __future__ import annotations

import numpy as np
import pytest

from vocalborn.analysis.engine import LocalEngine
from vocalborn.analysis.synth import render, synthesize

ERROR_TYPES = {"none", "omission", "mispronunciation", "tone"}


def _judged(report) -> list[dict]:  # type: ignore[no-untyped-def]
    return [c for c in report.detailed_analysis["characters"] if c["status"] != "not_judged"]


def test_every_judged_character_has_one_error_type_and_punctuation_none(engine: LocalEngine) -> None:
    text = "今天天氣很好，我們去公園散步。OK"
    report = engine.analyze(synthesize(text, voice="Female1"), synthesize(text, voice="Male1"), {"text": text})
    chars = report.detailed_analysis["characters"]
    assert "".join(c["char"] for c in chars) == text
    for c in chars:
        if c["char"] in "，。OK":
            assert c["status"] == "not_judged" and c["error_type"] is None
        else:
            assert c["error_type"] in ERROR_TYPES
            # the most important issue wins: omission > mispronunciation > tone
            expected = (
                "omission"
                if "missing" in c["issues"]
                else "mispronunciation"
                if "pronunciation" in c["issues"]
                else "tone"
                if "tone" in c["issues"]
                else "none"
            )
            assert c["error_type"] == expected
    judged = _judged(report)
    assert len(judged) == 13  # punctuation and Latin letters are not counted
    assert report.completeness_score == pytest.approx(
        100.0 * sum(c["error_type"] != "omission" for c in judged) / len(judged), abs=0.01
    )
    assert report.completeness_score >= 90
    assert report.sentence_analyses[0]["completeness_score"] == report.completeness_score
    assert sum(c["error_type"] == "none" for c in judged) >= 0.8 * len(judged)
    assert report.detailed_analysis["insertions"] == []


def test_without_text_there_is_no_completeness(engine: LocalEngine) -> None:
    wav = synthesize("我今天很高興見到你", voice="Female1")
    report = engine.analyze(wav, synthesize("我今天很高興見到你", voice="Male1"), {})
    assert report.completeness_score is None
    assert "insertions" not in report.detailed_analysis


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("我們明天早上一起去公園散步", "我們明天早上一起"),  # stopped early
        ("請把窗戶打開讓空氣流通", "打開讓空氣流通"),  # started late
    ],
)
def test_a_partial_attempt_is_judged_on_what_was_said(engine: LocalEngine, text: str, said: str) -> None:
    report = engine.analyze(synthesize(text, voice="Female1"), synthesize(said, voice="Male1"), {"text": text})
    chars = _judged(report)
    start = text.index(said)
    inside = [c for c in chars if start <= c["index"] < start + len(said)]
    outside = [c for c in chars if not start <= c["index"] < start + len(said)]
    # The characters not said are omissions (one boundary character may go either way).
    assert sum(c["error_type"] == "omission" for c in outside) >= len(outside) - 1
    assert sum(c["error_type"] == "none" for c in inside) >= 0.8 * len(inside)
    expected = 100.0 * len(said) / len(text)
    assert abs(report.completeness_score - expected) <= 100.0 / len(text) + 0.01
    # Judged on what was said, with its completeness: not like another sentence.
    assert report.overall_score >= 0.6 * expected
    other = engine.analyze(
        synthesize(text, voice="Female1"), synthesize("他騎自行車去學校", voice="Male1"), {"text": text}
    )
    assert other.overall_score <= 40


def test_the_first_half_of_a_recording_scores_its_completeness(engine: LocalEngine) -> None:
    text = "我們明天早上一起去公園散步"
    ref = render(text, "zh", "Female1")
    att = render(text, "zh", "Male2")
    half = np.array(att.samples[: len(att.samples) // 2])
    report = engine.analyze(ref.to_bytes(), _wav(half), {"text": text})
    assert 35 <= report.completeness_score <= 65
    cut = len(att.samples) / att.sample_rate / 2
    said = {k for k, (_, t1, _) in enumerate(att.words) if t1 <= cut}
    judged = {c["index"]: c for c in _judged(report)}
    # The target is 80 % (issue #22); measured 75 % on real speech (docs/ANALYSIS.md), and a
    # cut through a syllable spoils its neighbours: at least half here.
    assert sum(judged[k]["error_type"] == "none" for k in said) >= 0.5 * len(said)


def test_the_first_half_of_a_recording_is_not_scored_like_another_sentence(engine: LocalEngine) -> None:
    text = "我們明天早上一起去公園散步"
    att = render(text, "zh", "Male2")
    half = np.array(att.samples[: len(att.samples) // 2])
    report = engine.analyze(synthesize(text, voice="Female1"), _wav(half), {"text": text})
    assert report.overall_score >= 15


@pytest.mark.parametrize(
    ("text", "at", "omit"),
    [
        ("我們明天早上一起去公園散步", 6, 2),  # 一起
        ("請把窗戶打開讓空氣流通", 0, 1),  # 請
        ("他騎自行車去學校", 7, 1),  # 校
    ],
)
def test_omitted_characters_are_omissions(engine: LocalEngine, text: str, at: int, omit: int) -> None:
    attempt = text[:at] + text[at + omit :]
    report = engine.analyze(synthesize(text, voice="Female1"), synthesize(attempt, voice="Male1"), {"text": text})
    chars = _judged(report)
    flagged = [c["index"] for c in chars if c["error_type"] == "omission"]
    omitted = set(range(at, at + omit))
    # Each omitted character is flagged, at most one neighbour besides (the boundary
    # between two similar syllables is ambiguous).
    assert omitted <= set(flagged) or len(omitted & set(flagged)) >= omit - 1, flagged
    assert set(flagged) <= omitted | {at - 1, at + omit}, flagged
    assert report.completeness_score < 100


@pytest.mark.parametrize(
    ("text", "at", "extra"),
    [
        ("我們明天早上一起去公園散步", 4, "山水"),
        ("請把窗戶打開讓空氣流通", 11, "天地"),
    ],
)
def test_inserted_syllables_are_reported_where_they_were_said(
    engine: LocalEngine, text: str, at: int, extra: str
) -> None:
    attempt = text[:at] + extra + text[at:]
    att = render(attempt, "zh", "Male1")
    report = engine.analyze(synthesize(text, voice="Female1"), att.to_bytes(), {"text": text})
    found = report.detailed_analysis["insertions"]
    t0, t1 = att.words[at][0], att.words[at + len(extra) - 1][1]
    near = [x for x in found if x["start"] < t1 + 0.1 and x["end"] > t0 - 0.1]
    assert near, (found, (t0, t1))
    for x in found:
        assert set(x) == {"start", "end", "after_index", "after_char"}
        assert x["start"] < x["end"]
        if x["after_index"] is not None:
            assert text[x["after_index"]] == x["after_char"]
    assert any(x["after_index"] in (at - 2, at - 1, at) for x in near)
    assert report.completeness_score >= 90


def _wav(samples: np.ndarray) -> bytes:
    from vocalborn.analysis.synth import to_wav

    return to_wav(samples, 16000)


def test_an_omission_needs_the_attempts_own_phones_to_agree() -> None:
    """confirm_runs: a run of the edit alignment's omitted characters is dropped when the
    attempt's phones say every character around it, and cut at its ends to as many
    characters as the phones leave out."""
    from vocalborn.analysis import miscues

    class Said:  # the attempt's phone evidence, per character (True: said)
        def __init__(self, strict: list[bool], loose: list[bool]) -> None:
            self.strict, self.loose = np.array(strict), np.array(loose)

    run = np.array([False, True, True, True, False, False])
    everything_said = Said([True] * 6, [True] * 6)
    assert not miscues.confirm_runs(run, everything_said).any()  # type: ignore[arg-type]
    # the phones leave out two characters: the run's said end is cut off
    two_left_out = Said([True, True, False, True, True, True], [True, False, False, True, True, True])
    assert miscues.confirm_runs(run, two_left_out).tolist() == [  # type: ignore[arg-type]
        False,
        True,
        True,
        False,
        False,
        False,
    ]
    # a neighbour's evidence confirms the run (the boundary is uncertain by one character),
    # which is cut down to the one character next to it
    neighbour = Said([True, True, True, True, False, True], [True, True, True, True, False, True])
    assert np.flatnonzero(miscues.confirm_runs(run, neighbour)).tolist() == [3]  # type: ignore[arg-type]


def test_a_syllable_left_out_is_skipped_by_the_attempts_own_alignment() -> None:
    """phone_units.said_characters on a synthetic attempt that leaves out one character."""
    from vocalborn.analysis import phonetic, sentence
    from vocalborn.analysis.phone_units import said_characters, units

    text = "我們明天早上一起去公園散步"
    attempt = text[:6] + text[8:]  # 一起 left out
    ph = phonetic.extract(np.array(render(attempt, "zh", "Male1").samples))
    seq = [units(c) for c in sentence.syllables(text) if c.judged]
    said = said_characters(ph, seq, 3.0)
    assert said is not None
    assert not said[6:8].all() and said[:5].all() and said[9:].all(), said.tolist()
