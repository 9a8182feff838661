"""Property-based tests of the build's text pipeline: any text in, consistent passages out."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsqa.index.clean import clean_article
from newsqa.index.split import split_passages, split_sentences
from newsqa.index.text import canonical, fold, nfc, tokens_accented, tokens_folded
from newsqa.retrieval.query import analyse_query

VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵĐÂÊÔƠƯ"
SPECIAL = ".!?…“”\"'()[]|/+-:;, \n\n\t\u200b\u200d\ufeff\u00ad\u0301\u0323\x00\x07\x1b🙂👍🏽مرحبا"
text_strategy = st.text(alphabet=st.sampled_from(list(VIETNAMESE + SPECIAL)) | st.characters(), max_size=600)
fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(text_strategy)
def test_passages_are_the_article_text_at_their_offsets(raw):
    article = clean_article("a", raw)
    passages = split_passages(article, max_words=20, min_words=5)
    for p in passages:
        assert article.text[p.start : p.end] == p.text
        assert p.text.strip() == p.text and p.text
    # Nothing of the body is dropped or duplicated: passages tile the body's non-space text in order.
    assert "".join("".join(p.text.split()) for p in passages) == "".join(article.text.split())


@fast
@given(text_strategy)
def test_sentences_tile_the_text(raw):
    text = nfc(raw)
    spans = split_sentences(text)
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))
    assert "".join("".join(text[s.start : s.end].split()) for s in spans) == "".join(text.split())


@fast
@given(text_strategy)
def test_cleaned_text_is_nfc_without_invisible_characters(raw):
    article = clean_article("a", raw)
    assert unicodedata.is_normalized("NFC", article.text)
    assert not any(ch in article.text for ch in "\u200b\ufeff\x00\x07")
    for start, end in article.paragraph_spans:
        assert article.text[start:end].strip()


@fast
@given(text_strategy)
def test_search_keys_keep_offsets(raw):
    text = nfc(raw)
    assert len(canonical(text)) == len(text)
    assert len(fold(canonical(text))) == len(text)
    tokens_accented(raw), tokens_folded(raw), analyse_query(raw)


def test_a_megabyte_of_text_is_handled():
    raw = "".join(
        f"Đoạn {i}: " + f"Nga yêu cầu NATO chấm dứt mở rộng về phía đông lần thứ {i}. " * 20 + "\n\n"
        for i in range(1000)
    )
    assert len(raw) > 1_000_000
    article = clean_article("big", raw)
    passages = split_passages(article)
    assert len(article.paragraph_spans) == 1000
    assert len(passages) >= 1000 and all(article.text[p.start : p.end] == p.text for p in passages)
