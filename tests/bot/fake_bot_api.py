"""A fake Telegram Bot API server on 127.0.0.1, for running the real python-telegram-bot against.

It speaks the parts of the Bot API the bot uses (getMe, getUpdates with offset and long-poll
timeout, sendMessage, editMessageText, editMessageReplyMarkup, sendChatAction, answerCallbackQuery,
setWebhook, deleteWebhook, getWebhookInfo, setMyCommands), checks Telegram HTML, the 4,096-character
limit and the 64-byte limit of a button's callback data the way Telegram does, records every call,
and can inject faults into the next N calls.

Runs in a thread (http.server), so the event loop under test is never blocked by it.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_USER = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "NewsQA",
    "username": "newsqa_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64  # bytes of an inline button's callback_data
# Parameters PTB sends as raw strings; every other parameter is JSON-encoded.
STRING_PARAMS = frozenset(
    {"text", "parse_mode", "action", "callback_query_id", "url", "secret_token", "caption", "inline_message_id"}
)
FAULTS = ("429", "500", "malformed", "drop", "bad_html")


# -- Telegram's HTML, strictly ---------------------------------------------------------------------

ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji",
     "code", "pre", "blockquote"}
)
_HTML_TOKEN = re.compile(
    r"<(?P<close>/)?(?P<name>[A-Za-z][A-Za-z0-9-]*)(?P<attrs>(?:\s+[A-Za-z-]+(?:=\"[^\"]*\"|='[^']*'|=[^\s>]+)?)*)\s*>"
    r"|(?P<entity>&(?:lt|gt|amp|quot|#\d+|#x[0-9A-Fa-f]+);)"
    r"|(?P<bad>[<>&])"
)


class HtmlError(ValueError):
    pass


def parse_telegram_html(text: str) -> str:
    """The visible text of Telegram HTML; raises HtmlError where Telegram says "can't parse entities"."""
    stack: list[str] = []
    visible: list[str] = []
    position = 0
    for match in _HTML_TOKEN.finditer(text):
        visible.append(text[position : match.start()])
        position = match.end()
        if match.group("bad"):
            raise HtmlError(f"unexpected '{match.group('bad')}' at byte offset {match.start()}")
        if match.group("entity"):
            visible.append(html.unescape(match.group("entity")))
            continue
        name = match.group("name").lower()
        if name not in ALLOWED_TAGS:
            raise HtmlError(f"unsupported start tag \"{name}\" at byte offset {match.start()}")
        if match.group("close"):
            if not stack or stack[-1] != name:
                raise HtmlError(f"unmatched end tag at byte offset {match.start()}, expected \"</{stack[-1] if stack else ''}>\"")
            stack.pop()
        else:
            stack.append(name)
    visible.append(text[position:])
    if stack:
        raise HtmlError(f"can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(visible)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# -- the server --------------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int  # HTTP status answered; 0 for a dropped connection
    fault: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Fault:
    kind: str
    methods: frozenset[str] | None  # None: any method
    remaining: int
    retry_after: int


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class FakeBotApi:
    def __init__(self, token: str, *, max_long_poll_s: float = 2.0) -> None:
        self.token = token
        self.max_long_poll_s = max_long_poll_s
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] = {"url": ""}
        self._cond = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id = 1000
        self._chats: dict[int, dict[str, Any]] = {}
        self._sent: dict[tuple[int, int], dict[str, Any]] = {}  # the bot's messages, for edits
        self._faults: list[_Fault] = []
        self._closed = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeBotApi:
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What ApplicationBuilder().base_url() wants: the token is appended to it."""
        return f"{self.root_url}/bot"

    # -- what the test does

    def fail_next(
        self, kind: str, count: int = 1, methods: Iterable[str] | None = ("sendMessage",), retry_after: int = 1
    ) -> None:
        """Answer the next `count` calls to `methods` (None: any method) with a fault instead."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        with self._cond:
            self._faults.append(_Fault(kind, None if methods is None else frozenset(methods), count, retry_after))

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            update = {"update_id": self._next_update_id, **update}
            self._next_update_id += 1
            self._updates.append(update)
            self._cond.notify_all()
        return update

    def chat(self, chat_id: int, chat_type: str = "private") -> dict[str, Any]:
        with self._cond:
            if chat_id not in self._chats:
                info: dict[str, Any] = {"id": chat_id, "type": chat_type}
                if chat_type == "private":
                    info["first_name"] = f"User{chat_id}"
                else:
                    info["title"] = f"Group {chat_id}"
                self._chats[chat_id] = info
            return self._chats[chat_id]

    def push_message(self, text: str, **kwargs: Any) -> dict[str, Any]:
        """Queue a user's text message for getUpdates; see `message` for the arguments."""
        message = self.message(text, **kwargs)
        self.push_update({"message": message})
        return message

    def message(
        self,
        text: str,
        *,
        chat_id: int = 100,
        user_id: int | None = None,
        chat_type: str = "private",
        reply_to: dict[str, Any] | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user's text message; bot_command and mention entities are added as Telegram would."""
        user_id = chat_id if user_id is None else user_id
        message: dict[str, Any] = {
            "message_id": self._message_id(),
            "date": int(time.time()),
            "chat": self.chat(chat_id, chat_type),
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": "vi"},
            "text": text,
        }
        found = entities if entities is not None else auto_entities(text)
        if found:
            message["entities"] = found
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return message

    def push_callback(self, data: str, message: dict[str, Any], *, user_id: int | None = None) -> str:
        """A press on an inline button of `message` (one the bot sent)."""
        chat_id = message["chat"]["id"]
        user_id = chat_id if user_id is None else user_id
        query_id = f"cq{self._message_id()}"
        self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
                    "message": message,
                    "chat_instance": f"ci{chat_id}",
                    "data": data,
                }
            }
        )
        return query_id

    # -- what the test checks

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """sendMessage calls that succeeded, oldest first (their params plus the created message)."""
        return [
            c.params
            for c in self.calls_to("sendMessage")
            if c.status == 200 and c.fault is None and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def rejected(self) -> list[Call]:
        """Calls the fake refused on their merits (400), not because of an injected fault."""
        with self._cond:
            return [c for c in self.calls if c.status == 400 and c.fault is None]

    def edited_markup(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The reply markup of the bot's message as it stands now, after any edits."""
        with self._cond:
            return self._sent[(chat_id, message_id)].get("reply_markup")

    # -- internals

    def _message_id(self) -> int:
        with self._cond:
            self._next_message_id += 1
            return self._next_message_id

    def _take_fault(self, method: str) -> _Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.methods is None or method in fault.methods):
                    fault.remaining -= 1
                    return fault
        return None

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def handle(self, method: str, params: dict[str, Any]) -> Any:
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        return handler(params)

    def _api_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), self.max_long_poll_s)
        deadline = time.monotonic() + wait
        with self._cond:
            if offset:
                # As Telegram does: an offset confirms every update before it.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._updates[: int(params.get("limit") or 100)])

    def _check_text(self, params: dict[str, Any]) -> str:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if params.get("parse_mode") == "HTML":
            try:
                text = parse_telegram_html(text)
            except HtmlError as exc:
                raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
            if not text.strip():
                raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    def _check_markup(self, params: dict[str, Any]) -> None:
        markup = params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        visible = self._check_text(params)
        self._check_markup(params)
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        message: dict[str, Any] = {
            "message_id": self._message_id(),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": BOT_USER,
            "text": visible,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        params["_message"] = message
        with self._cond:
            self._sent[(chat_id, message["message_id"])] = message
        return message

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        self._check_markup(params)
        with self._cond:
            message = self._sent.get((params.get("chat_id"), params.get("message_id")))  # type: ignore[arg-type]
            if message is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            markup = params.get("reply_markup") or None
            if markup == message.get("reply_markup"):
                raise ApiError(400, "Bad Request: message is not modified: specified new message content and "
                               "reply markup are exactly the same as a current content and reply markup of the message")
            message = {**message, "edit_date": int(time.time()), "reply_markup": markup}
            if markup is None:
                del message["reply_markup"]
            self._sent[(message["chat"]["id"], message["message_id"])] = message
            return message

    def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        visible = self._check_text(params)
        chat_id = params.get("chat_id")
        return {
            "message_id": params.get("message_id"),
            "date": int(time.time()),
            "edit_date": int(time.time()),
            "chat": self.chat(chat_id) if isinstance(chat_id, int) else {"id": 0, "type": "private"},
            "from": BOT_USER,
            "text": visible,
        }

    def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        return True

    def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        with self._cond:
            self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token")}
        return True

    def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        with self._cond:
            self.webhook = {"url": ""}
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}


def auto_entities(text: str) -> list[dict[str, Any]]:
    """bot_command at the start and @mentions, with UTF-16 offsets as Telegram counts them."""
    found = []
    for kind, pattern in (("bot_command", r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?"), ("mention", r"@[A-Za-z0-9_]{5,}")):
        for match in re.finditer(pattern, text):
            found.append(
                {"type": kind, "offset": utf16_len(text[: match.start()]), "length": utf16_len(match.group())}
            )
    return sorted(found, key=lambda e: e["offset"])


def decode_params(raw: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in STRING_PARAMS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-long-poll (the bot stopping) is normal; anything else is a bug.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: FakeBotApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        return  # quiet: the test reads `calls`, not stderr

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _params(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = urlsplit(self.path).query
        raw = dict(parse_qsl(query, keep_blank_values=True))
        kind = self.headers.get("Content-Type", "").split(";")[0].strip()
        if kind == "application/json" and body:
            return {**raw, **json.loads(body)}
        if body:
            raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return decode_params(raw)

    def _serve(self) -> None:
        path = urlsplit(self.path).path
        match = re.fullmatch(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)", path)
        params = self._params()
        if match is None:
            self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        method = match.group("method")
        if match.group("token") != self.api.token:
            self.api._record(Call(method, params, 401))
            self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        fault = self.api._take_fault(method)
        if fault is not None:
            self._fault(method, params, fault)
            return
        try:
            result = self.api.handle(method, params)
        except ApiError as exc:
            self.api._record(Call(method, params, exc.status))
            body: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            self._reply(exc.status, body)
            return
        self.api._record(Call(method, params, 200))
        self._reply(200, {"ok": True, "result": result})

    def _fault(self, method: str, params: dict[str, Any], fault: _Fault) -> None:
        status = {"429": 429, "500": 500, "malformed": 200, "drop": 0, "bad_html": 400}[fault.kind]
        self.api._record(Call(method, params, status, fault=fault.kind))
        if fault.kind == "429":
            self._reply(429, {
                "ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {fault.retry_after}",
                "parameters": {"retry_after": fault.retry_after},
            })
        elif fault.kind == "500":
            self._reply(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
        elif fault.kind == "malformed":
            self._send_raw(200, b'{"ok": true, "result": {"message_id": ')
        elif fault.kind == "bad_html":
            self._reply(400, {
                "ok": False, "error_code": 400,
                "description": "Bad Request: can't parse entities: unsupported start tag \"x\" at byte offset 0",
            })
        else:  # drop: close the connection without a word
            self.close_connection = True

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        self._send_raw(status, json.dumps(body, ensure_ascii=False).encode("utf-8"))

    def _send_raw(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Blocking helper for code outside an event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
