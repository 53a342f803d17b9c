"""The calibration table's expectations, for every sentence and voice (acceptance 1)."""

from __future__ import annotations

import pytest

from vocalborn.analysis.engine import LocalEngine
from vocalborn_tools import calibration as cal


def _overlaps(devs: list[dict], span: tuple[float, float]) -> bool:
    return any(d["start"] < span[1] and d["end"] > span[0] for d in devs)


@pytest.mark.worker  # the whole calibration table (17 cases x 6): a long run, out of the fast loop
@pytest.mark.parametrize("voice", cal.VOICES)
@pytest.mark.parametrize("sentence", cal.SENTENCES, ids=lambda s: s.text)
def test_scores_rank_as_calibrated(engine: LocalEngine, sentence: cal.Sentence, voice: str) -> None:
    scores: dict[str, float] = {}
    deviations: dict[str, list[dict]] = {}
    spans: dict[str, tuple[float, float] | None] = {}
    for case in cal.CASES:
        pair = cal.build_pair(case, sentence, voice)
        report = engine.analyze(pair.reference, pair.attempt)
        scores[case] = report.overall_score
        deviations[case] = report.detailed_analysis["deviations"]
        spans[case] = pair.edit_span

    for case in cal.HIGH:
        assert scores[case] >= cal.HIGH_MIN, (case, scores)
    for case in cal.GOOD:
        assert scores[case] >= cal.GOOD_MIN, (case, scores)
    for case in cal.LOWER:
        assert scores[case] < scores["same"], (case, scores)
        span = spans[case]
        assert span is not None and _overlaps(deviations[case], span), (case, deviations[case], span)
    assert scores[cal.TRUNCATED] < min(scores[c] for c in cal.LOWER), scores
    for case in cal.UNRELATED:
        assert scores[case] <= cal.UNRELATED_MAX, (case, scores)


@pytest.mark.parametrize("case", ["pitch_up_4st", "tempo_0.8", "monotone"])
def test_psola_edits_are_reproducible(case: str) -> None:
    """Praat's PSOLA draws random numbers; unseeded, the same edit scored 84..94 from run to run."""
    sentence, voice = cal.SENTENCES[1], "Male1"
    assert cal.build_pair(case, sentence, voice).attempt == cal.build_pair(case, sentence, voice).attempt
