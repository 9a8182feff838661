"""Answers with citations from the real index and the real (stand-in) model."""

from __future__ import annotations

import re
import shutil

import pytest

from newsqa.index.build import build_index
from newsqa.index.embedding.embedder import ModelUnavailable
from newsqa.index.format import IndexCorrupt, resolve_build
from newsqa.index.text import has_diacritics
from newsqa.retrieval.service import BadQuestion
from tests.conftest import SEEDS

PUTIN = "000_a04ea2cbfe5e1bb5"
JOHNSON = "004_418f61029048f05a"

QUESTIONS = [
    # (question, article, text the best citation must contain)
    ("Nga yêu cầu NATO những gì?", PUTIN, "Nga yêu cầu NATO chấm dứt mở rộng về phía đông"),
    ("nga yeu cau nato gi", PUTIN, "Nga yêu cầu NATO chấm dứt mở rộng về phía đông"),
    ("Anh có thể tăng gấp đôi bao nhiêu quân ở Đông Âu?", JOHNSON, "tăng gấp đôi lực lượng 1.150 quân"),
    ("anh cung cap vu khi phong thu cho nuoc nao", JOHNSON, "cho Estonia"),
    ("What did Russia demand from NATO?", PUTIN, "Nga yêu cầu NATO chấm dứt mở rộng về phía đông"),
    ("What did Ned Price say about Moscow?", PUTIN, "Ned Price"),
    ("How many troops could Britain double in Eastern Europe?", JOHNSON, "1.150 quân"),
    ("What does Boris Johnson want to offer Russia about NATO?", JOHNSON, "đảm bảo với Nga"),
]


@pytest.mark.parametrize("question,article_id,evidence", QUESTIONS)
def test_answers_cite_the_passage_that_holds_the_answer(seed_service, question, article_id, evidence):
    answer = seed_service.ask(question, 5)
    assert answer.found, answer.answer
    assert answer.mode == "hybrid" and answer.notice is None
    holds = lambda p: p.article_id == article_id and evidence in p.text  # noqa: E731
    if has_diacritics(question) or question.islower():  # Vietnamese: the answer quotes it
        cited = [c for c in answer.citations if holds(c)]
        assert cited, [c.text[:60] for c in answer.citations]
        assert cited[0].n <= 2
    else:
        # English questions over Vietnamese text lean on the English-only stand-in model, which
        # ranks the right passage lower among two similar articles (and may quote the other one):
        # it is among the best three retrieved. The default model's answers: test_default_model.py.
        retrieved = sorted([*answer.citations, *answer.also_retrieved], key=lambda p: -p.score)
        assert any(holds(p) for p in retrieved[:3]), [p.text[:60] for p in retrieved]


def test_answer_marks_are_numbered_in_order_of_first_appearance(seed_service):
    answer = seed_service.ask("Nga yêu cầu NATO những gì?", 5)
    marks = [int(m) for m in re.findall(r"\[(\d+)\]", answer.answer)]
    assert marks and marks[0] == 1
    first_seen = list(dict.fromkeys(marks))
    assert first_seen == list(range(1, len(first_seen) + 1))
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    # Every sentence of the answer is quoted from the passage its mark points to.
    by_n = {c.n: c for c in answer.citations}
    for sentence, n in re.findall(r"(.+?) \[(\d+)\]\s*", answer.answer):
        assert sentence.strip() in by_n[int(n)].text


def test_citations_carry_offsets_into_the_cleaned_article(seed_service):
    answer = seed_service.ask("Thủ tướng Anh muốn đưa ra đảm bảo gì với Nga?", 5)
    for c in answer.citations:
        article = seed_service.article(c.article_id)
        assert article.text[c.start : c.end] == c.text
        assert c.title == article.title and c.paragraph >= 1


def test_top_k_bounds_the_citations(seed_service):
    assert len(seed_service.ask("NATO", 1).citations) == 1
    assert len(seed_service.ask("NATO", 3).citations) <= 3


def test_no_two_citations_say_the_same_thing(seed_service):
    answer = seed_service.ask("Quan hệ Nga và phương Tây leo thang căng thẳng", 10)
    texts = [c.text for c in answer.citations]
    assert len(texts) == len(set(texts))
    assert sum("Quan hệ Nga và phương Tây đã leo thang" in t for t in texts) == 1


@pytest.mark.parametrize("question", ["What is the capital of Australia?", "Thủ đô của Úc là gì?"])
def test_questions_the_articles_cannot_answer_get_found_false(seed_service, question):
    answer = seed_service.ask(question)
    assert not answer.found and answer.citations == []
    assert "Sorry" in answer.answer or "Xin lỗi" in answer.answer


@pytest.mark.parametrize(
    "question,top_k,message",
    [
        ("", None, "empty"),
        ("   \n\t ", None, "empty"),
        ("x" * 5000, None, "limit"),
        ("NATO", 0, "top_k"),
        ("NATO", 10_000, "top_k"),
        ("NATO", True, "top_k"),
        (123, None, "text"),
    ],
)
def test_bad_questions_get_a_sentence_for_a_person(seed_service, question, top_k, message):
    with pytest.raises(BadQuestion, match=message):
        seed_service.ask(question, top_k)


def test_unicode_of_every_kind_is_answered(seed_service):
    for question in ["🙂🙂", "مرحبا بالعالم", "\x00\x07NATO\u200b", "n\u0301ga yêu cầu NATO", "＃％＆"]:
        answer = seed_service.ask(question)
        assert isinstance(answer.found, bool) and answer.answer


def test_old_and_new_tone_placement_match(seed_service):
    old = seed_service.search("thoả thuận với Mỹ và NATO", 3)
    new = seed_service.search("thỏa thuận với Mỹ và NATO", 3)
    assert [h.passage_id for h in old.hits] == [h.passage_id for h in new.hits]


def test_reload_picks_up_a_new_build_and_refuses_a_corrupt_one(index_copy, service_factory, embedder, tmp_path):
    service = service_factory(index_copy)
    service.warm_up()
    assert not service.reload()  # nothing changed
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "bus.txt").write_text(
        "Hà Nội mở tuyến xe buýt điện\n\nHà Nội khai trương tuyến xe buýt điện dài 25 km vào sáng nay.",
        encoding="utf-8",
    )
    build_index(seeds, index_copy, embedder)
    assert service.reload()
    assert service.article("bus") is not None

    good = resolve_build(index_copy)
    build_index(seeds, index_copy, embedder)
    (resolve_build(index_copy) / "passages.jsonl").write_text("garbage", encoding="utf-8")
    with pytest.raises(IndexCorrupt):
        service.reload()
    # Still serving the last good build.
    assert service.manifest["build_id"] == good.name
    assert service.ask("xe buyt dien ha noi").found


def test_unloadable_model_degrades_to_keyword_search_with_a_notice(seed_index, model_path):
    from newsqa.retrieval.service import QAService, ServiceConfig

    class Unreachable:
        def __init__(self, name):
            self.model_id = name

        def warm_up(self):
            raise ModelUnavailable("The embedding model could not be loaded; set NEWSQA_EMBEDDING_MODEL.")

    service = QAService(ServiceConfig(index_dir=seed_index, model=model_path), embedder_factory=Unreachable)
    answer = service.ask("nga yeu cau nato gi")
    assert answer.mode == "lexical" and "NEWSQA_EMBEDDING_MODEL" in answer.notice
    assert answer.found and "Nga yêu cầu NATO" in answer.citations[0].text


def test_a_large_build_is_served_without_reading_every_article(tmp_path, monkeypatch, embedder, service_factory, seed_service):
    from newsqa.index import tables
    from newsqa.index.build import build_index
    from newsqa.index.options import LoadOptions
    from tests.conftest import SEEDS

    root = tmp_path / "index"
    build_index(SEEDS, root, embedder)
    reads: list[int] = []
    real = tables.JsonlRows.__getitem__

    def counting(self, i):
        reads.append(1)
        return real(self, i)

    monkeypatch.setattr(tables.JsonlRows, "__getitem__", counting)
    service = service_factory(root, load=LoadOptions(lazy_rows=0))  # the seed build counts as large: rows read on access
    service.warm_up()
    # the load parses each table's first and last row to fail early on a damaged file; nothing more
    assert len(reads) <= 4
    view, eager = service.view(), seed_service.view()
    assert [a.article_id for a in view.articles] == [a.article_id for a in eager.articles]
    assert view.passage_counts == eager.passage_counts
    for article in eager.articles:
        assert view.passages_of(article.article_id) == eager.passages_of(article.article_id)
        assert view.article(article.article_id) == article
    assert view.article("no-such-article") is None and view.passages_of("no-such-article") == []


def test_a_hit_s_passage_is_read_once(seed_index, monkeypatch, service_factory, seed_service):
    """On a large build each read of a passage parses a JSON line: search and ask read each hit's
    once, and each hit's article once (for its source, URL and date)."""
    from newsqa.index import tables
    from newsqa.index.models import Passage
    from newsqa.index.options import LoadOptions

    service = service_factory(seed_index, load=LoadOptions(lazy_rows=0))
    service.warm_up()
    reads: list[int] = []  # passage rows
    article_reads: list[int] = []
    real = tables.JsonlRows.__getitem__

    def counting(self, i):
        (reads if self._parse == Passage.from_json else article_reads).append(i)
        return real(self, i)

    monkeypatch.setattr(tables.JsonlRows, "__getitem__", counting)
    question = "Nga yêu cầu NATO những gì?"
    result = service.search(question, top_k=5)
    assert len(result.hits) == len(reads) > 1 and len(set(reads)) == len(reads)
    assert len(set(article_reads)) == len(article_reads) <= len(seed_service.articles())
    assert result == seed_service.search(question, top_k=5).model_copy(update={"took_ms": result.took_ms})
    reads.clear()
    article_reads.clear()
    answer = service.ask(question)
    assert answer.citations and len(set(reads)) == len(reads)
    assert len(set(article_reads)) == len(article_reads) <= len(seed_service.articles())
    assert answer.citations == seed_service.ask(question).citations


def test_a_damaged_current_build_at_start_up_serves_the_previous_one(index_copy, embedder, service_factory, tmp_path):
    import shutil

    from newsqa.index.build import build_index
    from tests.conftest import SEEDS

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "extra.txt").write_text("Bài thêm\n\nHà Nội mở thêm tuyến xe buýt điện thứ mười.", encoding="utf-8")
    previous = (index_copy / "current").resolve()
    newest = build_index(seeds, index_copy, embedder).folder
    passages = newest / "passages.jsonl"
    data = bytearray(passages.read_bytes())
    data[len(data) // 2] ^= 0x04
    passages.write_bytes(bytes(data))

    service = service_factory(index_copy)
    service.warm_up()
    assert service.manifest["build_id"] == previous.name
    assert "damaged" in service.notice and previous.name in service.notice and "newsqa index build" in service.notice
    assert service.ask("Nga yêu cầu NATO những gì?").found
