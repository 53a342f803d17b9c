"""The engine on real recorded Mandarin: scripts/evaluate.py over the real-speech folder
must meet the acceptance thresholds of issue #9 (docs/ANALYSIS.md has the table).

The folder is ``../shared/data/real-speech`` relative to the repository root (present in
CI), or ``VOCALBORN_REAL_SPEECH_DIR`` (another folder laid out the same way, e.g.
recordings kept aside). Without it, and outside CI, the test is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDER = Path(os.environ.get("VOCALBORN_REAL_SPEECH_DIR") or ROOT.parent / "shared" / "data" / "real-speech")

# Scores every pair of the real-speech folder (about a minute): a long run, out of the fast loop.
pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not (FOLDER / "manifest.tsv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the real-speech folder {FOLDER} is missing in CI")
        pytest.skip(f"no real-speech recordings at {FOLDER} (set VOCALBORN_REAL_SPEECH_DIR)")
    out = tmp_path_factory.mktemp("evaluate") / "result.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), str(FOLDER), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text(encoding="utf-8"))


def test_same_sentence_and_another_sentence_separate(evaluation: dict) -> None:
    checks = evaluation["summary"]["checks"]
    assert checks["auc_same_vs_other"] >= 0.98
    assert checks["another_sentence_max"] <= 40.0


def test_another_speaker_saying_the_same_sentence_scores_high(evaluation: dict) -> None:
    neutral = evaluation["summary"]["checks"]["neutral_other_speaker_mean"]
    if neutral is not None:  # the folder may have no neutral pair of two speakers
        assert neutral >= 75.0


def test_timing_counts_whenever_the_sentence_is_the_same(evaluation: dict) -> None:
    assert evaluation["summary"]["checks"]["same_sentence_timing_nonzero_share"] >= 0.95


def test_reversed_copies_score_low(evaluation: dict) -> None:
    assert evaluation["summary"]["checks"]["reversed_max"] <= 30.0


def test_every_pair_type_is_scored_and_characters_are_judged(evaluation: dict) -> None:
    table = evaluation["summary"]["table"]
    assert {"another_sentence", "reversed", "truncated_50", "noise_10db", "tempo_0.8", "tempo_1.25"} <= set(table)
    same = [p for p in evaluation["pairs"] if p["type"].startswith("same_sentence")]
    assert same and all(p["characters"] > 0 for p in same)
    # Degraded copies rank below the clean pairs they come from.
    assert table["truncated_50"]["overall_mean"] < table["tempo_0.8"]["overall_mean"]


def test_heard_tones_agree_with_the_text(evaluation: dict) -> None:
    """Issue #22: on native readings the heard tone (attempts of same-sentence pairs, the
    reference's contour as the template) agrees with the text's accepted tones."""
    tones = evaluation["summary"]["tones"]["pairs"]
    assert tones["agreement"] >= 0.75, tones
    assert tones["judged_share"] >= 0.70, tones


def test_partial_attempts_get_their_completeness(evaluation: dict) -> None:
    """The first half of each same-sentence recording (issue #22): judged on what was said,
    with a completeness near the half (measured 83 % of the pairs in 35..65, docs/ANALYSIS.md)."""
    truncation = evaluation["summary"]["miscues"]["truncation"]
    assert truncation["n"] > 0
    assert truncation["completeness_in_35_65"] >= 0.75
    assert truncation["unsaid_omission_share"] >= 0.75


def test_native_readers_get_few_omissions(evaluation: dict) -> None:
    """Characters of the same sentence read by another native speaker are rarely called
    omitted (measured 0-2.5 %, docs/ANALYSIS.md)."""
    table = evaluation["summary"]["miscues"]["table"]
    for kind in ("same_sentence_other_speaker_neutral", "same_sentence_other_speaker_emotion"):
        if kind in table:
            assert table[kind]["omission"] <= 0.05, (kind, table[kind])
