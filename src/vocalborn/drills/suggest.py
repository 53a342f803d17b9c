"""Minimal-pair drills (issue #26) from a learner's still-deviating characters.

For each character progress lists in ``still_deviating`` (marked in the learner's last attempt
that counts), with the reading it has in its sentence (``analysis.sentence.syllables``: pypinyin
in context, citation tone), two kinds of practice item are suggested from the bundled list of
common characters (``characters.txt``, readings from pypinyin):

* ``tone_contrast``: the same syllable in another tone (氣 qì – 七 qī): hearing and saying the
  tones apart;
* ``initial_contrast``: the same final and tone with another initial (氣 qì – 記 jì), the
  confusable initials first (j/q/x, z/zh, c/ch, s/sh, n/l, b/p, d/t, g/k, f/h, r/l).

An item's text is the two characters with an ideographic comma between them (``氣、七``): the
comma keeps the engine from applying third-tone sandhi across the pair. Each item says why it is
suggested, in the caller's language. Documented in docs/PRACTICE.md ("Drills").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from vocalborn.analysis.sentence import split_pinyin, syllables, tone_marks
from vocalborn.i18n import Language

LIST_FILE = Path(__file__).with_name("characters.txt")
PER_CHARACTER = {"tone_contrast": 2, "initial_contrast": 2}
MAX_ITEMS = 12
SEPARATOR = "、"

# Initials learners (and speakers with dysarthria) confuse, nearest first.
CONFUSABLE: dict[str, tuple[str, ...]] = {
    "b": ("p", "m"), "p": ("b",), "m": ("b", "n"), "f": ("h",), "d": ("t", "n"), "t": ("d",),
    "n": ("l", "d"), "l": ("n", "r"), "g": ("k", "h"), "k": ("g", "h"), "h": ("f", "k"),
    "j": ("q", "x", "zh"), "q": ("j", "x", "ch"), "x": ("s", "sh", "q"), "zh": ("z", "j", "ch"),
    "ch": ("c", "q", "zh"), "sh": ("s", "x"), "r": ("l",), "z": ("zh", "c"), "c": ("ch", "z"), "s": ("sh", "x"),
}  # fmt: skip

WHY = {
    "tone_contrast": (
        "「{char}」（{pinyin}）仍常被標出。「{other}」（{other_pinyin}）同音節但是第 {other_tone} 聲：分辨並唸出兩個聲調的差別。",
        "'{char}' ({pinyin}) is still marked. '{other}' ({other_pinyin}) is the same syllable in tone "
        "{other_tone}: hear and say the two tones apart.",
    ),
    "initial_contrast": (
        "「{char}」（{pinyin}）仍常被標出。「{other}」（{other_pinyin}）同韻同聲調、聲母不同（{initial} 對 {other_initial}）：練習聲母的差別。",
        "'{char}' ({pinyin}) is still marked. '{other}' ({other_pinyin}) has the same final and tone "
        "with another initial ({initial} against {other_initial}): practise the initial.",
    ),
}


@dataclass(frozen=True)
class Reading:
    char: str
    syllable: str  # toneless, ü spelled ü
    tone: int  # citation tone 1-5
    initial: str
    final: str

    @property
    def marks(self) -> str:
        return tone_marks(self.syllable, self.tone)


@dataclass(frozen=True)
class Index:
    by_syllable: dict[str, list[Reading]]
    by_final_tone: dict[tuple[str, int], list[Reading]]


@lru_cache(maxsize=1)
def index() -> Index:
    """The bundled list, read once (about 560 characters; a few ms)."""
    from pypinyin import Style, pinyin  # already imported by the engine's processes; lazy for the API's

    seen: set[str] = set()
    by_syllable: dict[str, list[Reading]] = defaultdict(list)
    by_final_tone: dict[tuple[str, int], list[Reading]] = defaultdict(list)
    for line in LIST_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        for char in line.strip():
            if char in seen:
                continue
            seen.add(char)
            r = pinyin(char, style=Style.TONE3, neutral_tone_with_five=True)[0][0]
            if not (r[-1:].isdigit() and r[:-1].isalpha()) or r[-1] == "5":
                continue  # neutral-tone particles make poor minimal pairs
            syllable = r[:-1].replace("v", "ü")
            initial, final = split_pinyin(syllable)
            reading = Reading(char, syllable, int(r[-1]), initial, final)
            by_syllable[syllable].append(reading)
            by_final_tone[(final, reading.tone)].append(reading)
    return Index(dict(by_syllable), dict(by_final_tone))


def _why(kind: str, target: Reading, other: Reading, lang: Language) -> str:
    zh, en = WHY[kind]
    return (en if lang == "en" else zh).format(
        char=target.char, pinyin=target.marks, other=other.char, other_pinyin=other.marks,
        other_tone=other.tone, initial=target.initial or "∅", other_initial=other.initial or "∅",
    )  # fmt: skip


def _item(kind: str, target: Reading, other: Reading, lang: Language, sentence: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind,
        "text": f"{target.char}{SEPARATOR}{other.char}",
        "pinyin": f"{target.marks} {other.marks}",
        "target_char": target.char,
        "contrast_char": other.char,
        "why": _why(kind, target, other, lang),
        "from_sentence_id": sentence["sentence_id"],
        "from_sentence_text": sentence["sentence_text"],
    }


def target_readings(sentence_text: str, still_deviating: list[str]) -> list[Reading]:
    """The still-deviating characters of a sentence with the reading they have in it."""
    out: list[Reading] = []
    wanted = set(still_deviating)
    for c in syllables(sentence_text):
        if c.judged and c.char in wanted and c.base_tone in (1, 2, 3, 4):
            initial, final = split_pinyin(c.pinyin)
            reading = Reading(c.char, c.pinyin, c.base_tone, initial, final)
            if reading not in out:
                out.append(reading)
    return out


def pairs_for(target: Reading) -> dict[str, list[Reading]]:
    idx = index()
    tones = [r for r in idx.by_syllable.get(target.syllable, []) if r.tone != target.tone and r.char != target.char]
    by_tone: dict[int, Reading] = {}
    for r in tones:
        by_tone.setdefault(r.tone, r)  # one character per other tone, the first listed
    near = CONFUSABLE.get(target.initial, ())
    initials = [
        r
        for r in idx.by_final_tone.get((target.final, target.tone), [])
        if r.initial != target.initial and r.char != target.char
    ]
    initials.sort(key=lambda r: near.index(r.initial) if r.initial in near else len(near))
    one_each: dict[str, Reading] = {}
    for r in initials:
        one_each.setdefault(r.initial, r)
    return {
        "tone_contrast": sorted(by_tone.values(), key=lambda r: r.tone),
        "initial_contrast": list(one_each.values()),
    }


def drills(sentences: list[dict[str, Any]], lang: Language) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(characters, items) for progress' sentences (those practised last first)."""
    characters: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    done: set[str] = set()
    for sentence in sentences:
        for target in target_readings(sentence["sentence_text"], sentence["still_deviating"]):
            if target.char in done:
                continue
            done.add(target.char)
            characters.append({
                "char": target.char, "pinyin": target.marks, "sentence_id": sentence["sentence_id"],
                "sentence_text": sentence["sentence_text"],
            })  # fmt: skip
            found = pairs_for(target)
            for kind, limit in PER_CHARACTER.items():
                items += [_item(kind, target, other, lang, sentence) for other in found[kind][:limit]]
    # Interleave so every character gets a turn before any gets its second item.
    order = sorted(range(len(items)), key=lambda i: (sum(1 for j in range(i) if items[j]["target_char"] ==
                   items[i]["target_char"]), i))  # fmt: skip
    return characters, [items[i] for i in order][:MAX_ITEMS]


def suggested_texts(items: list[dict[str, Any]]) -> set[str]:
    return {item["text"] for item in items}
