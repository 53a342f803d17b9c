"""Decoding recordings: content-sniffed container detection, full decode, resampling.

Upload validation calls :func:`probe_audio` on every file a learner sends, so this module
imports only numpy and PyAV (no parselmouth): it must stay cheap to import and to run.

The container is detected from the *bytes* (FFmpeg's probe), never from a file name,
because phones and browsers routinely send ``.wav`` files that are really AAC in MP4, or
``blob`` with no extension at all.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import av
import numpy as np

from vocalborn.analysis.types import AudioInfo, AudioSource, UndecodableAudioError

__all__ = ["probe_audio", "load_audio", "encode_audio", "canonical_format"]

# Beyond this many bytes we refuse before decoding: a practice sentence is seconds long.
MAX_INPUT_BYTES = 64 * 1024 * 1024
# A packet that fails to decode is skipped (phones produce the odd broken frame); when more
# than this share of packets fail, the file is considered corrupt.
MAX_BAD_PACKET_SHARE = 0.2

_MSG_NOT_AUDIO = "這個檔案不是可以辨識的音訊檔 (The file is not a recognisable audio recording.)"
_MSG_NO_STREAM = "這個檔案裡沒有聲音軌 (The file contains no audio track.)"
_MSG_CORRUPT = "這個音訊檔已損壞，無法完整解碼 (The audio file is damaged and cannot be decoded.)"
_MSG_EMPTY = "這個音訊檔是空的 (The audio file is empty.)"

# FFmpeg's 3GPP brands in the ISO-BMFF ``ftyp`` box (major_brand) tell 3gp from m4a.
_3GP_BRANDS = ("3gp", "3g2", "3ge", "3gg", "3gr", "3gs")


def canonical_format(demuxer_name: str, major_brand: str = "") -> str:
    """Map an FFmpeg demuxer name (and the MP4 major brand) to the short names we store.

    FFmpeg reports families such as ``"mov,mp4,m4a,3gp,3g2,mj2"`` or ``"matroska,webm"``;
    the rest of VocalBorn wants one stable word per family.
    """
    names = set(demuxer_name.lower().split(","))
    if names & {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "ipod"}:
        brand = major_brand.strip().lower()
        if brand.startswith(_3GP_BRANDS):
            return "3gp"
        return "m4a"
    if names & {"matroska", "webm"}:
        return "webm"
    if names & {"ogg", "opus", "oga"}:
        return "ogg"
    if "aac" in names or "adts" in names:
        return "aac"
    if names & {"wav", "w64", "rf64"}:
        return "wav"
    if names & {"mp3", "mp2"}:
        return "mp3"
    if "flac" in names:
        return "flac"
    if names & {"amr", "amrnb", "amrwb"}:
        return "amr"
    return sorted(names)[0] if names else "unknown"


def _read_source(source: AudioSource) -> bytes:
    """Return the raw bytes of *source* (bytes or a path)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | Path):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise UndecodableAudioError(f"找不到音訊檔 (Cannot read the audio file: {path.name}).") from exc
        if size > MAX_INPUT_BYTES:
            raise UndecodableAudioError("音訊檔太大 (The audio file is too large.)")
        data = path.read_bytes()
    else:  # pragma: no cover - guarded by the type hints, kept for callers without them
        raise TypeError(f"audio source must be bytes, str or Path, not {type(source).__name__}")
    if not data:
        raise UndecodableAudioError(_MSG_EMPTY)
    if len(data) > MAX_INPUT_BYTES:
        raise UndecodableAudioError("音訊檔太大 (The audio file is too large.)")
    return data


def _header_duration(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    """The duration the container or stream header announces, if any (seconds)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return None


def _mono(frame_samples: np.ndarray) -> np.ndarray:
    """Down-mix planar samples (channels x n) by the mean of the channels: identical channels
    keep their level, and nothing a single channel could not reach is ever produced. (FFmpeg's
    default matrix adds them at -3 dB each: identical stereo at 0.9 became 1.27.)"""
    if frame_samples.ndim == 1 or frame_samples.shape[0] == 1:
        return frame_samples.reshape(-1)
    return frame_samples.mean(axis=0)


def _decode(
    source: AudioSource, sample_rate: int | None, max_seconds: float | None = None
) -> tuple[AudioInfo, np.ndarray | None]:
    """Decode the first audio stream completely.

    With ``sample_rate`` None only the samples are counted (probe); otherwise the audio is
    resampled to mono float32 at ``sample_rate`` and returned. With ``max_seconds``, a stream
    whose header announces more than that is not decoded at all, and decoding stops as soon as
    it passes it: the AudioInfo then reports the duration seen so far (more than the limit).
    """
    data = _read_source(source)
    # A BytesIO without a name: FFmpeg probes the content only, never an extension.
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise UndecodableAudioError(_MSG_NOT_AUDIO) from exc
    with container:
        if not container.streams.audio:
            raise UndecodableAudioError(_MSG_NO_STREAM)
        stream = container.streams.audio[0]
        fmt = canonical_format(container.format.name, str(container.metadata.get("major_brand", "")))
        if max_seconds is not None:
            announced = _header_duration(container, stream)
            # Headers can be estimates (mp3 without a Xing frame): refuse only a clear excess.
            if announced is not None and announced > max_seconds * 1.1 + 1.0:
                return (
                    AudioInfo(
                        format=fmt,
                        duration_seconds=round(announced, 3),
                        sample_rate=int(stream.sample_rate or 0),
                        channels=int(stream.channels or 1),
                    ),
                    None,
                )
        # Planar float at the target rate, channels kept: _mono averages them.
        resampler = av.AudioResampler(format="fltp", rate=sample_rate) if sample_rate else None
        chunks: list[np.ndarray] = []
        n_samples = 0
        in_rate = 0
        channels = 0
        packets = bad = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0 and packet.dts is None:
                    frames = _decode_packet(stream, packet)  # flush packet
                else:
                    packets += 1
                    try:
                        frames = _decode_packet(stream, packet)
                    except av.error.InvalidDataError:
                        bad += 1
                        continue
                for frame in frames:
                    n_samples += frame.samples
                    in_rate = in_rate or frame.sample_rate
                    channels = channels or len(frame.layout.channels)
                    if resampler is not None:
                        for out in resampler.resample(frame):
                            chunks.append(_mono(out.to_ndarray()))
                if max_seconds is not None and in_rate and n_samples / in_rate > max_seconds:
                    break  # long enough to refuse: the rest is not worth decoding
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise UndecodableAudioError(_MSG_CORRUPT) from exc
        if resampler is not None:
            for out in resampler.resample(None):
                chunks.append(_mono(out.to_ndarray()))
    if packets and bad > MAX_BAD_PACKET_SHARE * packets:
        raise UndecodableAudioError(_MSG_CORRUPT)
    if n_samples == 0 or in_rate <= 0:
        raise UndecodableAudioError(_MSG_NO_STREAM if packets == 0 else _MSG_CORRUPT)
    info = AudioInfo(
        format=fmt,
        duration_seconds=round(n_samples / in_rate, 3),
        sample_rate=int(in_rate),
        channels=int(channels or 1),
    )
    if resampler is None:
        return info, None
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return info, samples


def _decode_packet(stream: av.audio.stream.AudioStream, packet: av.Packet) -> list[av.AudioFrame]:
    return list(stream.codec_context.decode(packet))


def probe_audio(source: AudioSource, max_seconds: float | None = None) -> AudioInfo:
    """Validate an upload: detect the container by content and decode it completely.

    Decoding everything (3-13 ms for a practice recording) is the only way to be sure the
    file is usable and to get the true duration: container headers often lie, or are
    missing, for streamed browser recordings (webm, adts).

    With ``max_seconds`` a file that is longer costs little: a header announcing clearly more
    is refused without decoding, and decoding stops once the limit is passed (the duration
    returned is then more than ``max_seconds``, not the full length).

    Raises:
        UndecodableAudioError: not audio, corrupt, or without an audio stream.
    """
    info, _ = _decode(source, None, max_seconds)
    return info


def load_audio(source: AudioSource, sample_rate: int = 16000) -> np.ndarray:
    """Decode *source* to a mono float32 array at ``sample_rate`` Hz (values in -1..1).

    Raises:
        UndecodableAudioError: not audio, corrupt, or without an audio stream.
    """
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    _, samples = _decode(source, sample_rate)
    assert samples is not None
    return samples


# (container format, codec, codec sample rate) for the formats tests and tools write.
_ENCODERS: dict[str, tuple[str, str, int]] = {
    "wav": ("wav", "pcm_s16le", 0),
    "mp3": ("mp3", "libmp3lame", 0),
    "ogg": ("ogg", "libopus", 48000),
    "webm": ("webm", "libopus", 48000),
    "m4a": ("ipod", "aac", 0),
    "aac": ("adts", "aac", 0),
    "flac": ("flac", "flac", 0),
    "amr": ("amr", "libopencore_amrnb", 8000),
    "3gp": ("3gp", "libopencore_amrnb", 8000),
}


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str = "wav") -> bytes:
    """Encode mono float samples (-1..1) into ``fmt`` (one of the canonical short names).

    Used by the speech synthesiser helper, the calibration script and tests to produce
    real files in the formats phones and browsers upload.
    """
    if fmt not in _ENCODERS:
        raise ValueError(f"unsupported format {fmt!r}; choose from {sorted(_ENCODERS)}")
    container_fmt, codec, codec_rate = _ENCODERS[fmt]
    rate = codec_rate or int(sample_rate)
    x = np.clip(np.asarray(samples, dtype=np.float32).reshape(1, -1), -1.0, 1.0)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_fmt) as out:
        stream = cast("av.AudioStream", out.add_stream(codec, rate=rate, layout="mono"))
        formats = stream.codec_context.codec.audio_formats
        target_fmt = formats[0].name if formats else "s16"
        resampler = av.AudioResampler(format=target_fmt, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="flt", layout="mono")
        frame.sample_rate = int(sample_rate)
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
