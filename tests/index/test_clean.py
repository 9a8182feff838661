"""Ingestion of noisy news pages: what is kept as the article body and what is never citable."""

from __future__ import annotations

import unicodedata

from newsqa.index.articles import read_articles
from newsqa.index.clean import clean_article
from tests.conftest import SEEDS

PUTIN = "000_a04ea2cbfe5e1bb5"
JOHNSON = "004_418f61029048f05a"


def seed_articles():
    return {a.article_id: a for a in read_articles(SEEDS).articles}


def test_seed_ids_come_from_file_names():
    assert set(seed_articles()) == {PUTIN, JOHNSON}


def test_title_from_first_line_or_first_sentence():
    articles = seed_articles()
    assert articles[JOHNSON].title == "Thủ tướng Anh muốn đưa ra đề xuất đảm bảo với Nga về NATO"
    # 000 has no title line: the title is derived from its first sentence.
    assert articles[PUTIN].title.startswith("Tổng thống Vladimir Putin cho biết")
    assert articles[PUTIN].text.startswith("Tổng thống Vladimir Putin cho biết")


def test_seed_noise_is_not_in_the_body():
    articles = seed_articles()
    putin, johnson = articles[PUTIN].text, articles[JOHNSON].text
    for noise in ["(Ảnh: AP)", "Anh đề xuất gửi quân", "Josep Borrell", "Mỹ và EU chia rẽ", " |"]:
        assert noise not in putin
    for noise in ["ảnh 1Thủ tướng", "(Ảnh: THX/TTXVN)", "[Nga không chờ đợi", "(TTXVN/Vietnam+)",
                  "Tin cùng chuyên mục", "BRICS", "Stavropol", "./."]:
        assert noise not in johnson
    # The lead paragraph is repeated later in 004; only one copy stays.
    assert johnson.count("Quan hệ Nga và phương Tây đã leo thang căng thẳng") == 1
    # The article's own text is kept.
    assert "Nga yêu cầu NATO chấm dứt mở rộng về phía đông" in putin
    assert "tăng gấp đôi lực lượng 1.150 quân" in johnson


def test_removed_parts_are_recorded_with_reasons():
    reasons = {r.reason for r in seed_articles()[JOHNSON].removed}
    assert {"photo caption", "link to another story", "duplicate paragraph", "byline", "related-stories tail"} <= reasons


def test_made_up_page_with_every_kind_of_noise():
    raw = "\n".join(
        [
            "Hà Nội mở thêm tuyến xe buýt điện",
            "",
            "Sáng nay, thành phố Hà Nội khai trương tuyến xe buýt điện thứ mười.",
            "Hành khách lên xe tại bến Long Biên. (Ảnh: TTXVN) |",
            "Tuyến mới dài 25 km và có 40 điểm dừng.",
            "Tuyến mới dài 25 km và có 40 điểm dừng.",
            "Giá vé xăng tăng mạnh",
            "Giá xăng hôm nay tiếp tục tăng theo giá thế giới ... |",
            "[Xem: Hà Nội cấm xe máy từ 2030]",
            "(Vietnam+)",
            "Tin liên quan",
            "Một bài khác không thuộc bài này.",
        ]
    )
    article = clean_article("bus", raw)
    assert article.title == "Hà Nội mở thêm tuyến xe buýt điện"
    assert article.text == (
        "Sáng nay, thành phố Hà Nội khai trương tuyến xe buýt điện thứ mười.\n\n"
        "Tuyến mới dài 25 km và có 40 điểm dừng."
    )
    reasons = [r.reason for r in article.removed]
    assert reasons.count("teaser of another story") == 1 and "teaser headline" in reasons


def test_nfd_input_is_normalised_to_nfc():
    raw = unicodedata.normalize("NFD", "Tiêu đề\n\nNga yêu cầu NATO chấm dứt mở rộng.")
    article = clean_article("nfd", raw)
    assert unicodedata.is_normalized("NFC", article.text)
    assert article.text == "Nga yêu cầu NATO chấm dứt mở rộng."


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path):
    (tmp_path / "good.txt").write_text("Tiêu đề\n\nMột câu có nội dung thật.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (tmp_path / "latin1.md").write_bytes("Café crème brûlée".encode("latin-1"))
    (tmp_path / "only-noise.txt").write_text("Ảnh minh họa. (Ảnh: AP) |\n", encoding="utf-8")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF-1.4")
    result = read_articles(tmp_path)
    assert [a.article_id for a in result.articles] == ["good"]
    joined = "\n".join(result.warnings)
    for name in ["empty.txt", "binary.txt", "latin1.md", "only-noise.txt"]:
        assert name in joined
    assert "ignored.pdf" not in joined


def test_short_lines_at_the_end_and_poems_are_the_articles_own():
    weather = "Nắng nóng\n\nHà Nội hôm nay nắng nóng gay gắt.\nHà Nội 38 độ\nHuế 36 độ\nĐà Nẵng 35 độ\nTP.HCM 34 độ\nCần Thơ 33 độ\n"
    assert clean_article("weather", weather).text.endswith("Đà Nẵng 35 độ\n\nTP.HCM 34 độ\n\nCần Thơ 33 độ")
    poem = "Thơ\n\nTrăng lên đỉnh núi\nGió thổi qua đồi\nEm về bên suối\nAnh đứng chờ thôi\n"
    assert clean_article("poem", poem).text.count("\n\n") == 3
    signed = clean_article("signed", "Tiêu đề\n\nMột câu của bài báo.\n\nMinh Anh\n")
    assert signed.text == "Một câu của bài báo." and [r.reason for r in signed.removed] == ["byline"]


def test_repeats_are_found_among_many_paragraphs_without_comparing_every_pair():
    # 100k short lines over a few words: every pair is a candidate for a pairwise check (that took
    # over 9 minutes); exact and near repeats are still removed, new lines kept.
    words = "nga nato anh putin my dong au quan doi an ninh bao dam".split()
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 9)) + "." for i in range(100_000)]
    article = clean_article("many", "Tiêu đề\n\n" + "\n".join(lines))
    kept = article.text.split("\n\n")
    assert len(set(kept)) == len(kept) > 50
    assert sum(r.reason == "duplicate paragraph" for r in article.removed) == 100_000 - len(kept)
    near = "Nga yêu cầu NATO chấm dứt mở rộng về phía đông và không triển khai vũ khí tấn công."
    twice = clean_article("near", f"Tiêu đề\n\n{near}\n\nMột đoạn khác hẳn.\n\n{near[:-1]} nữa.")
    assert twice.text.count("Nga yêu cầu NATO") == 1


def test_links_out_of_the_folder_and_things_that_are_not_files_are_skipped_by_name(tmp_path):
    import os

    seeds, outside = tmp_path / "seeds", tmp_path / "private"
    seeds.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("Bí mật\n\nMật khẩu của máy chủ là abc123.", encoding="utf-8")
    (seeds / "good.txt").write_text("Tiêu đề\n\nMột câu có nội dung thật.", encoding="utf-8")
    (seeds / "inside.txt").symlink_to(seeds / "good.txt")  # a link within the folder is an article
    (seeds / "leak.txt").symlink_to(outside / "secret.txt")
    (seeds / "dangling.txt").symlink_to(seeds / "gone.txt")
    (seeds / "loop.txt").symlink_to(seeds / "loop.txt")
    (seeds / "dir.txt").mkdir()
    os.mkfifo(seeds / "pipe.txt")
    result = read_articles(seeds)
    assert sorted(a.article_id for a in result.articles) == ["good", "inside"]
    assert not any("abc123" in a.text for a in result.articles)
    joined = "\n".join(result.warnings)
    for name, why in [("leak.txt", "outside the seeds folder"), ("dangling.txt", "a link to nothing"),
                      ("loop.txt", "leads back to itself"), ("dir.txt", "a folder"), ("pipe.txt", "not a regular file")]:
        assert f"{name}: skipped, " in joined and why in joined, name


def test_an_article_the_cleaner_would_mostly_remove_is_kept_whole_with_a_warning(tmp_path):
    # Every line ends in "|", the shape of a caption: a page written this way is not all captions.
    lines = [f"Đoạn {i}: Hà Nội khai trương tuyến xe buýt điện thứ {i} với nhiều điểm dừng mới |" for i in range(12)]
    (tmp_path / "odd.txt").write_text("Tiêu đề\n\nMột câu mở đầu bình thường.\n" + "\n".join(lines), encoding="utf-8")
    result = read_articles(tmp_path)
    (article,) = result.articles
    assert "Đoạn 11" in article.text and article.removed == ()
    assert any("odd.txt: kept whole" in w and "%" in w for w in result.warnings)


def test_an_article_over_the_time_budget_is_skipped_by_name(tmp_path):
    from newsqa.index.articles import read_article_file

    path = tmp_path / "slow.txt"
    path.write_text("Tiêu đề\n\n" + "\n".join(f"Dòng số {i} của một tệp rất dài." for i in range(20_000)), encoding="utf-8")
    article, warning = read_article_file(path, "slow", max_seconds=0.0)
    assert article is None and "slow.txt: skipped, cleaning it took" in warning and "budget" in warning
    article, warning = read_article_file(path, "slow")
    assert article is not None and warning is None


def test_an_article_without_a_headline_gets_a_short_title_cut_at_a_word():
    from newsqa.index.clean import DERIVED_TITLE_CHARS, clean_article

    long = (
        "Tổng thống Vladimir Putin cho biết, trong bối cảnh ngoại giao toàn cầu ngày càng “hỗn loạn và căng "
        "thẳng”, Nga cần đảm bảo an ninh ràng buộc về mặt pháp lý từ NATO. Câu thứ hai của bài."
    )
    title = clean_article("x", long).title
    assert title.endswith("…") and len(title) <= DERIVED_TITLE_CHARS + 1
    head = title[:-1]
    assert long.startswith(head) and long[len(head)] == " "  # whole words only
    assert "“" not in head  # a quotation it could not close is left out
    short = clean_article("y", "Giá vàng tăng mạnh. Câu thứ hai của bài, dài hơn câu đầu một chút.").title
    assert short == "Giá vàng tăng mạnh"  # a short first sentence is the title, whole
