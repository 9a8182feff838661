"""Follow-up questions read with the previous turn (retrieval/conversation.py, QAService.ask/search(context=))."""

from __future__ import annotations

import json

import pytest

from newsqa.index.text import nfc
from newsqa.retrieval.conversation import TOPIC_WORDS, Turn, next_turn, reads_with
from newsqa.retrieval.evaluate import SEED_CONVERSATIONS
from newsqa.retrieval.query import analyse

CONVERSATIONS = json.loads(SEED_CONVERSATIONS.read_text(encoding="utf-8"))["conversations"]
PREVIOUS = Turn(question="Nga yêu cầu NATO những gì?", topic="Nga yêu cầu NATO những gì?", articles=("x",))


def reads(question: str, previous: Turn | None = PREVIOUS) -> bool:
    return reads_with(question, analyse(question), previous)


@pytest.mark.parametrize(
    "question",
    ["Còn Anh thì sao?", "vì sao?", "ông ấy nói gì", "con my thi sao", "How is it treated?", "what about Britain?",
     "Why did they decide that on 28 March?"],
)
def test_a_question_that_leans_on_the_previous_one_is_read_with_it(question):
    assert reads(question)


@pytest.mark.parametrize(
    "question",
    [
        "What is Britain's new organ donation law called?",  # English, names its own topic
        "What about the bear man in Hai Phong, what disease does he have?",
        "Different question: how do I treat a snake bite?",
        "Câu hỏi khác: giá xăng hôm nay bao nhiêu?",
    ],
)
def test_a_question_on_a_new_topic_stands_alone(question):
    assert not reads(question)


def test_without_a_previous_turn_nothing_is_read_with_context():
    assert not reads("vì sao?", None)


def test_the_topic_of_a_chain_of_follow_ups_keeps_its_start_and_stays_bounded(seed_service):
    first = seed_service.ask("Nga yêu cầu NATO những gì?")
    turn = next_turn(first, None)
    assert turn.topic == "Nga yêu cầu NATO những gì?" and turn.articles[0] == first.citations[0].article_id
    second = seed_service.ask("Còn Mỹ thì sao?", context=turn)
    assert second.context_used and second.context_question == turn.question
    chained = next_turn(second, turn)
    assert chained.topic == "Nga yêu cầu NATO những gì? Còn Mỹ thì sao?"
    long = Turn("q", " ".join(["từ"] * 500), ())
    assert len(next_turn(second, long).topic.split()) == TOPIC_WORDS


def test_an_answer_read_alone_is_remembered_as_its_own_topic(seed_service):
    answer = seed_service.ask("Anh triển khai bao nhiêu quân ở Đông Âu?", context=None)
    assert not answer.context_used and answer.context_question is None
    assert next_turn(answer, PREVIOUS).topic == "Anh triển khai bao nhiêu quân ở Đông Âu?"


def test_without_a_conversation_the_answer_is_exactly_todays(seed_service):
    for item in CONVERSATIONS:
        question = item["turns"][1]["question"]
        a = seed_service.ask(question).model_dump(exclude={"took_ms", "answer_id"})
        b = seed_service.ask(question, context=None).model_dump(exclude={"took_ms", "answer_id"})
        assert a == b and not a["context_used"]


VIETNAMESE = [c for c in CONVERSATIONS if c["language"] != "en"]


@pytest.mark.parametrize("conversation", VIETNAMESE, ids=[c["id"] for c in VIETNAMESE])
def test_the_second_turn_finds_its_passage_with_context(seed_service, conversation):
    """Over the seed articles (Vietnamese, with and without diacritics; the stand-in model is
    English-only, so the words decide): the labelled passage is among the top 5, follow-up or switch."""
    first, second = conversation["turns"]
    turn = next_turn(seed_service.ask(first["question"]), None)
    result = seed_service.search(second["question"], 5, context=turn)
    assert result.context_used
    assert any(h.article_id == second["article"] and nfc(second["answer"]) in nfc(h.text) for h in result.hits)



@pytest.mark.parametrize(
    "first,follow_up,holds",
    [
        ("Nga yêu cầu NATO những gì?", "Còn Mỹ thì sao?", "Mỹ"),
        ("Thủ tướng Anh Boris Johnson đề nghị NATO triển khai những gì ở châu Âu?", "Ông ấy đề nghị vậy từ khi nào?", "tháng 1"),
    ],
)
def test_a_follow_up_that_says_little_on_its_own_is_answered_in_context(seed_service, first, follow_up, holds):
    """Asked alone, "Còn Mỹ thì sao?" covers too little of any passage to be answered; read with the
    earlier question, its words count with the earlier topic's, and the answer quotes the passage."""
    previous = next_turn(seed_service.ask(first), None)
    answer = seed_service.ask(follow_up, context=previous)
    assert answer.context_used and answer.found, answer.answer
    assert holds in answer.answer


@pytest.mark.parametrize("follow_up", ["Còn Úc thì sao?", "Thủ đô của Úc là gì?"])
def test_a_follow_up_about_what_the_articles_lack_is_still_not_found(seed_service, follow_up):
    previous = next_turn(seed_service.ask("Nga yêu cầu NATO những gì?"), None)
    answer = seed_service.ask(follow_up, context=previous)
    assert answer.context_used and not answer.found and answer.citations == []
