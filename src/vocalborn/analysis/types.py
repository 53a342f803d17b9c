"""The contract between the analysis engine and the rest of VocalBorn.

This module (like all of ``vocalborn.analysis``) imports nothing else of ``vocalborn``:
the package could be published on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

# The plan's five steps, in order. The engine reports each one as it starts it; the worker
# maps them to the task's ``progress`` / ``current_step`` / ``total_steps``.
STEPS: tuple[tuple[str, str, str], ...] = (
    # (key, zh-TW label shown to learners, English label)
    ("load_audio", "載入音訊", "Loading audio"),
    ("extract_features", "語音特徵提取", "Extracting speech features"),
    ("compare", "發音比對", "Comparing with the reference"),
    ("score", "評分計算", "Scoring"),
    ("suggest", "生成建議", "Generating suggestions"),
)
TOTAL_STEPS = len(STEPS)

# progress(step_number, step_key): step_number is 1..TOTAL_STEPS, called when a step starts.
ProgressCallback = Callable[[int, str], None]


def report_progress(progress: ProgressCallback | None, step: int) -> None:
    """Tell ``progress`` (when given) that step ``step`` (1-based) of STEPS starts."""
    if progress is not None:
        progress(step, STEPS[step - 1][0])


# Anything the engine accepts as a recording: raw bytes or a path on disk.
AudioSource = bytes | str | Path


class AnalysisError(Exception):
    """Base class of every error the engine raises on purpose."""


class AnalysisInputError(AnalysisError):
    """The input can never be analysed (permanent): retrying cannot help."""


class UndecodableAudioError(AnalysisInputError):
    """The bytes are not audio any decoder here understands."""


class UnusableAudioError(AnalysisInputError):
    """Decodable, but unusable: silence only, too short, clipped beyond use."""


class TransientAnalysisError(AnalysisError):
    """A failure that may pass (remote engine timeout, 5xx, open circuit): retry later.

    ``error_class`` names the retry budget it draws on (``vocalborn.outage.policy``)."""

    error_class = "service"


class RemoteUnreachableError(TransientAnalysisError):
    """The remote analysis service did not answer at all (refused, reset, DNS)."""

    error_class = "network"


class RemoteTimeoutError(TransientAnalysisError):
    """The remote analysis service took longer than AI_SERVICE_TIMEOUT."""

    error_class = "timeout"


class CircuitOpenError(TransientAnalysisError):
    """The remote engine's circuit is open: recent calls failed, this one is not even tried."""

    error_class = "network"


@dataclass(frozen=True)
class AudioInfo:
    format: str  # canonical short name: mp3, wav, m4a, aac, ogg, webm, flac, ...
    duration_seconds: float
    sample_rate: int
    channels: int


@dataclass
class AnalysisReport:
    """The plan's result fields. Scores lie in 0..100."""

    overall_score: float
    pronunciation_accuracy: float
    fluency_score: float
    rhythm_score: float
    detailed_analysis: dict[str, Any]
    sentence_analyses: list[dict[str, Any]] = field(default_factory=list)
    suggestions: str = ""
    improvement_areas: list[str] = field(default_factory=list)
    analysis_model_version: str = ""
    # Share (0..100) of the reference's judged characters the attempt said; None when the
    # analysis had no sentence text to count characters by.
    completeness_score: float | None = None
    # True when the remote engine was unavailable and the local engine analysed instead
    # (AI_ENGINE_FALLBACK=local): stored on the result and shown beside the model version.
    engine_fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisReport:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})


class AnalysisEngine(Protocol):
    """What the worker calls. ``params`` is the submit request's ``parameters`` object."""

    name: str
    version: str

    def analyze(
        self,
        reference: AudioSource,
        attempt: AudioSource,
        params: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> AnalysisReport: ...
