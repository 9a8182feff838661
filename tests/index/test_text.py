"""Vietnamese normalisation: one key per word however it was typed, with offsets kept."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsqa.index.text import (
    canonical,
    fold,
    has_diacritics,
    jaccard,
    nfc,
    strip_diacritics,
    syllables,
    tokens_accented,
    tokens_folded,
    with_bigrams,
)

VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
    "ĐÂÊÔƠƯÀÁẢÃẠÈÉÌÍÒÓÙÚÝ"
)
TONES = "\u0300\u0301\u0303\u0309\u0323"
# Vietnamese letters, stray combining tone marks (old keyboards type them after the vowel),
# punctuation, invisible characters and anything else Unicode has.
text_strategy = st.text(
    alphabet=st.sampled_from(list(VIETNAMESE + TONES + " .,?!-'\n\t\u200b\ufeffİẞǅ")) | st.characters(),
    max_size=200,
)
nfc_text = text_strategy.map(nfc)
vietnamese_text = st.text(alphabet=st.sampled_from(list(VIETNAMESE + " .,?")), max_size=120)
props = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- tone placement: old and new spellings meet ------------------------------------------------

@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("hoà", "hòa"),
        ("thuý", "thúy"),
        ("khoẻ", "khỏe"),
        ("hoá", "hóa"),
        ("tuỳ", "tùy"),
        ("loà", "lòa"),
        ("oà", "òa"),
        ("quỹ", "qũy"),  # "qu" is an onset: the tone belongs on y however it was typed
        ("già", "gìa"),  # likewise "gi"
        ("hoàn", "hòan"),  # closed syllable: the last vowel of the nucleus
        ("huỳnh", "hùynh"),
        ("khuỷu", "khủyu"),
        ("ngoài", "ngòai"),
        ("người", "ngừơi"),  # a vowel with a quality mark takes the tone
        ("thuyền", "thùyên"),
        ("Hoà Bình", "HÒA BÌNH"),
    ],
)
def test_old_and_new_tone_placement_give_one_key(old, new):
    assert canonical(nfc(old)) == canonical(nfc(new))
    assert tokens_accented(old) == tokens_accented(new)


@pytest.mark.parametrize("word", ["gì", "quý", "giường", "của", "mùa", "cứu", "gửi", "quả", "khuya", "ý", "xoáy"])
def test_correct_spellings_are_left_as_they_are(word):
    assert canonical(word) == word


def test_decomposed_input_matches_precomposed():
    decomposed = unicodedata.normalize("NFD", "Thủ tướng Anh muốn đảm bảo")
    assert tokens_accented(decomposed) == tokens_accented("Thủ tướng Anh muốn đảm bảo")


def test_tone_mark_typed_on_the_wrong_vowel_in_decomposed_form():
    # "ho" + "a" + combining grave, and "ho" + combining grave + "a": both are "hòa".
    assert canonical(nfc("hoa\u0300")) == canonical(nfc("ho\u0300a")) == "hòa"


def test_accented_key_keeps_tones_apart():
    # bảo (protect) and bão (storm) must not meet in the accented field.
    assert canonical("bảo") != canonical("bão")
    assert fold("bảo") == fold("bão") == "bao"


# -- folding -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Đà Nẵng", "da nang"),
        ("ĐẢM BẢO", "dam bao"),
        ("Nguyễn Thị Thuý", "nguyen thi thuy"),
        ("Ðường", "duong"),  # U+00D0 (Icelandic eth) is typed for Đ in some old text
        ("NATO, Putin", "nato, putin"),
        ("ưu tiên", "uu tien"),
    ],
)
def test_fold(text, folded):
    assert fold(canonical(nfc(text))) == folded


def test_unaccented_question_matches_accented_text():
    assert set(tokens_folded("nga yeu cau nato")) <= set(tokens_folded("Nga yêu cầu NATO chấm dứt mở rộng"))


def test_has_diacritics():
    assert has_diacritics("Nga yêu cầu")
    assert has_diacritics("Đa")  # đ alone counts: it is not on an English keyboard
    assert not has_diacritics("nga yeu cau nato gi")
    assert not has_diacritics("What did Russia demand?")
    assert has_diacritics("café")  # any mark counts, not only Vietnamese ones


def test_strip_diacritics_keeps_case_and_length():
    assert strip_diacritics("Thủ đô của Úc là gì?") == "Thu do cua Uc la gi?"
    assert strip_diacritics("Đường") == "Duong"


# -- tokens ----------------------------------------------------------------------------------------

def test_tokens_are_syllables_and_bigrams_with_one_letter_syllables_kept():
    assert tokens_accented("Ở Hà Nội") == ["ở", "hà", "nội", "ở_hà", "hà_nội"]
    assert tokens_folded("Ở Hà Nội") == ["o", "ha", "noi", "o_ha", "ha_noi"]
    assert with_bigrams(["a"]) == ["a"]
    assert syllables("") == []


def test_invisible_characters_do_not_split_words():
    assert tokens_accented("Hà\u200bNội") == tokens_accented("HàNội")
    assert tokens_accented("\ufeffNga") == ["nga"]


def test_jaccard():
    assert jaccard([], []) == 1.0
    assert jaccard(["a", "b"], ["b", "c"]) == pytest.approx(1 / 3)


# -- properties ----------------------------------------------------------------------------------

@props
@given(nfc_text)
def test_keys_are_length_preserving(text):
    # Offsets in the cleaned article are valid in every derived key.
    assert len(canonical(text)) == len(text)
    assert len(fold(text)) == len(text)
    assert len(fold(canonical(text))) == len(text)
    assert len(strip_diacritics(text)) == len(text)


@props
@given(nfc_text)
def test_keys_are_idempotent(text):
    key = canonical(text)
    assert canonical(key) == key
    folded = fold(text)
    assert fold(folded) == folded
    assert nfc(nfc(text)) == nfc(text)


@props
@given(nfc_text)
def test_folding_ignores_tone_placement(text):
    assert fold(canonical(text)) == fold(text)


@props
@given(vietnamese_text)
def test_keys_ignore_case(text):
    # (Outside Vietnamese letters Unicode case mapping has oddities such as µ → Μ → μ.)
    assert canonical(text.upper()) == canonical(text.lower()) == canonical(text)
    assert fold(text.upper()) == fold(text)


@props
@given(nfc_text)
def test_folded_text_has_no_diacritics(text):
    assert not has_diacritics(fold(text))
    assert not has_diacritics(strip_diacritics(text))
    assert fold(strip_diacritics(text)) == fold(text)


@props
@given(st.lists(st.sampled_from(["hoà", "hòa", "thuý", "thúy", "quỹ", "khoẻ", "khỏe", "Nga", "yêu", "cầu"]), max_size=12))
def test_any_mix_of_spellings_tokenises_the_same(words):
    text = " ".join(words)
    new_style = {"hoà": "hòa", "thuý": "thúy", "khoẻ": "khỏe"}
    assert tokens_accented(text) == tokens_accented(" ".join(new_style.get(w, w) for w in words))
