"""One wire story as two news sites ran it (other captions, an advert, a sentence edited) and an
unrelated story: the articles `newsqa index add` would store, for the tests of near-duplicate
grouping and of the metadata every front end shows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from newsqa.index.clean import clean_article
from newsqa.index.models import Article

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
PUTIN = (SEEDS / "000_a04ea2cbfe5e1bb5.txt").read_text(encoding="utf-8")
JOHNSON = (SEEDS / "004_418f61029048f05a.txt").read_text(encoding="utf-8")


def wire_copy(article_id: str, raw: str, site: str, published: str | None) -> Article:
    """`raw` cleaned as a file would be, with what a news page says of itself."""
    article = clean_article(article_id, raw, source=f"https://{site}/{article_id}")
    return dataclasses.replace(article, site=site, url=f"https://{site}/{article_id}", published=published)


def two_sites() -> list[Article]:
    """The Putin story as tin-a.vn (09:15) and tin-b.vn (08:40, so it leads) ran it, and the Johnson
    story from tin-a.vn."""
    lines = PUTIN.splitlines()
    # Site A: its own photo caption and an advert between paragraphs.
    a = lines[:3] + ["Ông Putin phát biểu tại Điện Kremlin ngày 2/3. (Ảnh: Reuters)", "Đăng ký nhận bản tin buổi sáng miễn phí!"] + lines[3:]
    # Site B: another caption, one sentence edited, a line of related stories at the end.
    b = [line.replace("Tổng thống Vladimir Putin nói", "ông Putin nói") for line in lines]
    b = b[:5] + ["Tổng thống Putin (giữa) tại cuộc họp. Ảnh: TASS"] + b[5:] + ["Xem thêm: Nga và NATO đàm phán"]
    return [
        wire_copy("tin-a--putin", "\n".join(a), "tin-a.vn", "2024-03-02T09:15:00+07:00"),
        wire_copy("tin-b--putin", "\n".join(b), "tin-b.vn", "2024-03-02T08:40:00+07:00"),
        wire_copy("tin-a--johnson", JOHNSON, "tin-a.vn", "2024-03-01"),
    ]


def build_two_sites(root: Path, embedder) -> Path:
    """An index root built from `two_sites()` stored in its library, as `newsqa index add` leaves it."""
    from newsqa.index.build import build_index
    from newsqa.index.web.library import Library

    library = Library.of(root)
    for article in two_sites():
        library.put(article)
    build_index(None, root, embedder)
    return root
