"""Upload validation: cheap refusal of long files, format by content, level-preserving down-mix.

Regression tests for issue #11 (defects 5, 6 and 7).
"""

from __future__ import annotations

import io
import time
import wave
import zipfile
from functools import lru_cache

import av
import numpy as np
import pytest

from tests.support import recording
from vocalborn.analysis import features
from vocalborn.analysis.decode import encode_audio, load_audio, probe_audio
from vocalborn.config import get_settings
from vocalborn.errors import AudioRejected
from vocalborn.practice.service import validate_audio
from vocalborn.practice.sniff import starts_like


def _wav(channels: np.ndarray, rate: int = 16000) -> bytes:
    """A PCM WAV with one row of ``channels`` per channel (values -1..1)."""
    pcm = (np.clip(channels, -1, 1) * 32767).astype("<i2").T.copy()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@lru_cache(maxsize=1)
def four_hours_of_silent_flac() -> bytes:
    """4 h of silence at 8 kHz, encoded one second at a time (the file is a few MB)."""
    buf = io.BytesIO()
    rate = 8000
    with av.open(buf, mode="w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        silence = np.zeros((1, rate), dtype=np.int16)
        for i in range(4 * 3600):
            frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = i * rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def test_a_four_hour_flac_is_refused_without_decoding_it() -> None:
    data = four_hours_of_silent_flac()
    settings = get_settings().model_copy(update={"supported_audio_formats": "flac,wav"})
    started = time.process_time()
    with pytest.raises(AudioRejected) as refused:
        validate_audio(data, settings, "audio")
    cpu = time.process_time() - started
    assert refused.value.status_code == 422 and "longer than" in refused.value.message
    assert cpu < 0.3, f"refusing a 4 h file cost {cpu:.2f} s of CPU"  # decoding it all: ~3 s


def test_decoding_stops_just_past_the_limit_when_the_header_says_nothing() -> None:
    # 10 minutes of a tone as raw ADTS AAC: no duration in any header, only an estimate.
    rate = 8000
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(rate * 600) / rate)).astype(np.float32)

    data = encode_audio(tone, rate, "aac")
    full = probe_audio(data)
    assert full.duration_seconds > 590
    started = time.perf_counter()
    capped = probe_audio(data, max_seconds=30)
    assert 30 < capped.duration_seconds < 600
    assert time.perf_counter() - started < 0.5


def test_a_zip_holding_an_mp3_is_not_accepted_as_mp3() -> None:
    mp3 = recording(voice="Male1", fmt="mp3")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("take1.mp3", mp3)
    data = buf.getvalue()
    assert data.startswith(b"PK")
    with pytest.raises(AudioRejected) as refused:
        validate_audio(data, get_settings(), "audio")
    assert refused.value.status_code == 415
    assert "ZIP" in refused.value.message
    # the mp3 itself (with or without an ID3 tag in front) is still fine
    assert validate_audio(mp3, get_settings(), "audio").format == "mp3"
    tagged = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + mp3
    assert validate_audio(tagged, get_settings(), "audio").format == "mp3"


@pytest.mark.parametrize("fmt", ["wav", "mp3", "m4a", "aac", "ogg", "webm", "flac"])
def test_every_accepted_container_starts_like_itself(fmt: str) -> None:
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    data = encode_audio(tone, 16000, fmt)
    assert starts_like(data, probe_audio(data).format)
    assert not starts_like(b"PK\x03\x04" + data, probe_audio(data).format)


def test_identical_stereo_channels_keep_their_level() -> None:
    t = np.arange(16000) / 16000
    channel = 0.9 * np.sin(2 * np.pi * 200 * t)
    mono = load_audio(_wav(np.vstack([channel, channel])))
    assert abs(float(np.max(np.abs(mono))) - 0.9) < 0.02  # FFmpeg's default matrix made it 1.27


def test_a_six_channel_sine_at_minus_10_dbfs_is_accepted() -> None:
    rate = 16000
    t = np.arange(rate * 2) / rate
    level = 10 ** (-10 / 20)
    # a sine that comes and goes, so there is "speech" and pauses for the usability check
    envelope = (np.sin(2 * np.pi * 1.5 * t) > -0.3).astype(float)
    channel = level * np.sin(2 * np.pi * 220 * t) * envelope
    mono = load_audio(_wav(np.vstack([channel] * 6), rate))
    assert abs(float(np.max(np.abs(mono))) - level) < 0.02
    features.extract(mono)  # raised "clipped" (too loud) when six channels were summed
