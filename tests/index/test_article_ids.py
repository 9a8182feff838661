"""Article ids: one per file, whatever the file names, and the same for the same set of files."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from newsqa.index.articles import assign_article_ids, read_articles

ROOT = Path("/seeds")


def test_names_that_give_one_id_get_distinct_ones_and_the_txt_file_keeps_it():
    paths = [ROOT / "x.md", ROOT / "x.txt", ROOT / "x-txt.txt", ROOT / "x-md.txt"]
    ids = assign_article_ids(paths, ROOT)
    assert ids[ROOT / "x.txt"] == "x" and ids[ROOT / "x-txt.txt"] == "x-txt" and ids[ROOT / "x-md.txt"] == "x-md"
    assert ids[ROOT / "x.md"] == "x-md-2"  # 'x-md' is another file's own id
    assert len(set(ids.values())) == len(paths)


def test_nfc_and_nfd_names_give_one_readable_id_each():
    nfc, nfd = unicodedata.normalize("NFC", "Nga yêu cầu"), unicodedata.normalize("NFD", "Nga yêu cầu")
    ids = assign_article_ids([ROOT / f"{nfc}.txt", ROOT / f"{nfd}.txt"], ROOT)
    assert sorted(ids.values()) == sorted([nfc, f"{nfc}-txt"])
    assert all(unicodedata.is_normalized("NFC", i) for i in ids.values())


def test_a_folder_of_colliding_names_builds_every_article_once(tmp_path):
    for name, body in [("x.md", "Bài md."), ("x.txt", "Bài txt."), ("x-txt.txt", "Bài x-txt.")]:
        (tmp_path / name).write_text(f"Tiêu đề {name}\n\n{body} Nội dung của bài báo này.\n", encoding="utf-8")
    articles = read_articles(tmp_path).articles
    assert sorted(a.article_id for a in articles) == ["x", "x-md", "x-txt"]
    assert {a.article_id: Path(a.source).name for a in articles} == {"x": "x.txt", "x-md": "x.md", "x-txt": "x-txt.txt"}


# Pieces that make names collide: suffix-like words, dashes, and é in NFC and in NFD.
_NAME = st.lists(st.sampled_from(["x", "y", "-", "e", "é", "e\u0301", "md", "txt"]), min_size=1, max_size=6).map("".join)
_FILE = st.tuples(st.sampled_from(["", "sub/"]), _NAME, st.sampled_from([".txt", ".md", ".TXT"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_FILE, min_size=1, max_size=12, unique=True), st.randoms())
def test_ids_are_unique_derived_from_the_name_and_independent_of_order(files, rnd: random.Random):
    paths = list(dict.fromkeys(ROOT / f"{folder}{name}{suffix}" for folder, name, suffix in files))
    ids = assign_article_ids(paths, ROOT)
    assert len(set(ids.values())) == len(paths)
    for path, article_id in ids.items():
        base = unicodedata.normalize("NFC", "--".join(path.relative_to(ROOT).with_suffix("").parts))
        assert article_id == base or article_id.startswith(base + "-")
    shuffled = paths[:]
    rnd.shuffle(shuffled)
    assert assign_article_ids(shuffled, ROOT) == ids


def test_the_manifest_counts_what_is_loaded_when_names_collide(tmp_path):
    from newsqa.index.build import build_index
    from newsqa.index.loader import open_index

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ["x.md", "x.txt", "x-txt.txt", unicodedata.normalize("NFD", "bài ấy.txt"), "bài ấy.txt"]:
        (seeds / name).write_text(f"Tiêu đề {name}\n\nNội dung riêng của tệp {name}, đủ dài để thành một đoạn.\n", encoding="utf-8")
    build_index(seeds, tmp_path / "index", None)
    loaded = open_index(tmp_path / "index")
    assert loaded.manifest["article_count"] == len(loaded.articles) == 5
    ids = [p.passage_id for p in loaded.passages]
    assert len(ids) == len(set(ids)) == loaded.manifest["passage_count"]
    for p in loaded.passages:
        assert loaded.articles[p.article_id].text[p.start : p.end] == p.text
