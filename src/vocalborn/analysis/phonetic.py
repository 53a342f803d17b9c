"""Speaker-independent content representation: frame phoneme posteriors and their DTW.

A small CTC phoneme recogniser (the ``hama`` package: a 4.7 MB model shipped inside the
wheel, run by its own CPU engine, numpy only, offline) turns a recording into per-frame
posterior probabilities over ~190 IPA phones every 20 ms. Phone posteriors describe
*what was said* and mostly ignore *who said it* (sex, age, microphone), unlike MFCCs.

Comparison (see docs/ANALYSIS.md):

1. Frames where the CTC blank has probability > 0.5 carry no phone: they are dropped,
   the blank column is removed and the rest renormalised (``content`` frames).
2. Frame cost ``-log(p_ref . p_att)``: small when both frames put their mass on the same
   phones. DTW (symmetric, no step penalty) aligns the content frames; ``cost`` is the
   mean cost along the path.
3. The same DTW against the attempt's content frames in reverse order gives a *chance*
   cost (same sounds, wrong order). ``distance = cost * sqrt(ratio / 0.5)`` with
   ``ratio = dtw / chance`` combines the two: a right sentence is cheap and ordered.

The model is loaded once per process (:func:`load_model`, thread-safe); the worker calls
:func:`preload` when its process starts so no analysis pays the load.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from vocalborn.analysis import dsp

FRAME = 0.02  # seconds per posterior frame (the model subsamples a 10 ms STFT by 2)
FRAME_SAMPLES = 320
BLANK_DROP = 0.5  # frames whose blank posterior exceeds this carry no phone
MODEL_SAMPLE_RATE = 16000
MODEL_NAME = "hama-1.7.0-asr_waveform"

_model: Any = None
_lock = threading.Lock()


def load_model() -> Any:
    """The process-wide recogniser (loaded on first use, ~50 ms, then reused)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                from hama.asr import ASRModel

                _model = ASRModel()
    return _model


def preload() -> None:
    """Load the model now (called when a worker process starts)."""
    load_model()


def model_loaded() -> bool:
    return _model is not None


@dataclass(frozen=True)
class PhoneticFeatures:
    """Posteriors of one recording."""

    logp: np.ndarray  # (T, V) log posteriors, last column is the CTC blank
    blank_id: int
    content: np.ndarray  # (K, V-1) renormalised phone posteriors of the non-blank frames
    content_frames: np.ndarray  # (K,) posterior-frame index of each content frame
    offset: float = 0.0  # seconds of the recording before posterior frame 0

    @property
    def n_frames(self) -> int:
        return int(self.logp.shape[0])

    def frame_time(self, k: np.ndarray | int) -> np.ndarray:
        """Centre time (seconds) of posterior frame(s) ``k``."""
        return self.offset + (np.asarray(k, dtype=np.float64) + 0.5) * FRAME

    def frame_start(self, k: int) -> float:
        """Start time (seconds) of posterior frame ``k``."""
        return self.offset + k * FRAME


EDGE_MARGIN = 0.25  # seconds of context kept around the speech span


def extract(samples: np.ndarray, span: tuple[float, float] | None = None) -> PhoneticFeatures:
    """Posteriors of a 16 kHz mono recording (float samples in -1..1).

    With ``span`` (speech start and end, seconds) only that part and ``EDGE_MARGIN`` of
    context on each side goes through the recogniser; the times reported stay on the whole
    recording's axis. The engine does not use it: the model normalises over the whole
    input, and trimming raised same-sentence distances on real speech (docs/ANALYSIS.md)."""
    model = load_model()
    x = np.asarray(samples, dtype=np.float32)
    offset = 0.0
    if span is not None:
        start = max(0, int((span[0] - EDGE_MARGIN) * MODEL_SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES)
        end = min(len(x), int((span[1] + EDGE_MARGIN) * MODEL_SAMPLE_RATE))
        if end - start >= FRAME_SAMPLES * 4:
            x = x[start:end]
            offset = start / MODEL_SAMPLE_RATE
    wav = np.clip(x, -1.0, 1.0).reshape(1, -1)
    feeds = {
        model._waveform_input_name: wav,
        model._waveform_lengths_input_name: np.array([wav.shape[1]], dtype=np.int64),
    }
    log_probs, out_lengths = model.session.run([model._log_probs_output_name, model._out_lengths_output_name], feeds)
    n = int(np.asarray(out_lengths).reshape(-1)[0])
    logp = np.asarray(log_probs, dtype=np.float64)[0][:n]
    # Renormalise (the engine's float32 softmax sums to 1 within ~1e-7).
    logp = logp - np.logaddexp.reduce(logp, axis=1, keepdims=True)
    blank = int(model.blank_id)
    p = np.exp(logp)
    keep = np.flatnonzero(p[:, blank] <= BLANK_DROP)
    q = np.delete(p[keep], blank, axis=1)
    q /= np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
    return PhoneticFeatures(logp, blank, q, keep, offset)


@dataclass(frozen=True)
class ContentAlignment:
    """The DTW of two recordings' content frames."""

    path: np.ndarray  # (L, 2) content-frame indices (ref, attempt)
    local: np.ndarray  # (L,) frame cost along the path
    cost: float  # mean frame cost along the path
    ratio: float  # normalised DTW cost / chance (reversed attempt) cost
    distance: float  # cost * sqrt(ratio / 0.5): the content distance scored
    n_ref: int
    n_att: int


EMPTY_DISTANCE = 9.0  # a recording without any phone frame matches nothing


def align(ref: PhoneticFeatures, att: PhoneticFeatures) -> ContentAlignment:
    """DTW of the two recordings' content frames (see the module docstring)."""
    nr, na = len(ref.content_frames), len(att.content_frames)
    if nr < 2 or na < 2:
        return ContentAlignment(np.zeros((0, 2), np.int64), np.zeros(0), EMPTY_DISTANCE, 2.0, EMPTY_DISTANCE, nr, na)
    sim = ref.content @ att.content.T
    cost_matrix = -np.log(np.maximum(sim, 1e-12))
    dtw_cost, path = dsp.dtw(cost_matrix, 0.0)
    chance = dsp.dtw_cost_only(np.ascontiguousarray(cost_matrix[:, ::-1]), 0.0)
    local = cost_matrix[path[:, 0], path[:, 1]]
    cost = float(local.mean())
    ratio = float(dtw_cost / chance) if chance > 0 else 1.0
    distance = cost * float(np.sqrt(max(ratio, 1e-6) / 0.5))
    return ContentAlignment(path, local, cost, ratio, distance, nr, na)


def anchors(ref: PhoneticFeatures, att: PhoneticFeatures, ca: ContentAlignment) -> tuple[np.ndarray, np.ndarray]:
    """Monotone (reference seconds, attempt seconds) pairs from the content path: one per
    distinct reference content frame (attempt times averaged), attempt times made
    non-decreasing."""
    if ca.path.size == 0:
        return np.zeros(0), np.zeros(0)
    rt = ref.frame_time(ref.content_frames[ca.path[:, 0]])
    at = att.frame_time(att.content_frames[ca.path[:, 1]])
    uniq, inv = np.unique(rt, return_inverse=True)
    mean_at = np.bincount(inv, at) / np.bincount(inv)
    return uniq, np.maximum.accumulate(mean_at)


def local_cost_by_ref_time(ref: PhoneticFeatures, ca: ContentAlignment) -> tuple[np.ndarray, np.ndarray]:
    """(reference seconds, mean path cost) per distinct reference content frame."""
    if ca.path.size == 0:
        return np.zeros(0), np.zeros(0)
    rt = ref.frame_time(ref.content_frames[ca.path[:, 0]])
    uniq, inv = np.unique(rt, return_inverse=True)
    return uniq, np.bincount(inv, ca.local) / np.bincount(inv)


def local_cost_by_att_time(att: PhoneticFeatures, ca: ContentAlignment) -> tuple[np.ndarray, np.ndarray]:
    """(attempt seconds, mean path cost) per distinct attempt content frame."""
    if ca.path.size == 0:
        return np.zeros(0), np.zeros(0)
    at = att.frame_time(att.content_frames[ca.path[:, 1]])
    uniq, inv = np.unique(at, return_inverse=True)
    return uniq, np.bincount(inv, ca.local) / np.bincount(inv)
