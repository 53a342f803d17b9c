"""VocalBorn's speech analysis engine: compares a learner's attempt with a reference.

Pure and self-contained: numpy, PyAV and praat-parselmouth only, and nothing else of
``vocalborn``. Heavy modules load lazily, so ``import vocalborn.analysis`` (and upload
validation through :mod:`vocalborn.analysis.decode`) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vocalborn.analysis.types import (
    STEPS,
    TOTAL_STEPS,
    AnalysisEngine,
    AnalysisError,
    AnalysisInputError,
    AnalysisReport,
    AudioInfo,
    AudioSource,
    ProgressCallback,
    TransientAnalysisError,
    UndecodableAudioError,
    UnusableAudioError,
)

if TYPE_CHECKING:
    from vocalborn.analysis.decode import load_audio, probe_audio
    from vocalborn.analysis.engine import LocalEngine, analyze, get_engine
    from vocalborn.analysis.remote import RemoteEngine
    from vocalborn.analysis.report_text import format_report

_LAZY = {
    "probe_audio": "vocalborn.analysis.decode",
    "load_audio": "vocalborn.analysis.decode",
    "LocalEngine": "vocalborn.analysis.engine",
    "RemoteEngine": "vocalborn.analysis.remote",
    "analyze": "vocalborn.analysis.engine",
    "get_engine": "vocalborn.analysis.engine",
    "format_report": "vocalborn.analysis.report_text",
}

__all__ = [
    "STEPS",
    "TOTAL_STEPS",
    "AnalysisEngine",
    "AnalysisError",
    "AnalysisInputError",
    "AnalysisReport",
    "AudioInfo",
    "AudioSource",
    "ProgressCallback",
    "TransientAnalysisError",
    "UndecodableAudioError",
    "UnusableAudioError",
    "probe_audio",
    "load_audio",
    "LocalEngine",
    "RemoteEngine",
    "analyze",
    "get_engine",
    "format_report",
]


def __getattr__(name: str) -> Any:
    """Import the heavier submodules only when one of their names is first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vocalborn.analysis' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
