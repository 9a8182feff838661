"""A news site on 127.0.0.1 for the web ingest tests: pages in the shape of real Vietnamese news
sites (navigation, ads, a "Tin liên quan" block, photo captions, footer), an RSS feed, and the
faults the web has (redirects, a 404, a slow answer, a huge page, an image and a PDF, a page in
windows-1258, robots.txt keeping a folder out). No internet needed.

    with NewsSite() as site:
        site.url(site.PAGE)  # http://127.0.0.1:<port>/thoi-su/...
"""

from __future__ import annotations

import datetime as dt
import html
import threading
import time
import unicodedata
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SITE_NAME = "Báo Tin Nhanh"
SLOW_SECONDS = 3.0  # the slow page answers after this; tests fetch it with a shorter timeout
HUGE_BYTES = 3_000_000  # the huge page's size; tests fetch it with a smaller max_bytes

NAVIGATION = ["Trang chủ", "Thời sự", "Góc nhìn", "Thế giới", "Kinh doanh", "Giải trí", "Thể thao", "Pháp luật", "Giáo dục", "Sức khỏe"]
AD_TEXT = "Mở thẻ tín dụng hoàn tiền 20% cho mọi giao dịch – Đăng ký ngay hôm nay"
FOOTER = (
    "© Copyright 1997-2024 Báo Tin Nhanh, toàn bộ bản quyền thuộc Báo Tin Nhanh. Giấy phép số 548/GP-BTTTT "
    "do Bộ Thông tin và Truyền thông cấp. Liên hệ quảng cáo: 0243 999 8888."
)


@dataclass(frozen=True)
class Story:
    path: str
    section: str
    title: str
    published: str  # article:published_time
    author: str
    sapo: str
    # ("p", paragraph) | ("figure", caption under a photo) | ("caption", a caption written as a
    # paragraph of the body, as some CMSs do: the extractor keeps it, the product's cleaning drops it)
    # | ("ad", text)
    body: tuple[tuple[str, str], ...]
    related: tuple[str, ...]  # headlines of the "Tin liên quan" block


RAIL = Story(
    path="/thoi-su/ha-noi-khoi-cong-tuyen-duong-sat-van-cao-hoa-lac-4712345.html",
    section="Thời sự",
    title="Hà Nội khởi công tuyến đường sắt đô thị Văn Cao – Hòa Lạc",
    published="2024-05-14T08:30:00+07:00",
    author="Minh Anh",
    sapo=(
        "Sáng 14/5, UBND TP Hà Nội khởi công tuyến đường sắt đô thị số 5 Văn Cao – Hòa Lạc dài 38,4 km, "
        "tổng mức đầu tư hơn 65.400 tỷ đồng."
    ),
    body=(
        ("p", "Tuyến đường sắt bắt đầu từ nút giao Văn Cao – Hoàng Hoa Thám, đi dọc đại lộ Thăng Long và kết "
              "thúc tại khu công nghệ cao Hòa Lạc. Trong đó, đoạn đi ngầm dài khoảng 6,5 km, đoạn trên cao và "
              "đi bằng dài gần 32 km."),
        ("figure", "Phối cảnh nhà ga Ngọc Khánh trên tuyến đường sắt số 5. (Ảnh: TTXVN)"),
        ("caption", "Lễ khởi công tuyến đường sắt số 5 sáng 14/5. (Ảnh: Minh Anh)"),
        ("p", "Theo Ban quản lý đường sắt đô thị Hà Nội, tuyến có 20 nhà ga, trong đó 7 ga ngầm. Đoàn tàu chạy "
              "với tốc độ tối đa 120 km/h, thời gian đi hết tuyến khoảng 35 phút."),
        ("ad", AD_TEXT),
        ("p", "Phó chủ tịch UBND thành phố Dương Đức Tuấn cho biết dự án được kỳ vọng giảm ùn tắc ở cửa ngõ phía "
              "tây, kết nối trung tâm với chuỗi đô thị vệ tinh Hòa Lạc – Xuân Mai. Thành phố đặt mục tiêu hoàn "
              "thành tuyến vào năm 2030."),
        ("p", "Hà Nội hiện vận hành hai tuyến đường sắt đô thị là Cát Linh – Hà Đông và đoạn trên cao Nhổn – ga "
              "Hà Nội, chuyên chở trung bình hơn 50.000 lượt khách mỗi ngày."),
    ),
    related=(
        "Đề xuất đầu tư 14 tuyến metro trước năm 2035",
        "Giá vé tàu Nhổn – ga Hà Nội có gì mới",
        "TP HCM chạy thử metro Bến Thành – Suối Tiên",
    ),
)

RICE = Story(
    path="/kinh-doanh/gia-gao-xuat-khau-viet-nam-cao-nhat-the-gioi-4712399.html",
    section="Kinh doanh",
    title="Giá gạo xuất khẩu của Việt Nam cao nhất thế giới",
    published="2024-05-13T15:05:00+07:00",
    author="Thanh Hương",
    sapo=(
        "Giá gạo 5% tấm của Việt Nam được chào bán ở mức 585 USD mỗi tấn trong tuần này, cao hơn gạo cùng "
        "loại của Thái Lan và Pakistan."
    ),
    body=(
        ("p", "Theo Hiệp hội Lương thực Việt Nam (VFA), trong bốn tháng đầu năm Việt Nam xuất khẩu khoảng 3,3 "
              "triệu tấn gạo, thu về gần 2,1 tỷ USD, tăng 36% về giá trị so với cùng kỳ năm trước."),
        ("figure", "Nông dân thu hoạch lúa đông xuân ở Đồng Tháp. (Ảnh: Vũ Sinh/TTXVN)"),
        ("p", "Philippines tiếp tục là thị trường lớn nhất, chiếm hơn 40% lượng gạo xuất khẩu. Các doanh nghiệp "
              "cho biết nhu cầu từ Indonesia và châu Phi tăng mạnh, trong khi nguồn cung trong nước dồi dào nhờ "
              "vụ đông xuân được mùa ở Đồng bằng sông Cửu Long."),
        ("ad", AD_TEXT),
        ("p", "Bộ Công Thương khuyến nghị doanh nghiệp ký hợp đồng với giá linh hoạt và chú trọng các loại gạo "
              "thơm, gạo đặc sản để giữ giá trị xuất khẩu cao."),
    ),
    related=(
        "Xuất khẩu cà phê lập kỷ lục mới",
        "Giá lúa tại Đồng bằng sông Cửu Long tăng mạnh",
    ),
)

EXAMS = Story(
    path="/giao-duc/hon-1-trieu-thi-sinh-dang-ky-thi-tot-nghiep-thpt-4712420.html",
    section="Giáo dục",
    title="Hơn một triệu thí sinh đăng ký thi tốt nghiệp THPT 2024",
    published="2024-05-12T10:00:00+07:00",
    author="Lệ Thu",
    sapo=(
        "Bộ Giáo dục và Đào tạo cho biết cả nước có hơn 1,07 triệu thí sinh đăng ký dự thi tốt nghiệp THPT "
        "năm 2024, tăng khoảng 85.000 so với năm ngoái."
    ),
    body=(
        ("p", "Kỳ thi diễn ra trong hai ngày 27 và 28/6 với bốn bài thi gồm Ngữ văn, Toán, Ngoại ngữ và một bài "
              "thi tổ hợp Khoa học tự nhiên hoặc Khoa học xã hội."),
        ("figure", "Thí sinh làm thủ tục dự thi tại Hà Nội năm ngoái. (Ảnh: TTXVN)"),
        ("p", "Theo Cục Quản lý chất lượng, 98% thí sinh đăng ký trực tuyến; số còn lại được nhà trường hỗ trợ "
              "đăng ký trực tiếp."),
        ("ad", AD_TEXT),
        ("p", "Kết quả thi dự kiến công bố lúc 8h ngày 17/7, là căn cứ xét tốt nghiệp và tuyển sinh đại học."),
    ),
    related=("Những điểm mới của kỳ thi tốt nghiệp THPT 2025",),
)

COLD = Story(  # served in windows-1258, as older Vietnamese sites still are
    path="/cu/ha-noi-ret-dam-nhiet-do-xuong-12-do-c-4712500.html",
    section="Thời tiết",
    title="Hà Nội rét đậm, nhiệt độ xuống 12 độ C",
    published="2024-01-20T06:00:00+07:00",
    author="Hoàng Long",
    sapo="Không khí lạnh tăng cường khiến nhiệt độ thấp nhất ở Hà Nội xuống 12 độ C vào sáng mai.",
    body=(
        ("p", "Trung tâm Dự báo khí tượng thủy văn quốc gia cho biết vùng núi Bắc Bộ có nơi dưới 5 độ C, "
              "khả năng xuất hiện băng giá ở Sa Pa và Mẫu Sơn."),
        ("p", "Người dân được khuyến cáo giữ ấm cho trẻ nhỏ, người già và che chắn chuồng trại cho gia súc."),
    ),
    related=("Miền Bắc sắp đón đợt rét mới",),
)

PRIVATE = Story(  # under a folder robots.txt keeps out
    path="/rieng/bai-noi-bo-4712600.html",
    section="Nội bộ",
    title="Thông báo nội bộ của tòa soạn",
    published="2024-05-01T09:00:00+07:00",
    author="Ban biên tập",
    sapo="Tòa soạn thông báo lịch trực Tết cho phóng viên và biên tập viên.",
    body=(("p", "Lịch trực được gửi qua thư điện tử tới từng ban."),),
    related=(),
)

# RAIL as another paper republished the wire copy: the same text at another address, with its own
# section, byline, time and "Tin liên quan" block.
RAIL_COPY = replace(
    RAIL,
    path="/xa-hoi/khoi-cong-duong-sat-do-thi-van-cao-hoa-lac-9912001.html",
    section="Xã hội",
    published="2024-05-14T10:05:00+07:00",
    author="Theo TTXVN",
    related=("Giá vàng hôm nay tăng mạnh", "Lịch thi tốt nghiệp THPT năm nay"),
)

STORIES = {story.path: story for story in (RAIL, RICE, EXAMS, COLD, PRIVATE, RAIL_COPY)}

FEED = "/rss/tin-moi-nhat.rss"
REDIRECT = "/tin/4712345"  # 301 to RAIL, with tracking parameters as a share link has
LOOP = "/vong/1"  # redirects to itself, for ever
MISSING = "/thoi-su/bai-da-go-4712999.html"  # 404
SLOW = "/cham/tin-nong-4713000.html"
HUGE = "/lon/tong-hop-4713001.html"
IMAGE = "/anh/toan-canh-ga-ngoc-khanh.png"
PDF = "/tai-lieu/bao-cao-thuong-nien-2023.pdf"
ROBOTS = "User-agent: *\nDisallow: /rieng/\n"

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082"
)
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def to_cp1258(text: str) -> bytes:
    """Vietnamese in windows-1258: the code page has the letters â ê ô ơ ư ă đ but writes the five
    tones as combining marks after them, so a precomposed 'ộ' becomes 'ô' + dot below."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = []
    for ch in text:
        try:
            out.append(ch.encode("cp1258"))
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
            out.append((base + "".join(c for c in parts if c in tones)).encode("cp1258"))
    return b"".join(out)


WEEKDAYS = ["Thứ hai", "Thứ ba", "Thứ tư", "Thứ năm", "Thứ sáu", "Thứ bảy", "Chủ nhật"]


def dateline(published: str) -> str:
    """'Thứ ba, 14/5/2024, 08:30 (GMT+7)', as the page prints it under the headline."""
    moment = dt.datetime.fromisoformat(published)
    return f"{WEEKDAYS[moment.weekday()]}, {moment.day}/{moment.month}/{moment.year}, {moment:%H:%M} (GMT+7)"


def article_html(base: str, story: Story, charset: str = "utf-8") -> str:
    """The page as a CMS writes it: head metadata, header menu, article, ads, related block, footer."""
    e = html.escape
    url = base + story.path
    nav = "".join(f'<li><a href="/{i}">{e(name)}</a></li>' for i, name in enumerate(NAVIGATION))
    body = []
    for kind, text in story.body:
        if kind == "p":
            body.append(f'<p class="Normal">{e(text)}</p>')
        elif kind == "caption":
            body.append(f'<p style="text-align:center"><em>{e(text)}</em></p>')
        elif kind == "figure":
            body.append(
                f'<figure class="tplCaption"><div class="fig-picture"><img src="/anh/{len(body)}.jpg" alt="{e(text)}"></div>'
                f'<figcaption><p class="Image">{e(text)}</p></figcaption></figure>'
            )
        else:
            body.append(f'<div class="box-banner ads" id="ads-{len(body)}"><span>Quảng cáo</span><a href="/qc">{e(text)}</a></div>')
    related = "".join(f'<li><a href="/lien-quan/{i}.html">{e(title)}</a></li>' for i, title in enumerate(story.related))
    related_block = (
        f'<section class="box-related"><h3 class="title-box">Tin liên quan</h3><ul>{related}</ul></section>' if related else ""
    )
    return f"""<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="{charset}">
<title>{e(story.title)} - {e(SITE_NAME)}</title>
<meta name="description" content="{e(story.sapo)}">
<link rel="canonical" href="{e(url)}">
<meta property="og:type" content="article">
<meta property="og:site_name" content="{e(SITE_NAME)}">
<meta property="og:title" content="{e(story.title)}">
<meta property="og:url" content="{e(url)}">
<meta property="article:published_time" content="{story.published}">
<meta property="article:section" content="{e(story.section)}">
<meta name="author" content="{e(story.author)}">
</head>
<body>
<header class="header"><div class="logo"><a href="/">{e(SITE_NAME)}</a></div>
<nav class="main-nav"><ul>{nav}</ul></nav>
<div class="top-search"><input placeholder="Tìm kiếm"><span>Đăng nhập</span></div></header>
<div class="banner-top ads"><span>Quảng cáo</span><a href="/qc">{e(AD_TEXT)}</a></div>
<main class="container">
<div class="breadcrumb"><a href="/">Trang chủ</a> › <a href="/{e(story.section)}">{e(story.section)}</a></div>
<article class="fck_detail">
<h1 class="title-detail">{e(story.title)}</h1>
<span class="date">{dateline(story.published)}</span>
<p class="description">{e(story.sapo)}</p>
{"".join(body)}
<p class="author_mail"><strong>{e(story.author)}</strong></p>
</article>
<div class="social"><a href="/share">Chia sẻ</a> <a href="/copy">Sao chép liên kết</a></div>
{related_block}
<aside class="sidebar"><h3>Đọc nhiều</h3><ul><li><a href="/doc-nhieu/1.html">Giá vàng hôm nay tăng mạnh</a></li>
<li><a href="/doc-nhieu/2.html">Lịch nghỉ lễ 30/4 và 1/5</a></li></ul></aside>
</main>
<footer class="footer"><p>{e(FOOTER)}</p></footer>
</body>
</html>
"""


def feed_xml(base: str) -> str:
    items = []
    for story in (RICE, EXAMS):
        items.append(
            f"""<item>
<title>{html.escape(story.title)}</title>
<link>{base}{story.path}?utm_source=rss&amp;utm_medium=feed</link>
<guid isPermaLink="false">{story.path.rsplit("-", 1)[-1]}</guid>
<description>{html.escape(story.sapo)}</description>
<pubDate>{"Mon, 13 May 2024 15:05:00 +0700" if story is RICE else "Sun, 12 May 2024 10:00:00 +0700"}</pubDate>
</item>"""
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
<channel>
<title>{html.escape(SITE_NAME)} - Tin mới nhất</title>
<link>{base}/</link>
<description>Tin mới nhất</description>
<language>vi</language>
{"".join(items)}
</channel>
</rss>
"""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet in tests
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        base = self.server.base
        self.server.requests.append(path)
        story = STORIES.get(path)
        if path == "/robots.txt":
            self._send(200, "text/plain; charset=utf-8", ROBOTS.encode())
        elif story is COLD:
            page = article_html(base, story, charset="windows-1258")
            self._send(200, "text/html; charset=windows-1258", to_cp1258(page))
        elif story is not None:
            self._send(200, "text/html; charset=utf-8", article_html(base, story).encode())
        elif path == FEED:
            self._send(200, "application/rss+xml; charset=utf-8", feed_xml(base).encode())
        elif path == REDIRECT:
            self._redirect(301, f"{base}{RAIL.path}?utm_source=zalo&utm_campaign=share")
        elif path.startswith("/vong/"):
            n = int(path.rsplit("/", 1)[-1])
            self._redirect(302, f"/vong/{n + 1}")
        elif path == SLOW:
            time.sleep(SLOW_SECONDS)
            self._send(200, "text/html; charset=utf-8", article_html(base, RAIL).encode())
        elif path == HUGE:
            self._huge()
        elif path == IMAGE:
            self._send(200, "image/png", PNG)
        elif path == PDF:
            self._send(200, "application/pdf", PDF_BYTES)
        else:
            self._send(404, "text/html; charset=utf-8", "<html><body><h1>Không tìm thấy trang</h1></body></html>".encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (the slow page)
            pass

    def _redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _huge(self) -> None:
        """A page with no Content-Length, streamed until the connection closes: only a reader that
        counts what it reads can stop it."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"<html><body><article>")
            paragraph = ("<p>" + RAIL.sapo + "</p>\n").encode()
            sent = 0
            while sent < HUGE_BYTES:
                self.wfile.write(paragraph)
                sent += len(paragraph)
            self.wfile.write(b"</article></body></html>")
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # the slow page's thread may still be sleeping when a test ends
    base = ""
    requests: list[str]


class NewsSite:
    """The site, serving in a thread on a free port of 127.0.0.1 while in a `with` block."""

    PAGE = RAIL.path
    FEED = FEED

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.requests = []
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.base = self.base
        self._thread = threading.Thread(target=self._server.serve_forever, name="news-site", daemon=True)

    @property
    def requests(self) -> list[str]:
        """The paths asked for, in order (robots.txt included)."""
        return self._server.requests

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> NewsSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


if __name__ == "__main__":  # look at the pages in a browser: python -m tests.index.news_site
    with NewsSite() as site:
        print(f"Serving on {site.base}/ — pages: " + ", ".join(site.url(p) for p in STORIES) + "; Ctrl+C stops it.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
