"""Redaction: ID numbers and mobiles never reach a log line, ordinary numbers do."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from bot.logs import RedactingFilter, redact

ID_NUMBER = "110105194912310021"
ID_NUMBER_X = "11010519491231002X"


@pytest.mark.parametrize(
    "secret",
    [
        ID_NUMBER,
        ID_NUMBER_X,
        "11010519491231002x",
        "440308200001011234",
    ],
)
def test_id_numbers_are_masked(secret: str) -> None:
    for text in (secret, f"id={secret}", f"身份证号{secret}，请核对", f"'{secret}'"):
        masked = redact(text)
        assert secret not in masked
        assert "[id-number]" in masked
        assert secret[6:14] not in masked  # not even the birth date survives


@pytest.mark.parametrize(
    "phone",
    [
        "13812345678",
        "+86 138-1234-5678",
        "+8613812345678",
        "86 13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "19912345678",
    ],
)
def test_mobiles_are_masked(phone: str) -> None:
    assert redact(f"call {phone} now") == "call [phone] now"
    assert redact(f"手机号：{phone}。") == "手机号：[phone]。"


@pytest.mark.parametrize(
    "text",
    [
        "update 123456789 handled",
        "user 5123456789 pressed a button",
        "chat -1001234567890 joined",
        "2024-05-01 12:30:45,123 INFO",
        "20240501",
        "took 1234 ms, 56789 bytes",
        "12812345678",  # 11 digits, but no mobile prefix starts with 12
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "1101051949123100211",  # 19 digits
        "version 1.38.12345678",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_several_secrets_in_one_line() -> None:
    line = f"{ID_NUMBER} / 13812345678 / update 987654321 / {ID_NUMBER_X}"
    assert redact(line) == "[id-number] / [phone] / update 987654321 / [id-number]"


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger whose one handler redacts and writes to a StringIO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.unit.test_logs.capture")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_filter_masks_message_arguments(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("person %s phone %s update %d", ID_NUMBER, "13812345678", 123456789)
    output = stream.getvalue()
    assert ID_NUMBER not in output
    assert "13812345678" not in output
    assert (
        output
        == "INFO tests.unit.test_logs.capture: person [id-number] phone [phone] update 123456789\n"
    )


def test_filter_masks_the_traceback(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise ValueError(f"duplicate id {ID_NUMBER_X} for phone 138 1234 5678")
    except ValueError:
        logger.exception("saving failed for %s", ID_NUMBER)
    output = stream.getvalue()
    assert "Traceback (most recent call last)" in output
    assert "ValueError: duplicate id [id-number] for phone [phone]" in output
    assert ID_NUMBER not in output
    assert ID_NUMBER_X not in output
    assert "1234 5678" not in output


def test_filter_masks_chained_tracebacks(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        try:
            raise KeyError(ID_NUMBER)
        except KeyError as exc:
            raise RuntimeError("lookup failed") from exc
    except RuntimeError as exc:
        logger.error("failed", exc_info=exc)
    output = stream.getvalue()
    assert "KeyError" in output and "RuntimeError: lookup failed" in output
    assert ID_NUMBER not in output


def test_percent_signs_survive_redaction(capture: tuple[logging.Logger, io.StringIO]) -> None:
    """The filter formats the message once; a '%' in an argument is not formatted again."""
    logger, stream = capture
    logger.info("progress %s", "50%d done")
    assert stream.getvalue().endswith(": progress 50%d done\n")


def test_configure_installs_a_redacting_root_handler() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    named = {n: logging.getLogger(n).level for n in ("httpx", "apscheduler")}
    try:
        logs.configure("DEBUG")
        assert root.level == logging.DEBUG
        assert len(root.handlers) == 1
        assert any(isinstance(f, RedactingFilter) for f in root.handlers[0].filters)
        assert logging.getLogger("httpx").level == logging.WARNING
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in named.items():
            logging.getLogger(name).setLevel(level)
