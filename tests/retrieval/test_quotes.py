"""The quote under a source: the sentences the answer took, with a few words around them."""

from __future__ import annotations

from newsqa.index.split import split_sentences
from newsqa.retrieval.quotes import quote_around

TEXT = (
    "Câu mở đầu nói về bối cảnh chung của cuộc khủng hoảng ngoại giao kéo dài nhiều tháng qua giữa hai bên. "
    "Nga yêu cầu NATO chấm dứt mở rộng về phía đông. "
    "Câu thứ ba. "
    "Câu cuối cùng kể thêm những chi tiết không liên quan lắm tới câu hỏi mà người đọc đặt ra hôm nay."
)
SPANS = [(s.start, s.end) for s in split_sentences(TEXT)]


def test_the_cited_sentence_is_whole_with_a_cut_tail_before_and_head_after() -> None:
    quote = quote_around(TEXT, SPANS, [1], context=40)
    assert "Nga yêu cầu NATO chấm dứt mở rộng về phía đông. Câu thứ ba." in quote
    assert quote.startswith("…") and "Câu mở đầu" not in quote  # the sentence before, cut at a word
    assert quote.split("…")[1].split()[0] in TEXT.split()  # starts at a whole word


def test_sentences_that_are_not_neighbours_are_joined_by_an_ellipsis() -> None:
    quote = quote_around(TEXT, SPANS, [1, 3], context=40)
    assert "phía đông. … Câu cuối cùng" in quote and "Câu thứ ba" not in quote


def test_the_last_sentence_has_nothing_after_it_and_the_first_nothing_before() -> None:
    last = quote_around(TEXT, SPANS, [3], context=40)
    assert last.endswith("hôm nay.") and last.startswith("Câu thứ ba.")
    first = quote_around(TEXT, SPANS, [0], context=20)
    assert first.startswith("Câu mở đầu") and first.endswith("…")
