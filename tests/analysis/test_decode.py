"""Upload validation and decoding: content-sniffed formats, clear errors, cheap import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vocalborn.analysis.decode import canonical_format, encode_audio, load_audio, probe_audio
from vocalborn.analysis.types import UndecodableAudioError

FORMATS = ["wav", "mp3", "ogg", "webm", "m4a", "aac", "flac", "amr", "3gp"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_probe_names_each_uploaded_format_and_its_true_duration(samples: np.ndarray, fmt: str) -> None:
    info = probe_audio(encode_audio(samples, 16000, fmt))
    assert info.format == fmt
    assert info.channels == 1
    # Codec priming and frame padding add at most a few tens of milliseconds.
    assert abs(info.duration_seconds - len(samples) / 16000) < 0.15


def test_format_is_detected_from_content_not_from_the_file_name(samples: np.ndarray, tmp_path: Path) -> None:
    lying = tmp_path / "recording.wav"
    lying.write_bytes(encode_audio(samples, 16000, "mp3"))
    assert probe_audio(lying).format == "mp3"
    assert probe_audio(str(lying)).format == "mp3"


@pytest.mark.parametrize(
    "data",
    [b"", b"this is not audio at all" * 40, bytes(range(256)) * 20],
    ids=["empty", "text", "binary-noise"],
)
def test_non_audio_raises_undecodable_with_a_readable_message(data: bytes) -> None:
    with pytest.raises(UndecodableAudioError) as err:
        probe_audio(data)
    assert "audio" in str(err.value)


def test_missing_file_raises_undecodable(tmp_path: Path) -> None:
    with pytest.raises(UndecodableAudioError):
        probe_audio(tmp_path / "nope.m4a")


def test_load_audio_resamples_any_input_to_mono_float32(samples: np.ndarray) -> None:
    opus_48k = encode_audio(samples, 16000, "ogg")  # opus at 48 kHz inside
    x = load_audio(opus_48k, sample_rate=16000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - len(samples)) < 0.05 * 16000
    y = load_audio(opus_48k, sample_rate=8000)
    assert abs(len(y) - len(x) / 2) < 200


def test_load_audio_rejects_undecodable_input() -> None:
    with pytest.raises(UndecodableAudioError):
        load_audio(b"RIFF0000WAVEjunk")


def test_canonical_names_cover_ffmpeg_families() -> None:
    assert canonical_format("mov,mp4,m4a,3gp,3g2,mj2", "M4A ") == "m4a"
    assert canonical_format("mov,mp4,m4a,3gp,3g2,mj2", "3gp4") == "3gp"
    assert canonical_format("matroska,webm") == "webm"
    assert canonical_format("aac") == "aac"


def test_decode_module_does_not_import_parselmouth() -> None:
    code = "import sys, vocalborn.analysis.decode; print('parselmouth' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
