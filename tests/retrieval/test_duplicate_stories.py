"""A wire story that two sites published is one story to the reader: the answer cites it once and
names the other site under `also_published`; every citation says where it was published."""

from __future__ import annotations

import pytest


QUESTION = "Nga yêu cầu NATO những gì?"


@pytest.fixture(scope="module")
def two_sites_service(two_sites_index, service_factory):
    """The Putin story from tin-a.vn and tin-b.vn, the Johnson story from tin-a.vn."""
    service = service_factory(two_sites_index)
    service.warm_up()
    return service


def test_a_story_two_sites_published_is_cited_once_with_the_other_site_named(two_sites_service):
    answer = two_sites_service.ask(QUESTION, 10)
    assert answer.found and "Nga yêu cầu NATO chấm dứt mở rộng" in answer.answer
    shown = [*answer.citations, *answer.also_retrieved]
    putin = {p.article_id for p in shown} - {"tin-a--johnson"}
    # Site B published first, so it leads the group; the best hit may be either copy, but only one of them shows.
    assert len(putin) == 1
    cited = answer.citations[0]
    assert cited.article_id in ("tin-a--putin", "tin-b--putin")
    site = "tin-a.vn" if cited.article_id == "tin-a--putin" else "tin-b.vn"
    assert cited.source == site and cited.url == f"https://{site}/{cited.article_id}" and cited.published.startswith("2024-03-02")
    other = ({"tin-a--putin", "tin-b--putin"} - {cited.article_id}).pop()
    other_site = "tin-b.vn" if site == "tin-a.vn" else "tin-a.vn"
    assert [p.model_dump() for p in cited.also_published] == [
        {
            "article_id": other,
            "source": other_site,
            "url": f"https://{other_site}/{other}",
            "published": "2024-03-02T08:40:00+07:00" if other_site == "tin-b.vn" else "2024-03-02T09:15:00+07:00",
        }
    ]
    for citation in answer.citations:
        if citation.article_id == cited.article_id:
            assert citation.also_published == cited.also_published


def test_retrieved_passages_carry_their_article_s_source_and_date(two_sites_service):
    answer = two_sites_service.ask("Anh có thể tăng gấp đôi bao nhiêu quân ở Đông Âu?", 10)
    johnson = [p for p in [*answer.citations, *answer.also_retrieved] if p.article_id == "tin-a--johnson"]
    assert johnson
    for passage in johnson:
        assert (passage.source, passage.url, passage.published) == ("tin-a.vn", "https://tin-a.vn/tin-a--johnson", "2024-03-01")
    assert all(c.also_published == [] for c in answer.citations if c.article_id == "tin-a--johnson")


def test_a_build_of_plain_files_answers_as_before_with_empty_metadata(seed_service):
    answer = seed_service.ask(QUESTION, 5)
    assert answer.found
    for passage in [*answer.citations, *answer.also_retrieved]:
        assert (passage.source, passage.url, passage.published) == (None, None, None)
    assert all(c.also_published == [] for c in answer.citations)
