"""Time in questions (retrieval/when.py): the words read as publication dates, and the day's story first."""

from __future__ import annotations

import json
from datetime import date
from dataclasses import replace

import pytest

from newsqa.index.build import ArticlesEngine, build_index
from newsqa.index.clean import clean_article
from newsqa.retrieval.search import ScoredPassage
from newsqa.retrieval.service import QAService, ServiceConfig
from newsqa.retrieval.when import When, WhenOptions, by_date, published_date, read_when
from tests.conftest import REPO

TODAY = date(2026, 12, 10)  # a Thursday


@pytest.mark.parametrize(
    "question,start,end,latest",
    [
        ("Giá vàng hôm nay bao nhiêu?", date(2026, 12, 10), date(2026, 12, 10), False),
        ("gia vang hom nay bao nhieu", date(2026, 12, 10), date(2026, 12, 10), False),  # typed without diacritics
        ("What is the gold price today?", date(2026, 12, 10), date(2026, 12, 10), False),
        ("Thời tiết hôm qua?", date(2026, 12, 9), date(2026, 12, 9), False),
        ("Giá xăng tuần này?", date(2026, 12, 7), date(2026, 12, 10), False),  # Monday to today
        ("Kết quả tuần trước?", date(2026, 11, 30), date(2026, 12, 6), False),
        ("What happened last month?", date(2026, 11, 1), date(2026, 11, 30), False),
        ("Lãi suất tháng này?", date(2026, 12, 1), date(2026, 12, 10), False),
        ("Giá vàng ngày 18/11?", date(2026, 11, 18), date(2026, 11, 18), False),
        ("Giá vàng 25/12?", date(2025, 12, 25), date(2025, 12, 25), False),  # no year: the last one past
        ("Hồi tháng 10 ngân hàng làm gì?", date(2026, 10, 1), date(2026, 10, 31), False),
        ("gia xang thang 11/2026", date(2026, 11, 1), date(2026, 11, 30), False),
        ("How did prices change in November?", date(2026, 11, 1), date(2026, 11, 30), False),
        ("What did he say on March 3, 2026?", date(2026, 3, 3), date(2026, 3, 3), False),
        ("What did he say on 3 March?", date(2026, 3, 3), date(2026, 3, 3), False),
        ("Chuyện gì xảy ra năm 2022?", date(2022, 1, 1), date(2022, 12, 31), False),
        ("Giá vàng mới nhất?", None, None, True),
        ("What is the latest news about NATO?", None, None, True),
        ("Trận gần đây nhất hôm qua?", date(2026, 12, 9), date(2026, 12, 9), True),
    ],
)
def test_time_words_become_publication_dates(question, start, end, latest):
    when = read_when(question, TODAY)
    assert when is not None and (when.start, when.end, when.latest) == (start, end, latest)


@pytest.mark.parametrize(
    "question",
    ["Nga yêu cầu NATO những gì?", "What did Russia demand from NATO?", "nga yeu cau nato gi", "Anh có bao nhiêu quân?",
     "What may happen next?", "Ngày 31/2 có gì?"],  # no time word; a date that does not exist
)
def test_a_question_without_time_words_names_no_dates(question):
    assert read_when(question, TODAY) is None


def test_without_the_time_words_the_question_keeps_what_it_asks_about():
    question = "Giá vàng hôm nay bao nhiêu?"
    assert read_when(question, TODAY).without_words(question) == "Giá vàng bao nhiêu?"
    question = "Thời tiết Hà Nội ngày 9/12 thế nào?"
    assert read_when(question, TODAY).without_words(question) == "Thời tiết Hà Nội thế nào?"


def test_published_dates_are_read_from_dates_and_date_times():
    assert published_date("2026-12-10T08:30:00+07:00") == date(2026, 12, 10)
    assert published_date("2026-12-10") == date(2026, 12, 10)
    assert published_date(None) is None and published_date("last Tuesday") is None


def hit(row: int, score: float) -> ScoredPassage:
    return ScoredPassage(row=row, score=score, lexical=score, dense=None)


DATES = {0: date(2026, 11, 18), 1: date(2026, 12, 3), 2: date(2026, 12, 10), 3: None}


def test_the_asked_window_lifts_its_story_over_a_better_match_from_another_day():
    hits = [hit(0, 0.9), hit(1, 0.85), hit(2, 0.8), hit(3, 0.7)]
    today = When(TODAY, TODAY)
    assert [h.row for h in by_date(hits, DATES.get, today, WhenOptions(), 4)][0] == 2
    latest = When(latest=True)
    assert [h.row for h in by_date(hits, DATES.get, latest, WhenOptions(), 4)][0] == 2


def test_without_a_time_word_a_date_only_breaks_near_ties():
    close = [hit(0, 0.800), hit(2, 0.798)]
    assert [h.row for h in by_date(close, DATES.get, None, WhenOptions(), 2)] == [2, 0]
    apart = [hit(0, 0.9), hit(2, 0.8)]
    assert [h.row for h in by_date(apart, DATES.get, None, WhenOptions(), 2)] == [0, 2]


def test_hits_without_dates_keep_their_order():
    hits = [hit(3, 0.9), hit(4, 0.8)]
    assert by_date(hits, lambda row: None, When(TODAY, TODAY), WhenOptions(), 2) == hits


TIME_SET = REPO / "bench" / "data" / "time_questions.json"


@pytest.fixture(scope="module")
def dated_service(tmp_path_factory, embedder, model_path):
    """The labelled time set's articles (bench/data/time_questions.json), each with its date."""
    data = json.loads(TIME_SET.read_text(encoding="utf-8"))
    articles = [
        replace(clean_article(a["id"], f"{a['title']}\n\n{a['text']}", source=a["id"]), published=a["published"], site=a["site"])
        for a in data["articles"]
    ]
    root = tmp_path_factory.mktemp("dated")
    build_index(root, root, embedder, engine=ArticlesEngine(articles))
    service = QAService(ServiceConfig(index_dir=root, model=model_path), embedder_factory=lambda name: embedder, today=lambda: TODAY)
    service.warm_up()
    return service


@pytest.mark.parametrize(
    "question,article",
    [
        ("Giá vàng hôm nay bao nhiêu?", "gold-1210"),
        ("gia vang hom nay bao nhieu", "gold-1210"),
        ("Giá vàng tuần trước là bao nhiêu?", "gold-1203"),
        ("Giá vàng ngày 18/11 là bao nhiêu?", "gold-1118"),
        ("Giá vàng mới nhất là bao nhiêu?", "gold-1210"),
    ],
)
def test_the_day_asked_about_is_answered_from_that_days_story(dated_service, question, article):
    answer = dated_service.ask(question)
    assert answer.found and answer.citations[0].article_id == article, (answer.answer, answer.citations)


def test_a_build_without_dates_searches_exactly_as_before(seed_service):
    """The seed articles carry no dates: "hôm nay" moves nothing; the hits are the searcher's own."""
    from newsqa.retrieval.query import analyse

    assert not (seed_service.manifest.get("published") or {}).get("count")
    question = "Nga yêu cầu NATO những gì hôm nay?"
    own = seed_service._current().searcher.search(question, 5, analyse(question))
    served = seed_service.search(question, 5).hits
    assert [(h.passage_id, h.score) for h in served] == [
        (seed_service._current().index.passages[h.row].passage_id, round(h.score, 6)) for h in own
    ]
