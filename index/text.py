"""Vietnamese-aware text normalisation, shared by index build and query time.

A mismatch between how passages and questions are normalised is the classic silent bug of
Vietnamese search, so both sides call the functions here and nothing else.

Every function that maps one string to a "search key" (`canonical`, `fold`, `search_key`) is
length-preserving on NFC input: character i of the output comes from character i of the input.
That keeps character offsets in the cleaned article text valid for every derived form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# Combining marks as they appear after NFD.
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền, sắc, ngã, hỏi, nặng
_QUALITY_MARKS = frozenset("\u0302\u0306\u031b")  # circumflex (â ê ô), breve (ă), horn (ơ ư)
_VOWELS = frozenset("aeiouy")

# Characters that carry no text and break tokens if left in: zero-width space/joiners, BOM, soft hyphen.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# Control characters other than newline and tab become spaces (keeps length for offsets).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_WORD_RE = re.compile(r"\w+")


# The same characters as `_INVISIBLE`, as one regex: str.translate with a dict costs a Python
# lookup per character (0.3 ms on a 1,700-character passage), a regex sub with no match nothing.
_INVISIBLE_RE = re.compile("[" + "".join(map(chr, _INVISIBLE)) + "]")


def nfc(text: str) -> str:
    """NFC with invisible characters removed and control characters turned into spaces."""
    normal = unicodedata.normalize("NFC", text)
    text = _CONTROL_RE.sub(" ", _INVISIBLE_RE.sub("", normal))
    # NFC of NFC text is itself: the second pass matters only when a character went away.
    return normal if text == normal else unicodedata.normalize("NFC", text)


@lru_cache(maxsize=1 << 16)  # a few thousand syllables make up Vietnamese: the cache halves build time
def _place_tone(word: str) -> str:
    """Move the tone mark of one Vietnamese syllable to a single canonical vowel.

    Old ("hoà", "thuý") and new ("hòa", "thúy") spellings both exist in real text; we put the
    tone where the traditional rule does, so both spellings produce the same key:
    a vowel with a quality mark (ê, ơ, ...) takes it; otherwise, in an open syllable of two vowels
    the first, of three the middle, and in a closed syllable the last vowel.
    """
    decomposed = unicodedata.normalize("NFD", word)
    letters: list[list[str]] = []  # each: [base, *marks]
    for ch in decomposed:
        if unicodedata.combining(ch) and letters:
            letters[-1].append(ch)
        else:
            letters.append([ch])
    tones = [m for letter in letters for m in letter[1:] if m in _TONE_MARKS]
    if len(tones) != 1:
        return word
    tone = tones[0]
    for letter in letters:
        if tone in letter:
            letter.remove(tone)

    vowel_idx = [i for i, letter in enumerate(letters) if letter[0].lower() in _VOWELS]
    if not vowel_idx:
        return word
    # Onsets "qu" and "gi" (before another vowel) use u/i as consonants.
    first = vowel_idx[0]
    if len(vowel_idx) > 1 and first > 0:
        onset = letters[first - 1][0].lower() + letters[first][0].lower()
        if onset in ("qu", "gi") and len(letters[first]) == 1:
            vowel_idx = vowel_idx[1:]
    # Only the contiguous vowel run counts as the nucleus.
    run = [vowel_idx[0]]
    for i in vowel_idx[1:]:
        if i == run[-1] + 1:
            run.append(i)
        else:
            break
    marked = [i for i in run if any(m in _QUALITY_MARKS for m in letters[i][1:])]
    closed = run[-1] < len(letters) - 1
    if marked:
        target = marked[-1]
    elif len(run) == 1:
        target = run[0]
    elif closed:
        target = run[-1]
    elif len(run) == 2:
        target = run[0]
    else:
        target = run[1]
    letters[target].append(tone)
    rebuilt = unicodedata.normalize("NFC", "".join("".join(letter) for letter in letters))
    # Safety net: never change the length (offsets depend on it).
    return rebuilt if len(rebuilt) == len(word) else word


# Old fonts and keyboards type the Icelandic eth (Ð U+00D0) for Vietnamese Đ (U+0110); they look
# the same, so they must match.
_ETH = str.maketrans({"Ð": "đ", "ð": "đ"})


def _lower(ch: str) -> str:
    # A few letters lower-case to two characters ("İ"); keep those as they are so offsets hold.
    low = ch.lower()
    return low if len(low) == 1 else ch


# str.lower() of a whole string equals lower-casing it character by character with `_lower`,
# except for the two characters it treats specially: İ (lower-cases to two characters, which
# `_lower` refuses) and Σ (final sigma depends on the next character). Text without them takes the
# one C call; the answer composer lower-cases every top passage for every question.
_LOWER_SPECIAL = re.compile("[\u0130\u03a3]")
# Words that hold a letter outside ASCII: only those can carry a tone mark to move. An ASCII word
# is its own canonical form, so matching the same whole \w+ runs but skipping ASCII ones changes
# nothing and spares a call per word.
_ACCENTED_WORD_RE = re.compile(r"\b\w*[^\W\x00-\x7f]\w*")


def _lower_text(text: str) -> str:
    if _LOWER_SPECIAL.search(text) is None:
        return text.lower()
    return "".join(map(_lower, text))


def _retone(match: re.Match[str]) -> str:
    return _place_tone(match.group(0))


# Words `_place_tone` leaves as they are: nearly every word of real text (new-style spelling is the
# norm), so a text whose words are all here needs no substitution at all. Cleared when it grows
# past a bound (a server reads text without end; Vietnamese has a few thousand syllables).
_SETTLED: set[str] = set()
_SETTLED_MAX = 200_000


def _settled(words: list[str]) -> bool:
    for word in words:
        if word not in _SETTLED:
            if _place_tone(word) != word:
                return False
            if len(_SETTLED) >= _SETTLED_MAX:
                _SETTLED.clear()
            _SETTLED.add(word)
    return True


def canonical(text: str) -> str:
    """Lower-cased NFC text with one tone placement; same length as the NFC input."""
    lowered = _lower_text(text)
    if "ð" in lowered or "Ð" in lowered:
        lowered = lowered.translate(_ETH)
    if _settled(_ACCENTED_WORD_RE.findall(lowered)):
        return lowered
    return _ACCENTED_WORD_RE.sub(_retone, lowered)


def _fold_char(ch: str) -> str:
    if ch in "đĐðÐ":
        return "d"
    return _lower(unicodedata.normalize("NFD", ch)[0])


class _FoldTable(dict):
    """str.translate table of `fold`, filled on first sight of each character."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        folded = _fold_char(ch) if code > 127 else ch.lower()
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """Diacritics removed and đ→d, lower-cased; same length as the NFC input."""
    return text.translate(_FOLD)


def strip_diacritics(text: str) -> str:
    """Text as typed on a keyboard without Vietnamese input: marks removed, đ→d, case kept."""
    return "".join(_strip_char(ch) for ch in nfc(text))


def _strip_char(ch: str) -> str:
    if ord(ch) < 128:
        return ch
    if ch in "đĐðÐ":
        return "D" if ch in "ĐÐ" else "d"
    return unicodedata.normalize("NFD", ch)[0]


def has_diacritics(text: str) -> bool:
    """True when any letter carries a mark or is đ: the person typed with a Vietnamese keyboard."""
    return any(ord(ch) > 127 and ch.isalpha() and _fold_char(ch) != _lower(ch) for ch in text)


def syllables(key: str) -> list[str]:
    """Tokens of an already canonical or folded string: syllables, one-letter ones kept."""
    return _WORD_RE.findall(key)


def with_bigrams(tokens: list[str]) -> list[str]:
    """Syllables plus adjacent-syllable bigrams: Vietnamese words are often two syllables."""
    return tokens + [f"{a}_{b}" for a, b in zip(tokens, tokens[1:])]


def tokens_accented(text: str) -> list[str]:
    return with_bigrams(syllables(canonical(nfc(text))))


def tokens_folded(text: str) -> list[str]:
    return with_bigrams(syllables(fold(canonical(nfc(text)))))


def tokens_both(text: str) -> tuple[list[str], list[str]]:
    """(tokens_accented(text), tokens_folded(text)), normalising the text once for both."""
    key = canonical(nfc(text))
    return with_bigrams(syllables(key)), with_bigrams(syllables(fold(key)))


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)
