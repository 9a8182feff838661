"""bot/redaction.py: the one filter that keeps the bot token, the webhook secret and secret query
values out of every log, the bot's and the HTTP server's access log alike."""

from __future__ import annotations

import logging
import logging.config

import pytest

from newsqa.bot.http import server as http_server
from newsqa.bot.redaction import REDACTOR, RedactSecrets, install_redaction

TOKEN = "4242424242:AAFakeTokenForTheTestsOnly_abc-XYZ0123"


def test_redaction_filter_hides_secrets_in_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction(TOKEN)
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info('HTTP Request: POST http://127.0.0.1/bot%s/getMe "HTTP/1.1 200 OK"', TOKEN)
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
    except RuntimeError:
        logging.getLogger("telegram.ext.Application").exception("failed")
    assert TOKEN not in caplog.text and caplog.text.count("[REDACTED]") == 2
    assert REDACTOR.redact(f"x{TOKEN}y") == "x[REDACTED]y"


def test_secrets_in_query_strings_never_reach_the_access_log():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/search?q=nga&api_key=abc123&token=t0k", "1.1", 200), None)
    assert RedactSecrets().filter(record)
    line = record.getMessage()
    assert "abc123" not in line and "t0k" not in line and "q=nga" in line and "api_key=[REDACTED]" in line
    # Still five arguments: uvicorn's access formatter unpacks them itself.
    assert isinstance(record.args, tuple) and len(record.args) == 5
    assert http_server.log_config()["loggers"]["uvicorn.access"]["filters"] == ["redact_secrets"]


def test_the_access_log_filter_also_masks_registered_secrets():
    """One filter for the process: a secret registered by the bot is masked in access-log paths too."""
    config = http_server.log_config()
    config["handlers"] = {}  # build the filter only, through logging's own dict configuration
    config["loggers"] = {}
    factory = logging.config.DictConfigurator(config)
    redactor = factory.configure_filter(config["filters"]["redact_secrets"])
    redactor.add("a-registered-secret-0123")
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/x/a-registered-secret-0123", "1.1", 200), None)
    redactor.filter(record)
    assert "a-registered-secret-0123" not in record.getMessage() and len(record.args) == 5
