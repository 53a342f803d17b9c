"""The local engine: report contents, feedback, errors, progress and determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vocalborn.analysis import analyze, get_engine
from vocalborn.analysis.engine import LocalEngine, RemoteEngine
from vocalborn.analysis.synth import to_wav
from vocalborn.analysis.types import STEPS, AnalysisReport, UndecodableAudioError, UnusableAudioError
from vocalborn_tools import perturb

SENTENCE = "我今天很高興見到你"  # as in conftest.py


def test_progress_reports_the_five_steps_in_order(engine: LocalEngine, reference_wav: bytes) -> None:
    seen: list[tuple[int, str]] = []
    engine.analyze(reference_wav, reference_wav, progress=lambda n, key: seen.append((n, key)))
    assert seen == [(i + 1, key) for i, (key, _, _) in enumerate(STEPS)]


def test_report_holds_every_section_the_product_stores(
    engine: LocalEngine, reference_wav: bytes, samples: np.ndarray
) -> None:
    attempt = to_wav(perturb.change_tempo(samples, 0.9), 16000)
    report = engine.analyze(reference_wav, attempt)
    for score in (report.overall_score, report.pronunciation_accuracy, report.fluency_score, report.rhythm_score):
        assert 0.0 <= score <= 100.0 and round(score, 2) == score
    da = report.detailed_analysis
    assert {"phoneme_analysis", "timing_analysis", "pitch_analysis", "voice_quality", "deviations"} <= set(da)
    syl = da["phoneme_analysis"][0]
    assert {"ref_start", "ref_end", "start", "end", "cost", "status"} <= set(syl)
    pitch = da["pitch_analysis"]
    assert 0 < len(pitch["time"]) <= 200 and len(pitch["reference"]) == len(pitch["attempt"]) == len(pitch["time"])
    assert pitch["correlation"] is not None and pitch["correlation"] > 0.8
    assert {"hnr_db", "jitter_local", "shimmer_local"} <= set(da["voice_quality"]["attempt"])
    assert da["timing_analysis"]["speech_rate_ratio"] < 1.0  # the attempt is slower
    assert report.sentence_analyses and report.sentence_analyses[0]["overall_score"] == report.overall_score
    assert report.analysis_model_version == engine.version
    assert AnalysisReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_inserted_pause_is_named_with_its_time_in_the_feedback(
    engine: LocalEngine, reference_wav: bytes, samples: np.ndarray
) -> None:
    attempt = to_wav(perturb.insert_silence(samples, 1.22, 0.8), 16000)
    report = engine.analyze(reference_wav, attempt)
    pauses = [d for d in report.detailed_analysis["deviations"] if d["kind"] == "pause"]
    assert len(pauses) == 1 and pauses[0]["start"] == pytest.approx(1.22, abs=0.1)
    assert "1.2" in report.suggestions and "停頓" in report.suggestions
    english = engine.analyze(reference_wav, attempt, {"language": "en"})
    assert "paused" in english.suggestions and "1.2" in english.suggestions
    assert english.overall_score == report.overall_score


def test_fast_speech_feedback_says_how_much_faster(
    engine: LocalEngine, reference_wav: bytes, samples: np.ndarray
) -> None:
    report = engine.analyze(reference_wav, to_wav(perturb.change_tempo(samples, 1.5), 16000), {"language": "en"})
    assert "faster" in report.suggestions
    ratio = report.detailed_analysis["timing_analysis"]["speech_rate_ratio"]
    assert 1.35 < ratio < 1.65
    assert f"{(ratio - 1) * 100:.0f}%" in report.suggestions


def test_suggestions_can_be_switched_off(engine: LocalEngine, reference_wav: bytes) -> None:
    report = engine.analyze(reference_wav, reference_wav, {"include_suggestions": False})
    assert report.suggestions == "" and report.improvement_areas == []


def test_silent_attempt_is_unusable_with_a_learner_message(engine: LocalEngine, reference_wav: bytes) -> None:
    with pytest.raises(UnusableAudioError, match="silent"):
        engine.analyze(reference_wav, to_wav(np.zeros(32000, np.float32), 16000), {"language": "en"})


def test_too_little_speech_is_unusable(engine: LocalEngine, reference_wav: bytes, samples: np.ndarray) -> None:
    blip = np.concatenate([np.zeros(8000, np.float32), samples[2000:5000], np.zeros(8000, np.float32)])
    with pytest.raises(UnusableAudioError, match="too little speech"):
        engine.analyze(reference_wav, to_wav(blip, 16000), {"language": "en"})


def test_heavily_clipped_attempt_is_unusable(engine: LocalEngine, reference_wav: bytes, samples: np.ndarray) -> None:
    clipped = np.clip(samples * 20.0, -1.0, 1.0)
    with pytest.raises(UnusableAudioError, match="loud"):
        engine.analyze(reference_wav, to_wav(clipped, 16000), {"language": "en"})


def test_undecodable_reference_names_the_reference(engine: LocalEngine, reference_wav: bytes) -> None:
    with pytest.raises(UndecodableAudioError, match="Reference"):
        engine.analyze(b"not audio" * 100, reference_wav, {"language": "en"})


def test_paths_and_bytes_give_the_same_report(engine: LocalEngine, reference_wav: bytes, tmp_path: Path) -> None:
    path = tmp_path / "ref.bin"
    path.write_bytes(reference_wav)
    assert engine.analyze(path, reference_wav).to_dict() == engine.analyze(reference_wav, str(path)).to_dict()


def test_get_engine_builds_both_kinds() -> None:
    assert isinstance(get_engine(), LocalEngine)
    assert isinstance(get_engine("remote", url="http://127.0.0.1:9"), RemoteEngine)
    with pytest.raises(ValueError):
        get_engine("cloud")


@pytest.mark.worker  # two fresh Python processes
def test_same_input_gives_bit_identical_json_across_processes(
    reference_wav: bytes, samples: np.ndarray, tmp_path: Path
) -> None:
    ref = tmp_path / "ref.wav"
    att = tmp_path / "att.wav"
    ref.write_bytes(reference_wav)
    att.write_bytes(to_wav(perturb.add_noise(samples, 25.0, np.random.default_rng(7)), 16000))
    code = (
        "import json, sys; from vocalborn.analysis import analyze; "
        "print(json.dumps(analyze(sys.argv[1], sys.argv[2], {'text': sys.argv[3]}).to_dict(), "
        "sort_keys=True, ensure_ascii=False))"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", code, str(ref), str(att), SENTENCE], capture_output=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert outs[0] == outs[1]
    assert b'"characters"' in outs[0]
    in_process = json.dumps(analyze(ref, att, {"text": SENTENCE}).to_dict(), sort_keys=True, ensure_ascii=False)
    assert outs[0].decode().strip() == in_process
