"""Passage boundaries and offsets: a citation's text is exactly the article's text at its offsets."""

from __future__ import annotations

from newsqa.index.articles import read_articles
from newsqa.index.clean import clean_article
from newsqa.index.split import split_passages, split_sentences
from tests.conftest import SEEDS


def test_every_passage_is_the_article_text_at_its_offsets_and_nothing_is_lost():
    for article in read_articles(SEEDS).articles:
        passages = split_passages(article)
        assert passages
        for p in passages:
            assert article.text[p.start : p.end] == p.text
            assert p.title == article.title and p.article_id == article.article_id
        # Concatenating passages and the gaps between them gives back the body, in order.
        covered = "".join(p.text for p in passages)
        assert "".join(article.text.split()) == "".join(covered.split())
        assert [p.start for p in passages] == sorted(p.start for p in passages)


def test_paragraph_numbers_point_at_the_paragraph_the_passage_starts_in():
    for article in read_articles(SEEDS).articles:
        for p in split_passages(article):
            start, end = article.paragraph_spans[p.paragraph - 1]
            assert start <= p.start < end


def test_sentences_split_on_vietnamese_punctuation_and_quotes_but_not_abbreviations():
    text = (
        "Ông V. Putin nói. TP. Hồ Chí Minh có 1.150 quân. “Chúng tôi muốn thế.” "
        "Ông nói tiếp! Có thật không? 7/2 là ngày… Hết"
    )
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    assert sentences == [
        "Ông V. Putin nói.",
        "TP. Hồ Chí Minh có 1.150 quân.",
        "“Chúng tôi muốn thế.”",
        "Ông nói tiếp!",
        "Có thật không?",
        "7/2 là ngày…",
        "Hết",
    ]


def test_passages_never_cut_a_sentence_and_respect_the_size():
    body = " ".join(f"Câu số {i} nói về một chủ đề rất dài và có nhiều từ ngữ khác nhau." for i in range(40))
    article = clean_article("long", "Tiêu đề\n\n" + body)
    passages = split_passages(article, max_words=50, min_words=10)
    assert len(passages) > 1
    for p in passages:
        assert len(p.text.split()) <= 50
        assert p.text.startswith("Câu số") and p.text.endswith(".")


def test_a_sentence_longer_than_the_limit_is_kept_whole():
    long_sentence = " ".join(["từ"] * 300) + "."
    article = clean_article("one", "Tiêu đề\n\n" + long_sentence + " Câu ngắn.")
    passages = split_passages(article, max_words=100, min_words=10)
    assert passages[0].text == long_sentence
    assert passages[1].text == "Câu ngắn."


def test_short_paragraphs_join_the_next_one():
    article = clean_article("short", "Tiêu đề\n\nNgắn.\n\nMột đoạn khác cũng khá ngắn.\n\nĐoạn ba.")
    passages = split_passages(article, max_words=100, min_words=30)
    assert len(passages) == 1
    assert passages[0].paragraph == 1
    assert passages[0].text == article.text
