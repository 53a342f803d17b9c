"""Issue #26 friction: `vocalborn analyze` counted 11 syllables of a 15-character sentence and
called the shorter attempt the slower one. Each recording's syllables were its own acoustic
nuclei (which undercount real voices), so the two rates disagreed with speech_rate_ratio. Both
rates now use one count: the text's syllables when the sentence is known."""

from __future__ import annotations

import dataclasses

import numpy as np

from vocalborn.analysis.engine import Prepared, build_report, prepare
from vocalborn_tools import perturb

SENTENCE = "我今天很高興見到你"  # tests/analysis/conftest.py's


def test_a_faster_attempt_has_the_higher_rate_even_when_its_nuclei_are_undercounted(samples: np.ndarray) -> None:
    ref = prepare(samples)
    fast = prepare(perturb.change_tempo(samples, 1.3))
    # a real voice's nuclei: fewer than its syllables (as in the issue: 11 of 15)
    under = Prepared(dataclasses.replace(fast.features, nuclei=fast.features.nuclei[::2]), fast.phones)
    report = build_report(ref, under, {"text": SENTENCE})
    t = report.detailed_analysis["timing_analysis"]
    assert t["reference_syllables"] == t["attempt_syllables"] == len(SENTENCE)
    assert t["attempt_nuclei"] < t["reference_nuclei"]  # the acoustic counts are still reported
    assert t["attempt_duration"] < t["reference_duration"] and t["speech_rate_ratio"] > 1.15
    assert t["attempt_speech_rate"] > t["reference_speech_rate"]  # shorter is faster, as the ratio says
    ratio = t["attempt_speech_rate"] / t["reference_speech_rate"]
    assert abs(ratio - t["speech_rate_ratio"]) < 0.02


def test_without_the_text_both_rates_use_the_references_count(samples: np.ndarray) -> None:
    ref = prepare(samples)
    slow = prepare(perturb.change_tempo(samples, 0.8))
    t = build_report(ref, slow, {}).detailed_analysis["timing_analysis"]
    assert t["reference_syllables"] == t["attempt_syllables"] == t["reference_nuclei"]
    assert t["attempt_speech_rate"] < t["reference_speech_rate"] and t["speech_rate_ratio"] < 1.0
