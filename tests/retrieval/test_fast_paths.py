"""The latency work changed how results are computed, never what they are: each fast path here is
checked against the plain computation it replaced."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pytest

from newsqa.index.models import Passage
from newsqa.index.text import _lower, _place_tone, canonical, fold, nfc, syllables, with_bigrams
from newsqa.retrieval import answer, search
from newsqa.retrieval.search import top_k_positive

TRICKY = [
    "ΟΔΟΣ Σ ΑΣ Β",  # final sigma: str.lower() of the whole string differs from per character
    "İstanbul İ",  # lower-cases to two characters
    "Ðà Nẵng ðó",  # eth for Đ
    "a\u200bb\u00adc\ufeffd\u2060e",  # invisible characters
    "ctrl\x01\x7f\x9fchars\ttab\nline",
    "hoà thuý quý giá Hoà Bình",  # old and new tone placement
    "Nga yêu cầu NATO chấm dứt mở rộng về phía đông",
    "e\u0301 a\u0300 combining marks, ǅ ǆ ß ẞ ﬁ",
    "x_y 123 under_score ASCII only words",
    "",
]


def _reference_nfc(text: str) -> str:
    invisible = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
    import re

    text = unicodedata.normalize("NFC", text).translate(invisible)
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", " ", text)
    return unicodedata.normalize("NFC", text)


def _reference_canonical(text: str) -> str:
    import re

    lowered = "".join(map(_lower, text)).translate(str.maketrans({"Ð": "đ", "ð": "đ"}))
    return re.sub(r"\w+", lambda m: _place_tone(m.group(0)), lowered)


def _reference_fold(text: str) -> str:
    def one(ch: str) -> str:
        if ch in "đĐðÐ":
            return "d"
        return _lower(unicodedata.normalize("NFD", ch)[0])

    return "".join(one(ch) if ord(ch) > 127 else ch.lower() for ch in text)


def _random_texts(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    alphabet = "aăâbcdđeêghiklmnoôơpqrstuưvxyÀÁẢÃẠàáảãạĐđÐðΣσςİI \u0300\u0301\u0303\u0309\u0323\u200b\x01_.,1"
    out = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))) for _ in range(n)]
    out += ["".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 12))) for _ in range(n)]
    return [t for t in out if not any(0xD800 <= ord(c) <= 0xDFFF for c in t)]


def test_normalisation_equals_the_per_character_definitions():
    for text in TRICKY + _random_texts(2000):
        assert nfc(text) == _reference_nfc(text), text
        assert canonical(text) == _reference_canonical(text), text
        assert fold(text) == _reference_fold(text), text
        key = nfc(text)
        assert canonical(key) == _reference_canonical(key), text
        assert fold(canonical(key)) == _reference_fold(_reference_canonical(key)), text


def _plain_tokens(text: str, field: str) -> set[str]:
    key = canonical(nfc(text))
    return set(with_bigrams(syllables(fold(key) if field == answer.FOLDED else key)))


@pytest.mark.parametrize("title", ["", "Nga yêu cầu NATO", "ΟΔΟΣ Σ", "123 --", "İstanbul ðó"])
@pytest.mark.parametrize("text", ["", "chấm dứt mở rộng về phía đông.", "\u0301 bắt đầu bằng dấu", "ASCII Words 42"])
def test_passage_tokens_and_names_equal_those_of_the_embedding_text(title, text):
    passage = Passage("p", "a", title, 1, 0, len(text), text)
    whole = passage.embedding_text()
    for field in (answer.FOLDED, answer.ACCENTED):
        assert answer._passage_tokens(passage, field) == _plain_tokens(whole, field)
    assert answer._passage_names(passage) == answer._name_tokens(whole)


def _stable_top(values: np.ndarray, k: int) -> np.ndarray:
    positive = np.flatnonzero(values > 0)
    if len(positive) > k:
        positive = positive[np.argsort(-values[positive], kind="stable")[:k]]
    return np.sort(positive)


def test_top_k_positive_is_the_stable_sort_s_first_k():
    rng = np.random.default_rng(0)
    for trial in range(3000):
        n, k = int(rng.integers(0, 200)), int(rng.integers(0, 120))
        if trial % 2:
            values = rng.integers(-2, 5, n).astype(np.float64)  # many ties, zeros and negatives
        else:
            values = np.where(rng.random(n) < 0.3, 0.0, rng.random(n))
        assert np.array_equal(top_k_positive(values, k), _stable_top(values, k)), (values, k)


def test_top_k_positive_on_corpus_sized_arrays_equals_the_stable_sort():
    """Large enough for the sampled threshold, and shaped to defeat it: sorted runs, a few large
    values the sample misses, long ties at the k-th value, mostly zeros."""
    rng = np.random.default_rng(1)
    n = 20_000
    shapes = {
        "uniform": lambda: rng.random(n),
        "ties": lambda: rng.integers(0, 6, n).astype(np.float64),
        "increasing": lambda: np.sort(rng.random(n)),
        "decreasing": lambda: np.sort(rng.random(n))[::-1].copy(),
        "spikes off the sample": lambda: np.where(np.arange(n) % search.SAMPLE_STEP == 3, 5.0, 0.5),
        "the sample holds the largest": lambda: np.where(np.arange(n) % search.SAMPLE_STEP == 0, 10 + rng.random(n), rng.random(n)),
        "mostly zero": lambda: np.where(rng.random(n) < 0.995, 0.0, rng.random(n)),
        "all zero": lambda: np.zeros(n),
        "one value": lambda: np.full(n, 2.5),
    }
    for name, make in shapes.items():
        for k in (1, 7, 100, 150):
            values = make()
            assert np.array_equal(top_k_positive(values, k), _stable_top(values, k)), (name, k)


def test_bm25_sums_are_bm25s_get_scores_to_the_bit(seed_service, monkeypatch):
    """The GIL-free posting sum (scipy's CSC kernel) and its np.add.at fallback both give exactly
    what bm25s' own get_scores gives, token order and repeated tokens included."""
    from newsqa.index import lexical

    index = seed_service._current().index.lexical
    rng = random.Random(11)
    for name in lexical.FIELDS:
        field = index._fields[name]
        columns = len(field.retriever.scores["indptr"]) - 1  # bm25s' vocabulary also holds "" past them
        vocab = [t for t, i in field.vocab.items() if i < columns]
        queries = [[rng.choice(vocab) for _ in range(rng.randint(1, 30))] for _ in range(60)]
        queries += [[vocab[0]] * 3, vocab[:200]]
        for tokens in queries:
            expected = np.asarray(field.retriever.get_scores(tokens), dtype=np.float32)
            ids = [field.vocab[t] for t in tokens]
            got = lexical._postings_sum(field.retriever.scores, ids, index.size)
            np.testing.assert_array_equal(got, expected)
    monkeypatch.setattr(lexical, "_csc_matvec", lambda: None)
    field = index._fields[lexical.ACCENTED]
    tokens = [t for t, i in field.vocab.items() if i < 50] * 2
    np.testing.assert_array_equal(
        lexical._postings_sum(field.retriever.scores, [field.vocab[t] for t in tokens], index.size),
        np.asarray(field.retriever.get_scores(tokens), dtype=np.float32),
    )


def test_answers_are_the_same_with_passages_prepared_while_the_question_embeds(seed_service, mixed_questions):
    snap = seed_service._current()
    searcher, index, config = snap.searcher, snap.index, seed_service.config.answer
    for question in mixed_questions:
        pending = searcher.begin(question, 5)
        leaders = pending.leaders(8)
        hits = pending.finish()
        answer._sentences.cache_clear()
        answer._tokens.cache_clear()
        answer._name_tokens.cache_clear()
        plain = answer.compose(question, pending.analysis, hits, index, config)
        answer._sentences.cache_clear()
        answer._tokens.cache_clear()
        answer._name_tokens.cache_clear()
        prepared = answer.prepare(pending.analysis, leaders, index)
        assert sorted(prepared) == sorted(leaders)
        assert all(prepared[row] == index.passages[row] for row in leaders)
        assert answer.compose(question, pending.analysis, hits, index, config, prepared) == plain
    assert any(answer.compose(q, *_analysed(searcher, q), index, config).found for q in mixed_questions)


def _analysed(searcher, question):
    pending = searcher.begin(question, 5)
    return pending.analysis, pending.finish()


def test_preparing_stops_when_told_and_leaders_are_the_best_lexical_rows_first(seed_service):
    snap = seed_service._current()
    pending = snap.searcher.begin("Nga yêu cầu NATO những gì?", 5)
    leaders = pending.leaders(4)
    scores = [pending.lexical[r] for r in leaders]
    assert len(leaders) == 4 and scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert set(leaders) <= set(pending.lex_rows.tolist())
    assert answer.prepare(pending.analysis, leaders, snap.index, keep_going=lambda: False) == {}
    calls = iter([True, True, False])
    assert len(answer.prepare(pending.analysis, leaders, snap.index, keep_going=lambda: next(calls))) == 2
    pending.finish()
