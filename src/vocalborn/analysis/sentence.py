"""The practice sentence as syllables: pinyin and expected tone per character.

pypinyin gives each Han character its reading (``Style.TONE3``, neutral tone as 5) in
context (its phrase dictionary picks 的/了/長... readings). Tone sandhi is applied here
over each phrase between punctuation marks, because pypinyin only applies it inside a
dictionary word:

* 3-3: in a run of third tones every syllable but the last is said with tone 2
  (我很好 -> wo2 hen2 hao3). Both 2 and 3 are accepted on those syllables.
* 一 (yi1) before a tone 4 becomes yi2, before tones 1-3 yi4; left as yi1 at a phrase
  end, after 第, and between numerals (十一, 一一).
* 不 (bu4) before a tone 4 becomes bu2.

Characters that are not Han (digits, Latin letters, punctuation) get no syllable and are
not judged (``judged = False``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMERALS = set("零〇一二三四五六七八九十百千萬万億亿兩两")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z", "c", "s")


@dataclass(frozen=True)
class CharSyllable:
    index: int  # position in the text
    char: str
    judged: bool  # a Han character with a reading
    pinyin: str = ""  # toneless, e.g. "hao"
    base_tone: int = 0  # citation tone 1-5 (5 = neutral)
    tone: int = 0  # expected tone after sandhi
    accepted_tones: tuple[int, ...] = ()

    @property
    def pinyin_tone(self) -> str:
        return f"{self.pinyin}{self.tone}" if self.judged else ""

    @property
    def pinyin_marks(self) -> str:
        """The expected reading with a tone mark (sandhi applied), e.g. ``"mā"``; no mark
        for the neutral tone."""
        return tone_marks(self.pinyin, self.tone) if self.judged else ""


_MARKS = {
    "a": "āáǎà",
    "e": "ēéěè",
    "i": "īíǐì",
    "o": "ōóǒò",
    "u": "ūúǔù",
    "ü": "ǖǘǚǜ",
}


def tone_marks(syllable: str, tone: int) -> str:
    """Toneless pinyin plus tone 1-4 as a mark on the right vowel: a or e if present, the
    o of "ou", else the last vowel (so "liu" -> "liú", "gui" -> "guì"). Tone 5 or 0: none."""
    s = syllable.replace("v", "ü")
    if tone not in (1, 2, 3, 4):
        return s
    if "a" in s:
        pos = s.index("a")
    elif "e" in s:
        pos = s.index("e")
    elif "ou" in s:
        pos = s.index("o")
    else:
        vowels = [k for k, ch in enumerate(s) if ch in _MARKS]
        if not vowels:
            return s
        pos = vowels[-1]
    return s[:pos] + _MARKS[s[pos]][tone - 1] + s[pos + 1 :]


def split_pinyin(syllable: str) -> tuple[str, str]:
    """(initial, final) of a toneless pinyin syllable; y/w are glides of the final."""
    s = syllable.replace("v", "ü")
    for ini in INITIALS:
        if s.startswith(ini) and len(s) > len(ini):
            return ini, s[len(ini) :]
    if s.startswith("y"):
        rest = s[1:]
        if rest.startswith(("u", "ü")) and not rest.startswith("ou"):
            return "", "ü" + rest[1:]
        return "", rest if rest.startswith("i") else "i" + rest
    if s.startswith("w"):
        rest = s[1:]
        return "", rest if rest.startswith("u") else "u" + rest
    return "", s


def syllables(text: str) -> list[CharSyllable]:
    """Every character of ``text`` with its reading and expected tone (see module doc)."""
    from pypinyin import Style, pinyin

    out: list[CharSyllable] = []
    for m in re.finditer(
        r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+", text
    ):
        run = m.group(0)
        if not _HAN.match(run[0]):
            out += [CharSyllable(m.start() + j, ch, False) for j, ch in enumerate(run)]
            continue
        # One reading per Han character; the run keeps the context pypinyin's phrases need.
        readings = pinyin(run, style=Style.TONE3, neutral_tone_with_five=True)
        for j, ch in enumerate(run):
            r = readings[j][0] if j < len(readings) and readings[j] else ""
            if r and r[-1].isdigit() and r[:-1].isalpha():
                tone = int(r[-1])
                out.append(CharSyllable(m.start() + j, ch, True, r[:-1].replace("v", "ü"), tone, tone, (tone,)))
            else:
                out.append(CharSyllable(m.start() + j, ch, False))
    return _sandhi(out)


def _sandhi(chars: list[CharSyllable]) -> list[CharSyllable]:
    out = list(chars)
    # Phrases: runs of judged characters.
    runs: list[list[int]] = []
    cur: list[int] = []
    for i, c in enumerate(out):
        if c.judged:
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    for run in runs:
        # 一 and 不 first (they decide what follows them), then 3-3.
        for pos, i in enumerate(run):
            c = out[i]
            nxt = out[run[pos + 1]] if pos + 1 < len(run) else None
            prev = out[run[pos - 1]] if pos > 0 else None
            if c.char == "一" and c.base_tone == 1 and nxt is not None:
                if (prev is not None and (prev.char == "第" or prev.char in _NUMERALS)) or nxt.char in _NUMERALS:
                    continue
                tone = 2 if nxt.base_tone == 4 else 4
                out[i] = _with_tone(c, tone, (tone,))
            elif c.char == "不" and c.base_tone == 4 and nxt is not None and nxt.base_tone == 4:
                out[i] = _with_tone(c, 2, (2,))
        pos = 0
        while pos < len(run):
            if out[run[pos]].tone != 3:
                pos += 1
                continue
            end = pos
            while end + 1 < len(run) and out[run[end + 1]].tone == 3:
                end += 1
            for q in range(pos, end):
                out[run[q]] = _with_tone(out[run[q]], 2, (2, 3))
            pos = end + 1
    return out


def _with_tone(c: CharSyllable, tone: int, accepted: tuple[int, ...]) -> CharSyllable:
    return CharSyllable(c.index, c.char, c.judged, c.pinyin, c.base_tone, tone, accepted)


def reading_tones(char: str) -> dict[int, str]:
    """Every tone 1-4 a Han character can be read with (pypinyin's heteronyms), each with
    its toneless syllable (the first reading listed for that tone)."""
    from pypinyin import Style, pinyin

    out: dict[int, str] = {}
    for r in pinyin(char, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0]:
        if r and r[-1] in "1234" and r[:-1].isalpha():
            out.setdefault(int(r[-1]), r[:-1].replace("v", "ü"))
    return out


def with_reading(c: CharSyllable, syllable: str, tone: int) -> CharSyllable:
    """``c`` read as ``syllable`` with ``tone`` (a single character's other reading)."""
    return CharSyllable(c.index, c.char, c.judged, syllable, tone, tone, (tone,))
