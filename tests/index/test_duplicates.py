"""Near-duplicate stories: one wire story published by two sites (other captions, an advert, a
sentence edited) is one group; an unrelated story is not in it; the earliest is the leader."""

from __future__ import annotations

import dataclasses
import json

from newsqa.index.build import build_index
from newsqa.index.duplicates import DuplicateGroups, find_duplicates, group_members, mark_duplicates, shingles
from newsqa.index.format import ARTICLES, read_manifest, resolve_build
from tests.wire_story import JOHNSON, PUTIN, two_sites, wire_copy


def test_two_sites_copies_of_a_wire_story_are_one_group_and_an_unrelated_story_is_not():
    articles = two_sites()
    leaders = find_duplicates(articles)
    # Site B ran it first (08:40 against 09:15): it leads.
    assert leaders == {"tin-a--putin": "tin-b--putin"}
    marked = {a.article_id: a.duplicate_of for a in mark_duplicates(articles)}
    assert marked == {"tin-a--putin": "tin-b--putin", "tin-b--putin": None, "tin-a--johnson": None}


def test_without_dates_the_first_by_id_leads_and_a_dated_copy_leads_an_undated_one():
    undated = [dataclasses.replace(a, published=None) for a in two_sites()]
    assert find_duplicates(undated) == {"tin-b--putin": "tin-a--putin"}
    one_dated = [dataclasses.replace(a, published=None if a.article_id == "tin-a--putin" else a.published) for a in two_sites()]
    assert find_duplicates(one_dated) == {"tin-a--putin": "tin-b--putin"}


def test_copies_in_any_order_give_the_same_groups():
    articles = two_sites()
    assert find_duplicates(articles[::-1]) == find_duplicates(articles)


def test_a_story_rewritten_in_part_is_not_a_copy():
    """Another site's own report on the same event shares sentences, not the story: not grouped."""
    lines = PUTIN.splitlines()
    half = "\n".join(lines[: len(lines) // 2] + JOHNSON.splitlines()[len(lines) // 2 :])
    articles = [wire_copy("a", PUTIN, "a.vn", None), wire_copy("b", half, "b.vn", None)]
    assert find_duplicates(articles) == {}


def test_short_briefs_that_happen_to_match_are_not_grouped():
    brief = "Hà Nội mưa to chiều nay."
    articles = [wire_copy("a", brief, "a.vn", None), wire_copy("b", brief, "b.vn", None)]
    assert find_duplicates(articles) == {}


def test_shingles_ignore_case_diacritics_punctuation_and_tone_placement():
    assert set(shingles("Hòa bình ở Việt Nam, theo thuý và các bạn.")) == set(
        shingles("HOÀ BÌNH Ở VIỆT NAM – THEO THÚY VÀ CÁC BẠN")
    )
    assert not set(shingles("một hai ba bốn năm sáu")) & set(shingles("sáu năm bốn ba hai một"))


def test_groups_as_the_query_side_reads_them():
    groups = DuplicateGroups(group_members(mark_duplicates(two_sites())))
    assert groups.members("tin-a--putin") == groups.members("tin-b--putin") == ("tin-b--putin", "tin-a--putin")
    assert groups.leader("tin-a--putin") == "tin-b--putin"
    assert groups.members("tin-a--johnson") == () and groups.leader("nothing") is None


def test_a_build_marks_copies_and_lists_the_groups_in_its_manifest(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "putin.txt").write_text(PUTIN, encoding="utf-8")
    (seeds / "putin-copy.txt").write_text(PUTIN.replace("(Ảnh: AP)", "(Ảnh: Reuters)") + "\nQuảng cáo\n", encoding="utf-8")
    (seeds / "johnson.txt").write_text(JOHNSON, encoding="utf-8")
    folder = build_index(seeds, tmp_path / "index", None).folder
    written = {row["article_id"]: row["duplicate_of"] for row in map(json.loads, (folder / ARTICLES).read_text().splitlines())}
    # Plain files say no date: the first by id leads.
    assert written == {"johnson": None, "putin": None, "putin-copy": "putin"}
    manifest = read_manifest(folder)
    assert manifest["duplicates"] == {"putin": ["putin-copy"]}
    assert manifest["sources"] == {"files": 3}


def test_the_seed_articles_are_not_duplicates(seed_index):
    folder = resolve_build(seed_index)
    manifest = read_manifest(folder)
    assert manifest["duplicates"] == {} and manifest["sources"] == {"files": 2}
    rows = [json.loads(line) for line in (folder / ARTICLES).read_text().splitlines()]
    assert [row["duplicate_of"] for row in rows] == [None, None]
