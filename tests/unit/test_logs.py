"""Redaction: ID numbers and mobiles never reach a log line, ordinary numbers do."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import date

import pytest

from bot import logs
from bot.logs import RedactingFilter, redact
from storage.rules.identity import make_id_number, normalize_phone, parse_id_number

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


# -- every form the bot accepts, through a real logger at DEBUG (issue 11, finding 11) -------

BIRTH_ID = make_id_number("520221", date(1990, 3, 7), 12, male=True)
X_ID = next(
    number
    for seq in range(500)
    if (number := make_id_number("520221", date(1991, 5, 5), seq, male=True)).endswith("X")
)
PHONE = "13812345678"
_FULL = {ord(c): ord(c) + 0xFEE0 for c in "0123456789Xx+-()."}


def full_width(text: str) -> str:
    return text.translate(_FULL)


def id_forms(number: str) -> list[str]:
    head, birth, tail = number[:6], number[6:14], number[14:]
    forms = [
        number,
        number.lower(),
        f"{head} {birth} {tail}",
        f"{head} {birth[:4]} {birth[4:]} {tail.lower()}",
        f"{head}\t{birth}\n{tail}",
        f"{head}\u3000{birth}\u3000{tail}",
        f"{head}\u00a0{birth}\u00a0{tail}",
        f" {number} ",
        full_width(number),
        full_width(number.lower()),
        full_width(f"{head} {birth}") + f"\u3000{tail}",
        " ".join(number),
    ]
    return forms


def phone_forms(phone: str) -> list[str]:
    a, b, c = phone[:3], phone[3:7], phone[7:]
    return [
        phone,
        f"{a} {b} {c}",
        f"{a}-{b}-{c}",
        f"{a}.{b}.{c}",
        f"({a}) {b}-{c}",
        f"{a}\u3000{b}\u3000{c}",
        f"{a}\u00a0{b}\u00a0{c}",
        f"\u200e{a} {b} {c}\u200f",
        f"{a}\u200b{b}\u200b{c}",
        f"+86 {a} {b} {c}",
        f"+86-{a}-{b}-{c}",
        f"+86{phone}",
        f"0086 {phone}",
        f"(+86){phone}",
        f"(+86) {a}-{b}-{c}",
        f"86 {phone}",
        f"86{phone}",
        full_width(phone),
        full_width(f"+86 {a}-{b}-{c}"),
        full_width(f"({a}){b}") + f"\u3000{c}",
    ]


TODAY = date(2026, 12, 6)
ID_FORMS = [f for number in (BIRTH_ID, X_ID) for f in id_forms(number)]
PHONE_FORMS = phone_forms(PHONE)


def test_the_forms_are_the_ones_the_bot_accepts() -> None:
    """The lists above hold only what storage.rules.identity takes as an ID or a mobile."""
    for form in ID_FORMS:
        assert parse_id_number(form, today=TODAY).number in (BIRTH_ID, X_ID), form
    for form in PHONE_FORMS:
        assert normalize_phone(form) == PHONE, form


def _unescape(text: str) -> str:
    """Undo repr/JSON escapes and full-width forms, as a reader of the log could."""
    text = re.sub(
        r"\\+u([0-9a-fA-F]{4})|\\+x([0-9a-fA-F]{2})",
        lambda m: chr(int(m.group(1) or m.group(2), 16)),
        text,
    )
    return text.translate({cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)})


def assert_no_secret(output: str) -> None:
    digits = re.sub(r"[^0-9Xx]", "", _unescape(output)).upper()
    for secret in (BIRTH_ID, X_ID, PHONE):
        assert secret[:-1] not in digits, output
    assert "[id-number]" in output or "[phone]" in output


@pytest.fixture
def root_log() -> Iterator[io.StringIO]:
    """logs.configure("DEBUG") as `cadrebot run` does, writing to a StringIO."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    named = {n: logging.getLogger(n).level for n in ("httpx", "apscheduler")}
    stream = io.StringIO()
    try:
        logs.configure("DEBUG")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in named.items():
            logging.getLogger(name).setLevel(level)


def _update_payload(text: str) -> dict[str, object]:
    return {
        "update_id": 424242,
        "message": {
            "message_id": 17,
            "date": 1765000000,
            "chat": {"id": 5001, "type": "private"},
            "from": {"id": 5001, "is_bot": False, "first_name": "张"},
            "text": text,
        },
    }


@pytest.mark.parametrize("form", ID_FORMS + PHONE_FORMS)
def test_every_accepted_form_is_masked_in_every_log_shape(
    form: str, root_log: io.StringIO
) -> None:
    from telegram import Update

    text = f"身份证号{form}，请核对"
    payload = _update_payload(text)
    update = Update.de_json(payload, None)
    checks = [
        (logging.getLogger("cadrebot.forms"), "answer %s", (form,)),
        (logging.getLogger("cadrebot.forms"), f"answer {form}", ()),
        # PTB's own DEBUG lines: the Update's repr, the getUpdates result, the webhook body.
        (logging.getLogger("telegram.ext.Application"), "Processing update %s", (update,)),
        (
            logging.getLogger("telegram.Bot"),
            "Call to Bot API endpoint `%s` finished with return value `%s`",
            ("getUpdates", [payload]),
        ),
        (
            logging.getLogger("telegram.ext._utils.webhookhandler"),
            "Webhook received data: %s",
            (json.dumps(payload),),
        ),
        (
            logging.getLogger("telegram.ext._utils.webhookhandler"),
            "Webhook received data: %s",
            (json.dumps(payload, ensure_ascii=False),),
        ),
        (
            logging.getLogger("telegram.Bot"),
            "Calling Bot API endpoint `%s` with parameters `%s`",
            ("sendMessage", {"chat_id": 5001, "text": text}),
        ),
    ]
    for logger, message, args in checks:
        root_log.seek(0)
        root_log.truncate()
        logger.debug(message, *args)
        assert_no_secret(root_log.getvalue())
    root_log.seek(0)
    root_log.truncate()
    try:
        raise ValueError(repr(update))
    except ValueError:
        logging.getLogger("telegram.ext.Application").debug("failed", exc_info=True)
    assert_no_secret(root_log.getvalue())


def test_neighbouring_secrets_are_each_masked() -> None:
    assert redact(f"{BIRTH_ID} {PHONE}") == "[id-number] [phone]"
    assert redact(f"a{full_width(PHONE)}b") == "a[phone]b"
