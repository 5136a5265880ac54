"""Logging set-up with a filter that masks anything shaped like an ID number or a phone."""

from __future__ import annotations

import logging
import re
import sys

# 18-character resident ID numbers and mainland mobiles, wherever they appear in a line.
_ID_RE = re.compile(r"(?<![0-9])[1-9]\d{5}(?:19|20)\d{2}\d{4}\d{3}[\dXx](?![0-9])")
_PHONE_RE = re.compile(r"(?<![0-9])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?![0-9])")


def redact(text: str) -> str:
    return _PHONE_RE.sub("[phone]", _ID_RE.sub("[id-number]", text))


class RedactingFilter(logging.Filter):
    """Rewrite each record so neither its message nor its traceback carries personal data."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, which holds the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
