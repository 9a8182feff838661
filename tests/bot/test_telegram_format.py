"""Unit tests for the pure Telegram formatting and splitting (bot/telegram/format.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from newsqa.bot.labels import EN, VI, answer_labels
from newsqa.bot.telegram.format import (
    ARTICLE_TITLES,
    HELP_TITLES,
    TELEGRAM_LIMIT,
    cited_numbers,
    format_answer,
    format_articles,
    format_help,
    format_sources,
    html_to_plain,
    short_quote,
    split_html,
    utf16_len,
)
from newsqa.index.models import Article
from newsqa.retrieval.answer import NOT_FOUND_EN, NOT_FOUND_VI
from newsqa.retrieval.models import Answer, Citation, RetrievedPassage
from tests.bot.fake_bot_api import HtmlError, parse_telegram_html

HOSTILE = '<b>bold</b> & <i>unbalanced <script>alert("x")</script> &amp; </u> [1] &#x27;'


def citation(n: int, title: str = "Tin thế giới", text: str = "Nga yêu cầu NATO chấm dứt mở rộng.", paragraph: int = 2) -> Citation:
    return Citation(
        n=n, article_id=f"a{n}", title=title, passage_id=f"a{n}-p{n}", paragraph=paragraph,
        start=0, end=len(text), text=text, score=1.0 / n, quote=text, highlights=[(0, len(text))],
    )


def answer(question: str = "What did Russia demand?", text: str = "Nga yêu cầu NATO chấm dứt mở rộng [1].", **kw) -> Answer:
    fields = dict(
        question=question, answer=text, found=True, citations=[citation(1), citation(2)], took_ms=1.0, mode="hybrid"
    )
    fields.update(kw)
    return Answer(**fields)


def visible(markup: str) -> str:
    return parse_telegram_html(markup)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# -- escaping and content ------------------------------------------------------------------------------


def test_answer_lists_cited_passages_with_title_paragraph_and_quote() -> None:
    out = format_answer(answer())
    assert visible(out)  # valid Telegram HTML
    assert "Nga yêu cầu NATO chấm dứt mở rộng [1]." in out
    assert "<b>Sources</b>" in out
    assert "<b>Tin thế giới</b>\n<b>[1]</b> · paragraph 2<blockquote>" in out


def test_answer_labels_follow_the_question_language() -> None:
    vi = format_answer(answer(question="nga yeu cau gi", language="vi"))
    assert "<b>Nguồn</b>" in vi and "· đoạn 2" in vi
    assert answer_labels(answer(question="nga yeu cau gi", language="vi")) is VI
    assert answer_labels(answer()) is EN


def test_hostile_question_title_and_passage_are_escaped() -> None:
    hostile = answer(
        question=HOSTILE,
        text=f"{HOSTILE} [1]",
        citations=[citation(1, title=HOSTILE, text=HOSTILE)],
        notice="<notice> & such",
    )
    for out in (format_answer(hostile), format_sources(hostile)):
        shown = visible(out)  # raises on any tag or entity Telegram would refuse
        assert "<b>bold</b> & <i>unbalanced <script>" in shown
        assert "<script>" not in out and "</u>" not in out


def test_not_found_is_polite_in_the_question_language_and_never_empty() -> None:
    en = format_answer(answer(text=NOT_FOUND_EN, found=False, citations=[]))
    vi = format_answer(
        answer(question="Thủ đô của Úc là gì?", text=NOT_FOUND_VI, found=False, citations=[], language="vi")
    )
    assert NOT_FOUND_EN in visible(en) and "/articles" in en
    assert NOT_FOUND_VI in visible(vi) and VI.not_found_hint in visible(vi)
    empty = format_answer(answer(text="  ", found=False, citations=[]))
    assert visible(empty).strip()


def test_notice_is_shown_when_the_service_runs_degraded() -> None:
    out = format_answer(answer(notice="Keyword search only."))
    assert "<i>Keyword search only.</i>" in out


def test_sources_show_every_full_passage() -> None:
    long_text = "Câu một rất dài. " * 40
    out = format_sources(answer(citations=[citation(1, text=long_text), citation(2)]))
    assert squash(long_text) in squash(visible(out))
    assert "[2]" in out


def test_sources_are_grouped_by_article_with_the_title_once() -> None:
    """[1] and [3] from one article, [2] from another: the first article's title once, both its
    paragraphs under it, in the order of their numbers; the quote, not the passage's first words."""
    one = citation(1, title="Putin", paragraph=4).model_copy(update={"article_id": "a", "quote": "…trước. Câu trích [1]."})
    two = citation(2, title="Johnson", paragraph=1).model_copy(update={"article_id": "b"})
    three = citation(3, title="Putin", paragraph=6).model_copy(update={"article_id": "a", "quote": "Câu trích [3]."})
    out = format_answer(answer(text="A [1]. B [2]. C [3].", citations=[one, two, three]))
    shown = visible(out).split("Sources", 1)[1]
    assert shown.count("Putin") == 1 and shown.count("Johnson") == 1
    order = [shown.index(s) for s in ("Putin", "[1] · paragraph 4", "[3] · paragraph 6", "Johnson", "[2] · paragraph 1")]
    assert order == sorted(order)
    assert "…trước. Câu trích [1]." in shown


def test_sources_set_what_was_also_retrieved_apart() -> None:
    other = RetrievedPassage(
        article_id="c", title="Tin khác", passage_id="c-p1", paragraph=3, start=0, end=5, text="Khác.", score=0.1
    )
    out = format_sources(answer(citations=[citation(1)], also_retrieved=[other]))
    shown = visible(out)
    assert shown.index("[1]") < shown.index("Also retrieved") < shown.index("Tin khác · paragraph 3")
    assert "Also retrieved" not in visible(format_answer(answer(citations=[citation(1)], also_retrieved=[other])))


def test_a_source_from_the_web_links_its_title_to_the_story_and_says_who_published_it_when() -> None:
    url = 'https://tin-b.vn/nga-nato?id=7&ref="x"<y>'
    cited = citation(1, title="Nga & NATO <đàm phán>").model_copy(
        update={"url": url, "source": "Tin <B>", "published": "2024-03-02T08:40:00+07:00"}
    )
    for out in (format_answer(answer(citations=[cited])), format_sources(answer(citations=[cited]))):
        shown = visible(out)  # strict: raises on anything Telegram would refuse
        assert (
            '<b><a href="https://tin-b.vn/nga-nato?id=7&amp;ref=&quot;x&quot;&lt;y&gt;">Nga &amp; NATO &lt;đàm phán&gt;</a></b>'
            "\n<i>Tin &lt;B&gt; · 2024-03-02</i>\n"
        ) in out
        assert "Nga & NATO <đàm phán>\nTin <B> · 2024-03-02\n" in shown


def test_a_source_without_a_url_or_with_one_not_on_the_web_is_not_a_link() -> None:
    plain = format_answer(answer(citations=[citation(1)]))
    assert "<a " not in plain and "<b>Tin thế giới</b>\n<b>[1]</b>" in plain  # a plain file: as before
    hostile = citation(1).model_copy(update={"url": "javascript:alert(1)", "source": "evil.example"})
    out = format_answer(answer(citations=[hostile]))
    assert "<a " not in out and "javascript" not in out and "<i>evil.example</i>" in out


def test_other_sites_that_ran_the_story_are_named_and_linked() -> None:
    from newsqa.retrieval.models import Publication

    cited = citation(1).model_copy(
        update={
            "url": "https://tin-b.vn/putin",
            "source": "tin-b.vn",
            "also_published": [
                Publication(article_id="tin-a--putin", source="tin-a.vn", url="https://tin-a.vn/putin?a=1&b=2"),
                Publication(article_id="tin-a--putin-2", source="tin-a.vn", url="https://tin-a.vn/putin-2"),
                Publication(article_id="file--putin", source=None, url=None),
            ],
        }
    )
    out = format_answer(answer(citations=[cited], language="vi", question="nga yeu cau gi"))
    visible(out)
    assert out.endswith(
        f'<i>{VI.also_published}:</i> <a href="https://tin-a.vn/putin?a=1&amp;b=2">tin-a.vn</a>, file--putin'
    )


def test_short_quote_cuts_at_a_word_with_an_ellipsis() -> None:
    text = "word " * 100
    quote = short_quote(text, 50)
    assert len(quote) <= 51 and quote.endswith("…") and not quote.endswith(" …")
    assert short_quote("short  text", 50) == "short text"


def test_cited_numbers_in_order_without_repeats() -> None:
    assert cited_numbers("a [2] b [1] c [2]") == [2, 1]


def test_help_is_bilingual_and_lists_escaped_titles() -> None:
    articles = [Article(article_id="x", title="<Tin> & nóng", text="t", source="s", paragraph_spans=((0, 1),))]
    out = format_help(articles, "newsqa_bot")
    shown = visible(out)
    assert "<Tin> & nóng" in shown
    assert "Xin chào" in shown and "Hello" in shown and "@newsqa_bot" in shown


def test_help_points_to_articles_when_there_are_many() -> None:
    many = [Article(article_id=f"a{i}", title=f"Title {i}", text="t", source="s", paragraph_spans=()) for i in range(50)]
    out = format_help(many)
    assert f"Title {HELP_TITLES - 1}" in out and f"Title {HELP_TITLES}" not in out
    assert "/articles" in out
    assert "Title 49" in format_articles(many)


def test_a_large_collection_lists_its_first_titles_and_the_count() -> None:
    first = [Article(article_id=f"a{i}", title=f"Title {i}", text="t", source="s", paragraph_spans=()) for i in range(150)]
    out = visible(format_articles(first, total=271_208))
    assert "(271,208)" in out and f"Title {ARTICLE_TITLES - 1}" in out and f"Title {ARTICLE_TITLES}\n" not in out
    assert f"and {271_208 - ARTICLE_TITLES:,} more" in out
    assert "and 271,188 more" in visible(format_help(first[:20], total=271_208))


def test_no_articles_is_still_a_message() -> None:
    assert visible(format_articles([])).strip()


def test_plain_fallback_strips_tags_and_unescapes() -> None:
    assert html_to_plain("<b>a &amp; b</b> &lt;c&gt;") == "a & b <c>"


# -- splitting -----------------------------------------------------------------------------------------


def test_short_message_is_one_part_and_blank_is_none() -> None:
    assert split_html("<b>hi</b>") == ["<b>hi</b>"]
    assert split_html("  \n ") == []
    assert split_html("<b> </b>") == []


def test_splits_on_paragraph_boundaries() -> None:
    paragraphs = [f"<b>Đoạn {i}</b> " + "chữ " * 150 for i in range(12)]
    markup = "\n\n".join(paragraphs)
    parts = split_html(markup)
    assert len(parts) > 1
    for part in parts:
        assert utf16_len(part) <= TELEGRAM_LIMIT
        visible(part)
        assert part.startswith("<b>Đoạn ")  # every part begins with a whole paragraph
    assert squash("".join(visible(p) for p in parts)) == squash(visible(markup))


def test_a_paragraph_longer_than_the_limit_splits_at_sentences_and_reopens_tags() -> None:
    sentence = "Nga yêu cầu NATO &amp; Mỹ chấm dứt mở rộng [3]. "
    markup = "<i>" + sentence * 40 + "</i>"
    parts = split_html(markup, 300)
    assert len(parts) > 1
    for part in parts:
        assert utf16_len(part) <= 300
        visible(part)
        assert part.startswith("<i>") and part.endswith("</i>")
        assert part.removesuffix("</i>").rstrip().endswith("[3].")  # cut after a whole sentence and its mark
    assert squash("".join(visible(p) for p in parts)) == squash(visible(markup))


def test_never_cuts_an_entity_or_a_citation_mark() -> None:
    markup = " ".join(["&amp;&lt;&gt;&quot;[12]"] * 200)
    for limit in (50, 64, 97):
        for part in split_html(markup, limit):
            assert utf16_len(part) <= limit
            visible(part)
            assert re.fullmatch(r"(?:&amp;&lt;&gt;&quot;\[12\]\s*)+", part)


def test_a_word_longer_than_the_limit_is_cut_between_characters() -> None:
    parts = split_html("x" * 1000, 100)
    assert all(utf16_len(p) <= 100 for p in parts)
    assert "".join(parts) == "x" * 1000


def test_limit_counts_utf16_units_like_telegram() -> None:
    emoji = "😀 " * 3000  # two UTF-16 units per emoji
    parts = split_html(emoji)
    assert len(parts) >= 3
    assert all(utf16_len(p) <= TELEGRAM_LIMIT for p in parts)


def test_too_small_a_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        split_html("<b><i><u>" + "x" * 100 + "</u></i></b>", 10)


TAGS = st.sampled_from(["b", "i", "u", "s", "code"])
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from(list("\n <>&[]")),
    max_size=60,
)


@st.composite
def markups(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.integers(0, 4 if depth < 3 else 2))
        if choice == 0:
            from html import escape

            pieces.append(escape(draw(TEXT)))
        elif choice == 1:
            pieces.append(f"[{draw(st.integers(1, 99))}]")
        elif choice == 2:
            pieces.append(draw(st.sampled_from(["\n\n", "\n", " ", ". "])))
        else:
            tag = draw(TAGS)
            pieces.append(f"<{tag}>{draw(markups(depth + 1))}</{tag}>")
    return "".join(pieces)


@settings(max_examples=200, deadline=None)
@given(markup=markups(), limit=st.integers(80, 400))
# A word longer than what three reopened tags leave of a part, with characters of two UTF-16 units.
@example(markup="<code><b><b>00000000𐀀𐀀" + "0" * 19 + "𐀀" + "0" * 19 + "𐀀</b></b></code>", limit=80)
def test_property_every_part_fits_is_valid_and_nothing_is_lost(markup: str, limit: int) -> None:
    parts = split_html(markup, limit)
    marks = re.findall(r"\[\d+\]", markup)
    joined_marks: list[str] = []
    for part in parts:
        assert utf16_len(part) <= limit
        try:
            shown = visible(part)
        except HtmlError as exc:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"invalid part {part!r}: {exc}") from exc
        assert shown.strip()
        joined_marks += re.findall(r"\[\d+\]", part)
    assert joined_marks == marks
    assert squash("".join(visible(p) for p in parts)) == squash(visible(markup))
