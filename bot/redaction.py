"""Keeping secrets out of logs: one filter, used by the Telegram bot and by the HTTP server's access log.

Two kinds of secret are masked wherever they appear in a record (message, arguments, traceback):

- values known at start-up (the bot token, the webhook secret), registered with `install_redaction`:
  httpx logs every Bot API URL, which contains the token, and PTB puts it in some exception messages;
- values of query parameters named like secrets (`?api_key=…`, `&token=…`): a client may put its API
  key in a URL, and uvicorn's access log writes every URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"
# Shorter "secrets" would blank out ordinary words.
MIN_SECRET_CHARS = 8
# A query parameter whose name says it holds a secret: the name (and `=`) is kept, the value masked.
SECRET_PARAM = re.compile(r"(?i)([?&][^=&#\s]*(?:key|token|secret|password|auth)[^=&#\s]*=)[^&#\s]*")


class RedactSecrets(logging.Filter):
    """Masks the registered secrets and secret query values in a record; never drops a record.

    String arguments are masked one by one, so formatters that read `record.args` themselves (uvicorn's
    access log unpacks them) keep working; only when a secret survives in the formatted message (inside
    a non-string argument) is the record collapsed to its masked message.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= MIN_SECRET_CHARS:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return SECRET_PARAM.sub(rf"\1{MASK}", text) if "=" in text else text

    def filter(self, record: logging.LogRecord) -> bool:
        record.args = self._redact_args(record.args)
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            message = str(record.msg)
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _redact_args(self, args: Any) -> Any:
        if isinstance(args, tuple):
            return tuple(self.redact(a) if isinstance(a, str) else a for a in args)
        if isinstance(args, Mapping):
            return {k: self.redact(v) if isinstance(v, str) else v for k, v in args.items()}
        return args


# One per process: the record factory and uvicorn's access-log filter share the registered secrets.
REDACTOR = RedactSecrets()
_factory_installed = False


def shared_filter() -> RedactSecrets:
    """The process's filter, for logging configurations given as dicts (uvicorn's `log_config`)."""
    return REDACTOR


def install_redaction(*secrets: str) -> None:
    """Registers `secrets` and masks them in every record of every logger from now on.

    Installed as a log-record factory, the filter sees each record before any handler (including
    ones added later, like pytest's) formats it.
    """
    global _factory_installed
    for secret in secrets:
        REDACTOR.add(secret)
    if not _factory_installed:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            REDACTOR.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True
    # One INFO line per request, each with the token in its URL: not worth having even redacted.
    for name in ("httpx", "httpcore"):
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
