"""Refuse a silent recording at upload, instead of letting it fail later in the worker."""

from __future__ import annotations

from vocalborn.analysis.types import UndecodableAudioError
from vocalborn.errors import AudioRejected

# The engine's own limit (analysis/features.py SILENCE_PEAK_DBFS): a peak below it is silence.
SILENCE_PEAK_DBFS = -50.0


def refuse_silence(data: bytes, field: str) -> None:
    """422 when nothing in the recording rises above the silence level."""
    import numpy as np

    from vocalborn.analysis.decode import load_audio  # reason: PyAV/numpy on use only

    try:
        samples = load_audio(data)
    except UndecodableAudioError as exc:
        raise AudioRejected(422, f"{field}: {exc}", field) from None
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= 10 ** (SILENCE_PEAK_DBFS / 20):
        raise AudioRejected(
            422, f"{field}: the recording is silent: nothing was heard; record again closer to the microphone", field
        )
