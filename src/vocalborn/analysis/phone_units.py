"""Broad phone units of Mandarin syllables, and CTC forced alignment of a recording to them.

Step 2 of :mod:`vocalborn.analysis.characters`: each pinyin syllable becomes 1-4 broad
phone units (an initial, a glide, a vowel, a nasal coda), each unit a set of the phone
recogniser's IPA phones (the model has no Mandarin phone set, so the sets are deliberately
broad; the alignment mostly needs the order). :func:`force_align_scored` finds each
syllable's frames by CTC Viterbi and how well the recording says its expected phones.
"""

from __future__ import annotations

import numpy as np

from vocalborn.analysis import phonetic, sentence

# --- broad phone units --------------------------------------------------------------------
_UNIT_TOKENS: dict[str, tuple[str, ...]] = {
    # initials
    "b": ("b", "p", "p͈", "β"),
    "p": ("pʰ", "p"),
    "m": ("m", "ɱ"),
    "f": ("f", "ɸ", "v"),
    "d": ("d", "t", "t͈", "ɾ"),
    "t": ("tʰ", "t"),
    "n": ("n", "ɲ", "ñ"),
    "l": ("l", "ɫ", "ɾ", "r", "ɹ"),
    "g": ("g", "ɡ", "k", "k͈"),
    "k": ("kʰ", "k", "x"),
    "h": ("h", "x", "χ", "ɦ", "ħ"),
    "j": ("t͡ɕ", "d͡ʒ", "t͡ʃ", "t͡ɕ͈", "ʑ", "ɟ"),
    "q": ("t͡ɕʰ", "t͡ʃ", "t͡ɕ"),
    "x": ("ɕ", "ʃ", "s", "ç"),
    "zh": ("d͡ʒ", "t͡ʃ", "ʈ", "ʐ", "ʒ", "ɖ"),
    "ch": ("t͡ʃ", "t͡ɕʰ", "ʈ"),
    "sh": ("ʃ", "ʂ", "s", "ɕ"),
    "r": ("ɹ", "ʐ", "ɻ", "ʒ", "r", "ɾ", "ɚ", "ɝ", "l"),
    "z": ("z", "d͡ʒ", "t͡ɕ", "s", "d", "t͡ɕ͈"),
    "c": ("t͡ɕʰ", "tʰ", "s", "t͡ʃ"),
    "s": ("s", "s͈", "ʃ", "z"),
    # vowels, glides, codas
    "A": ("a", "ɑ", "æ", "ä", "ɐ", "ʌ", "à", "ã", "å", "ɒ"),
    "O": ("o", "ɔ", "oʊ", "ʊ", "õ", "ɒ"),
    "E": ("ə", "ɤ", "ʌ", "ɜ", "ɘ", "ɛ", "ɚ", "ɝ", "ᵊ"),
    "Ê": ("ɛ", "e", "eə", "je", "eɪ"),
    "I": ("i", "ɪ", "j", "ì", "ĩ", "ǐ", "ɨ", "ɯi"),
    "Ɨ": ("ɨ", "ɹ", "ɻ", "ɝ", "ɚ", "ə", "ɯ", "z", "ʐ", "i", "ɪ", "ʉ"),
    "U": ("u", "ʊ", "w", "ɯ", "ũ", "ʉ", "o"),
    "Y": ("y", "ʏ", "ɥ", "i", "u", "ju", "ʉ", "ø"),
    "AI": ("aɪ", "a", "ɑ", "ɛ", "e", "æ"),
    "EI": ("eɪ", "e", "ɛ", "ẽ"),
    "AO": ("aʊ", "ɑ", "a", "ɔ", "oʊ", "ʌ"),
    "OU": ("oʊ", "o", "ɔ", "ʊ", "ɤ"),
    "ER": ("ɚ", "ɝ", "ɹ", "ə", "ɜ"),
    "N": ("n", "ɲ", "ŋ", "ñ"),
    "NG": ("ŋ", "n", "ɴ"),
    "J": ("j", "i", "ja", "je", "jo", "ju", "jʌ", "ɪ"),
    "W": ("w", "u", "wa", "we", "wi", "wʌ", "ʊ"),
    "Ɥ": ("ɥ", "y", "j", "w", "ju"),
}
_FINALS: dict[str, tuple[str, ...]] = {
    "a": ("A",), "o": ("O",), "e": ("E",), "ê": ("Ê",), "ai": ("AI",), "ei": ("EI",), "ao": ("AO",),
    "ou": ("OU",), "an": ("A", "N"), "en": ("E", "N"), "ang": ("A", "NG"), "eng": ("E", "NG"),
    "ong": ("U", "NG"), "er": ("ER",), "i": ("I",), "ia": ("J", "A"), "ie": ("J", "Ê"),
    "iao": ("J", "AO"), "iou": ("J", "OU"), "ian": ("J", "A", "N"), "in": ("I", "N"),
    "iang": ("J", "A", "NG"), "ing": ("I", "NG"), "iong": ("J", "U", "NG"), "u": ("U",),
    "ua": ("W", "A"), "uo": ("W", "O"), "uai": ("W", "AI"), "uei": ("W", "EI"), "uan": ("W", "A", "N"),
    "uen": ("W", "E", "N"), "uang": ("W", "A", "NG"), "ueng": ("W", "E", "NG"), "ü": ("Y",),
    "üe": ("Ɥ", "Ê"), "üan": ("Ɥ", "A", "N"), "ün": ("Y", "N"), "m": ("m",), "n": ("n",), "ng": ("NG",),
}  # fmt: skip
_APICAL = {"zh", "ch", "sh", "r", "z", "c", "s"}


def units(syl: sentence.CharSyllable) -> list[str]:
    """Broad phone units of one syllable (see the module docstring)."""
    ini, fin = sentence.split_pinyin(syl.pinyin)
    if ini in ("j", "q", "x") and fin.startswith("u"):
        fin = "ü" + fin[1:]
    fin = {"iu": "iou", "ui": "uei", "un": "uen"}.get(fin, fin)
    if fin == "i" and ini in _APICAL:
        vowel: tuple[str, ...] = ("Ɨ",)
    else:
        vowel = _FINALS.get(fin) or tuple(u for u in (_letter_unit(c) for c in fin) if u)
    out = ([ini] if ini else []) + list(vowel)
    return out or ["E"]


def _letter_unit(c: str) -> str | None:
    return {"a": "A", "o": "O", "e": "E", "i": "I", "u": "U", "ü": "Y", "n": "N", "g": None}.get(c)


def _unit_ids(tokens: list[str]) -> dict[str, np.ndarray]:
    index = {t: i for i, t in enumerate(tokens)}
    return {
        name: np.array(sorted({index[t] for t in toks if t in index}), dtype=np.int64)
        for name, toks in _UNIT_TOKENS.items()
    }


_UNIT_ID_CACHE: dict[int, dict[str, np.ndarray]] = {}


def _ids() -> dict[str, np.ndarray]:
    model = phonetic.load_model()
    key = id(model)
    if key not in _UNIT_ID_CACHE:
        _UNIT_ID_CACHE[key] = _unit_ids(list(model.decoder_tokens))
    return _UNIT_ID_CACHE[key]


# --- forced alignment -------------------------------------------------------------------------
def force_align_scored(
    ph: phonetic.PhoneticFeatures, seq: list[list[str]]
) -> tuple[list[tuple[int, int]], np.ndarray] | None:
    """Posterior-frame span [start, end) of each syllable of ``seq`` (lists of units) by CTC
    Viterbi (None when the recording has fewer frames than units) and, per syllable, the mean log posterior of its units over
    the frames the alignment gives them (how well the recording says the expected
    phones; higher is better)."""
    ids = _ids()
    flat: list[str] = []
    owner: list[int] = []
    for k, us in enumerate(seq):
        for u in us:
            flat.append(u)
            owner.append(k)
    n_units = len(flat)
    logp = ph.logp
    n_frames = logp.shape[0]
    if n_units == 0 or n_units + 1 > n_frames:
        return None
    p = np.exp(logp)
    emit_units = np.empty((n_frames, n_units))
    for j, u in enumerate(flat):
        sel = ids.get(u)
        mass = p[:, sel].sum(axis=1) if sel is not None and sel.size else np.zeros(n_frames)
        emit_units[:, j] = np.log(np.maximum(mass, 1e-6))
    n_states = 2 * n_units + 1
    emit = np.empty((n_frames, n_states))
    emit[:, 0::2] = logp[:, ph.blank_id][:, None]
    emit[:, 1::2] = emit_units
    skip = np.zeros(n_states, dtype=bool)  # s-2 -> s allowed (unit to a different unit)
    for j in range(1, n_units):
        skip[2 * j + 1] = flat[j] != flat[j - 1]
    neg = -1e18
    score = np.full(n_states, neg)
    score[0] = emit[0, 0]
    score[1] = emit[0, 1]
    back = np.zeros((n_frames, n_states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, n_frames):
        stay = score
        one = np.concatenate([[neg], score[:-1]])
        two = np.where(skip, np.concatenate([[neg, neg], score[:-2]]), neg)
        cand = np.stack([stay, one, two])
        choice = np.argmax(cand, axis=0)
        score = cand[choice, np.arange(n_states)] + emit[t]
        back[t] = choice
    s = n_states - 1 if score[n_states - 1] >= score[n_states - 2] else n_states - 2
    states = np.empty(n_frames, dtype=np.int64)
    for t in range(n_frames - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    first = np.full(len(seq), -1)
    last = np.full(len(seq), -1)
    total = np.zeros(len(seq))
    count = np.zeros(len(seq))
    for t, st in enumerate(states.tolist()):
        if st % 2 == 1:
            k = owner[st // 2]
            if first[k] < 0:
                first[k] = t
            last[k] = t
            total[k] += emit[t, st]
            count[k] += 1
    spans: list[tuple[int, int]] = []
    for k in range(len(seq)):
        a = max(0, int(first[k]) - 1)
        b = int(first[k + 1]) - 1 if k + 1 < len(seq) else min(n_frames, int(last[k]) + 3)
        spans.append((a, max(b, a + 1)))
    return spans, total / np.maximum(count, 1)
