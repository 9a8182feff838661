"""What the front ends say around an answer, in the question's language: Vietnamese (typed with or
without diacritics) or English. One table for the CLI and Telegram; the web page keeps its own copy
in bot/web/app.js, where it is needed before any answer arrives."""

from __future__ import annotations

from dataclasses import dataclass

from newsqa.retrieval.models import Answer
from newsqa.retrieval.query import is_vietnamese


@dataclass(frozen=True)
class Labels:
    sources: str
    paragraph: str
    also_retrieved: str  # the passages the search found that the answer does not cite
    also_published: str  # before the other sites that ran a cited story
    full_sources: str
    not_found_hint: str
    no_answer_yet: str
    slow_down: str
    refused: str
    unavailable: str
    empty_question: str
    button: str
    expired: str
    read_with: str  # the line over an answer read as a follow-up, before the earlier question
    new_conversation: str  # what /new says
    chat_help: str  # `newsqa chat`'s greeting and /help
    thanks: str  # Telegram's toast after a 👍/👎 press on an answer


VI = Labels(
    sources="Nguồn",
    paragraph="đoạn",
    also_retrieved="Cũng tìm thấy",
    also_published="Cũng đăng trên",
    full_sources="Đoạn trích đầy đủ",
    not_found_hint="Gõ /articles để xem các bài báo tôi có, hoặc hỏi theo cách khác.",
    no_answer_yet="Chưa có câu trả lời nào trong cuộc trò chuyện này. Hãy đặt một câu hỏi trước.",
    slow_down="Bạn hỏi hơi nhanh. Vui lòng chờ một chút rồi hỏi tiếp.",
    refused="Xin lỗi, bot này chỉ phục vụ một số cuộc trò chuyện nhất định.",
    unavailable="Xin lỗi, kho bài báo hiện chưa sẵn sàng. Vui lòng thử lại sau.",
    empty_question="Hãy gửi một câu hỏi về các bài báo, ví dụ: Nga yêu cầu NATO những gì?",
    button="📚 Nguồn / Sources",
    expired="Câu trả lời này không còn được lưu; hãy hỏi lại.",
    read_with="↪ Đọc cùng câu hỏi trước",
    new_conversation="Đã bắt đầu cuộc trò chuyện mới: câu hỏi tiếp theo sẽ được đọc riêng, không nối với câu trước.",
    thanks="Cảm ơn bạn đã góp ý!",
    chat_help=(
        "Hỏi về các bài báo; câu hỏi nối tiếp (\"vì sao?\", \"còn Mỹ thì sao?\") được đọc cùng câu hỏi trước.\n"
        "/new bắt đầu cuộc trò chuyện mới, /quit hoặc Ctrl-D để thoát."
    ),
)
EN = Labels(
    sources="Sources",
    paragraph="paragraph",
    also_retrieved="Also retrieved",
    also_published="Also published by",
    full_sources="Full passages",
    not_found_hint="Send /articles to see which articles I know, or ask in another way.",
    no_answer_yet="There is no answer in this chat yet. Ask a question first.",
    slow_down="You are asking a little fast. Please wait a moment before the next question.",
    refused="Sorry, this bot only serves certain chats.",
    unavailable="Sorry, the articles are not available right now. Please try again later.",
    empty_question="Send me a question about the articles, for example: What did Russia demand from NATO?",
    button="📚 Nguồn / Sources",
    expired="This answer is no longer stored; please ask again.",
    read_with="↪ Read with your earlier question",
    new_conversation="Started a new conversation: your next question is read on its own.",
    thanks="Thanks for the feedback!",
    chat_help=(
        "Ask about the articles; a follow-up (\"why?\", \"what about Britain?\") is read with the question before it.\n"
        "/new starts a new conversation, /quit or Ctrl-D leaves."
    ),
)


def labels_in(language: str | None) -> Labels:
    """The labels for a language code: an answer's "vi"/"en", Telegram's "vi-VN", a locale's "vi_VN.UTF-8"."""
    return VI if (language or "").lower().startswith("vi") else EN


def labels_for(text: str) -> Labels:
    """The labels for a person who wrote `text` (a question, a command's text)."""
    return VI if is_vietnamese(text) else EN


def answer_labels(answer: Answer) -> Labels:
    """The labels around `answer`: the language the service read its question in."""
    return labels_in(answer.language)
