"""Analysis engines: the local acoustic engine, and :func:`get_engine` to pick it or the
client for a remote one (:mod:`vocalborn.analysis.remote`).

``LocalEngine`` runs everything in-process (numpy + PyAV + parselmouth, one core,
deterministic).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from vocalborn.analysis.remote import RemoteEngine
from vocalborn.analysis.types import (
    AnalysisEngine,
    AnalysisReport,
    AudioSource,
    ProgressCallback,
    UndecodableAudioError,
    UnusableAudioError,
)
from vocalborn.analysis.types import report_progress as _progress

__all__ = [
    "ENGINE_VERSION",
    "LocalEngine",
    "Prepared",
    "RemoteEngine",
    "analyze",
    "build_report",
    "get_engine",
    "prepare",
]

ENGINE_VERSION = "vocalborn-phonetic-3.1"


def _source_key(source: AudioSource) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return "b:" + sha256(bytes(source)).hexdigest()
    path = Path(source)
    try:
        st = path.stat()
    except OSError:
        return f"p:{path}"
    return f"p:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


class LocalEngine:
    """The in-process acoustic engine (see docs/ANALYSIS.md for the method).

    A worker typically analyses many attempts against the same reference, so the
    reference's features are kept in a small LRU cache keyed by content hash (bytes) or
    path, size and mtime (files). Results do not depend on the cache.
    """

    name = "vocalborn-local"
    version = ENGINE_VERSION

    def __init__(self, reference_cache_size: int = 16) -> None:
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = reference_cache_size
        self._lock = threading.Lock()

    def _reference_features(self, source: AudioSource) -> Prepared:
        from vocalborn.analysis.decode import load_audio  # reason: PyAV/numpy on use only

        key = _source_key(source)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        feats = prepare(load_audio(source))
        if self._cache_size > 0:
            with self._lock:
                self._cache[key] = feats
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return feats

    def analyze(
        self,
        reference: AudioSource,
        attempt: AudioSource,
        params: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> AnalysisReport:
        """Compare ``attempt`` with ``reference`` and return the scored report.

        ``params["text"]`` (optional) is the sentence both recordings say; with it the
        report judges every character (``detailed_analysis.characters``).

        Raises:
            UndecodableAudioError: either file is not decodable audio.
            UnusableAudioError: either recording is silent, too short or clipped; the
                message says which recording (reference or attempt).
        """
        from vocalborn.analysis.decode import load_audio  # reason: PyAV/numpy on use only

        params = dict(params or {})
        english = str(params.get("language") or "zh-TW").lower().startswith("en")

        _progress(progress, 1)
        try:
            att_samples = load_audio(attempt)
        except UndecodableAudioError as exc:
            raise UndecodableAudioError(_which(exc, "attempt", english)) from exc

        _progress(progress, 2)
        try:
            ref = self._reference_features(reference)
        except (UndecodableAudioError, UnusableAudioError) as exc:
            raise type(exc)(_which(exc, "reference", english)) from exc
        try:
            att = prepare(att_samples)
        except UnusableAudioError as exc:
            raise UnusableAudioError(_which(exc, "attempt", english)) from exc
        return build_report(ref, att, params, progress, version=self.version)


@dataclass(frozen=True)
class Prepared:
    """Everything extracted from one recording (cacheable: it depends on the audio only)."""

    features: Any  # features.RecordingFeatures
    phones: Any  # phonetic.PhoneticFeatures


def prepare(samples: Any) -> Prepared:
    """Extract the acoustic and phonetic features of 16 kHz mono samples.

    Raises UnusableAudioError for silence, too little speech or heavy clipping."""
    from vocalborn.analysis import features, phonetic  # reason: numpy and hama (the recogniser) on use only

    feats = features.extract(samples)
    return Prepared(feats, phonetic.extract(samples))


def build_report(
    ref: Prepared,
    att: Prepared,
    params: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    version: str = ENGINE_VERSION,
) -> AnalysisReport:
    """Score prepared recordings and write the report (steps 3-5 of STEPS)."""
    import numpy as np

    from vocalborn.analysis import char_report, characters, miscues, scoring, suggest  # reason: numpy on use only

    params = dict(params or {})
    language = str(params.get("language") or "zh-TW")
    include_suggestions = bool(params.get("include_suggestions", True))
    text = params.get("text")
    text = text.strip() if isinstance(text, str) else ""

    _progress(progress, 3)
    located = characters.locate(text, ref) if text else None
    # What the attempt left out of the reference and added (analysis/miscues.py). A partial
    # attempt (stopped early, started late) is compared with the stretch of the reference
    # it said; the characters outside are omissions.
    edits = (
        miscues.edit_align(ref.phones, att.phones, located.ref_sec) if located is not None and located.forced else None
    )
    said = miscues.said_by_phones(att.phones, located.seq) if edits is not None and located is not None else None
    omitted = miscues.omitted_characters(located.ref_sec, edits, said) if located is not None else None
    partial = omitted is not None and bool(omitted[0] or omitted[-1])
    segments = located.frames() if located is not None else None
    if partial and located is not None and omitted is not None and segments is not None:
        inside = np.flatnonzero(~omitted)
        first, last = int(inside[0]), int(inside[-1])
        ref = miscues.crop(ref, located.ref_sec[first][0], located.ref_sec[last][1])
        segments = segments[first : last + 1]
    analysis = scoring.evaluate(ref.features, att.features, ref.phones, att.phones, segments)
    baseline = params.get("pitch_baseline")
    baseline = baseline if isinstance(baseline, dict) else None
    chars = characters.analyse(located, ref, att, analysis, edits, baseline, said) if located is not None else None
    completeness = char_report.completeness(chars.characters) if chars is not None else None
    if partial and completeness is not None:
        # The scores measure what was said; the overall score also counts what was not.
        analysis.scores.overall = round(analysis.scores.overall * completeness / 100.0, 2)

    _progress(progress, 4)
    sc = analysis.scores
    detailed = dict(analysis.detailed)
    detailed["analysis_type"] = str(params.get("analysis_type") or "full")
    detailed["pitch_profile"] = _pitch_profile(att.features)
    if params.get("model_version") is not None:
        detailed["requested_model_version"] = str(params["model_version"])
    if chars is not None:
        detailed["text"] = text
        detailed["characters"] = chars.characters
        detailed["character_summary"] = chars.summary
        detailed["insertions"] = chars.extra
        # The characters' verdicts replace the frame-level pronunciation, missing and tone
        # deviations, so the report says one thing (timing deviations stay).
        kept = [d for d in analysis.deviations if d["kind"] not in ("pronunciation", "missing", "tone")]
        analysis.deviations = sorted(kept + chars.deviations, key=lambda d: (d["start"], d["kind"]))
        detailed["deviations"] = analysis.deviations
    analysis.facts["characters"] = chars

    _progress(progress, 5)
    localized = {lang: suggest.make_suggestions(analysis, lang) for lang in ("zh-TW", "en")}
    detailed["localized"] = {
        lang: {"suggestions": txt, "improvement_areas": areas} for lang, (txt, areas) in localized.items()
    }
    if include_suggestions:
        text_out, areas = localized["en" if language.lower().startswith("en") else "zh-TW"]
    else:
        text_out, areas = suggest.empty()
    timing = detailed["timing_analysis"]
    sentence = {
        "index": 0,
        "overall_score": sc.overall,
        "pronunciation_accuracy": sc.pronunciation,
        "fluency_score": sc.fluency,
        "rhythm_score": sc.rhythm,
        "reference_duration": timing["reference_duration"],
        "attempt_duration": timing["attempt_duration"],
        "attempt_speech_start": timing["attempt_speech_span"][0],
        "attempt_speech_end": timing["attempt_speech_span"][1],
        "deviation_count": len(analysis.deviations),
    }
    if chars is not None:
        sentence["text"] = text
        sentence["completeness_score"] = completeness
    return AnalysisReport(
        overall_score=sc.overall,
        pronunciation_accuracy=sc.pronunciation,
        fluency_score=sc.fluency,
        rhythm_score=sc.rhythm,
        detailed_analysis=detailed,
        sentence_analyses=[sentence],
        suggestions=text_out,
        improvement_areas=areas,
        analysis_model_version=version,
        completeness_score=completeness,
    )


def _pitch_profile(features: Any) -> dict[str, float | None]:
    """The attempt's pitch (the worker keeps it to build a later ``pitch_baseline``)."""
    from vocalborn.analysis import tones  # reason: numpy on use only

    median, spread, voiced = tones.profile(features.tone_f0)
    return {
        "median_hz": round(median, 1) if median > 0 else None,
        "spread_semitones": round(spread, 2) if median > 0 else None,
        "voiced_seconds": round(voiced, 2),
    }


def _which(exc: Exception, role: str, english: bool) -> str:
    """Prefix an input error with which recording it concerns."""
    names = {"reference": ("示範錄音", "Reference recording"), "attempt": ("你的錄音", "Your recording")}
    zh, en = names[role]
    return f"{en}: {exc}" if english else f"{zh}：{exc}"


def get_engine(kind: str = "local", **options: Any) -> AnalysisEngine:
    """Build an engine: ``"local"`` (options passed to :class:`LocalEngine`) or
    ``"remote"`` (options passed to :class:`RemoteEngine`, ``url`` required)."""
    kind = kind.lower()
    if kind == "local":
        return LocalEngine(**options)
    if kind == "remote":
        if "url" not in options:
            raise ValueError("the remote engine needs url=")
        return RemoteEngine(**options)
    raise ValueError(f"unknown analysis engine {kind!r}: use 'local' or 'remote'")


_default_engine: LocalEngine | None = None


def analyze(
    reference: AudioSource,
    attempt: AudioSource,
    params: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> AnalysisReport:
    """Analyse with a process-wide :class:`LocalEngine` (convenience for CLI and scripts)."""
    global _default_engine
    if _default_engine is None:
        _default_engine = LocalEngine()
    return _default_engine.analyze(reference, attempt, params, progress)
