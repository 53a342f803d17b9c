"""Does a file *start* like the container FFmpeg found in it?

FFmpeg's probe scans into a file for anything it recognises: a ZIP that stores an mp3 (or a PDF
with an embedded sound) is reported as mp3, and would be served as ``audio/mpeg`` starting with
``PK``. A real recording of each accepted container begins with that container's signature (an
ID3 tag may come first for mp3, aac and flac), so we check the first bytes as well.
"""

from __future__ import annotations

# Signatures of files people send by mistake (or on purpose), for a clearer refusal.
_KNOWN_OTHER = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"MZ", "a program"),
    (b"\x7fELF", "a program"),
)
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
_W64 = b"riff\x2e\x91\xcf\x11"
_MAX_PADDING = 65_536  # zero bytes some encoders leave between an ID3 tag and the first frame


def _after_id3(data: bytes) -> int:
    """Offset of the first byte after any ID3v2 tags (and zero padding) at the start."""
    i = 0
    while data[i : i + 3] == b"ID3" and len(data) >= i + 10:
        size = 0
        for b in data[i + 6 : i + 10]:
            size = (size << 7) | (b & 0x7F)  # syncsafe integer
        footer = 10 if data[i + 5] & 0x10 else 0
        i += 10 + size + footer
    limit = min(len(data), i + _MAX_PADDING)
    while i < limit and data[i] == 0:
        i += 1
    return i


def _mpeg_frame(data: bytes, i: int) -> bool:
    return len(data) >= i + 2 and data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0


def _adts_frame(data: bytes, i: int) -> bool:
    return len(data) >= i + 2 and data[i] == 0xFF and data[i + 1] & 0xF6 == 0xF0


def starts_like(data: bytes, fmt: str) -> bool:
    """True when ``data`` begins the way a ``fmt`` file (our canonical names) begins. Formats
    without a check here are not refused by it."""
    if fmt == "wav":
        return (data[:4] in (b"RIFF", b"RF64", b"BW64") and data[8:12] == b"WAVE") or data[:8] == _W64
    if fmt == "mp3":
        return _mpeg_frame(data, _after_id3(data))
    if fmt == "aac":
        return _adts_frame(data, _after_id3(data)) or data[:4] == b"ADIF"
    if fmt in ("m4a", "3gp"):
        return data[4:8] in _MP4_BOXES
    if fmt == "ogg":
        return data[:4] == b"OggS"
    if fmt == "webm":
        return data[:4] == b"\x1a\x45\xdf\xa3"
    if fmt == "flac":
        return data[_after_id3(data) :][:4] == b"fLaC"
    if fmt == "amr":
        return data[:5] == b"#!AMR"
    return True


def looks_like(data: bytes) -> str | None:
    """What a non-audio file seems to be, from its signature ("a ZIP archive"), if we know."""
    for magic, what in _KNOWN_OTHER:
        if data.startswith(magic):
            return what
    return None
