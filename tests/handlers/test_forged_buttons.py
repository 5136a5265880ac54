"""Forged or stale callback data: "button expired", never a crash or an admin notice.

Every button the application registers is found by walking its handlers, so a new flow is
covered without touching this file. On PostgreSQL an id past 2**31 used to reach an INTEGER
column and fail there; a word where an id belongs failed on both engines.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import BaseHandler, CallbackQueryHandler, ConversationHandler

from handlers.chat.codec import ID, AnyOf, Button, Number, Prefix
from handlers.chat.tg import pattern_of
from storage import people
from storage.models import Role, RoleGrant
from tests.support.harness import BotHarness

ADMIN = 9801
STRANGER = 9802
STALE = "That button has expired"
HUGE = ("2147483648", "999999999999")


def _walk(handler: BaseHandler[Any, Any, Any]) -> list[BaseHandler[Any, Any, Any]]:
    if isinstance(handler, ConversationHandler):
        inner = [*handler.entry_points, *handler.fallbacks]
        for handlers in handler.states.values():
            inner.extend(handlers)
        return [h for child in inner for h in _walk(child)]
    return [handler]


def registered_buttons(bot: BotHarness) -> tuple[list[Button], list[Prefix]]:
    assert bot.app is not None
    buttons: list[Button] = []
    prefixes: list[Prefix] = []
    for group in bot.app.handlers.values():
        for handler in group:
            for leaf in _walk(handler):
                pattern = pattern_of(leaf)
                shapes = pattern.shapes if isinstance(pattern, AnyOf) else (pattern,)
                for shape in shapes:
                    if isinstance(shape, Button) and shape not in buttons:
                        buttons.append(shape)
                    elif isinstance(shape, Prefix):
                        prefixes.append(shape)
    return buttons, prefixes


def forged(button: Button) -> list[str]:
    """Huge and non-numeric numbers, a bad word, one part missing, one part too many."""
    good = [p if isinstance(p, str) else _sample(p) for p in button.parts]
    variants: list[str] = []
    for index, part in enumerate(button.parts):
        if isinstance(part, str):
            continue
        for bad in (*HUGE, "abc", "-1", "1.5", "０１"):
            if part.parse(bad) is None:
                variants.append(":".join([*good[:index], bad, *good[index + 1 :]]))
    if len(good) > 1:
        variants.append(":".join(good[:-1]))
    variants.append(":".join([*good, "1"]))
    return variants


def _sample(field: object) -> str:
    return str(field.low if isinstance(field, Number) and field.low > 0 else 1)


async def _admin(bot: BotHarness) -> None:
    async with bot.database.sessionmaker.begin() as session:
        account = await people.ensure_account(session, ADMIN, "en")
        session.add(RoleGrant(person_id=account.person_id, role=Role.ADMIN.value))


def _record_errors(bot: BotHarness) -> list[object]:
    assert bot.app is not None
    errors: list[object] = []

    async def record(_update: object, context: Any) -> None:
        errors.append(context.error)

    bot.app.add_error_handler(record)
    return errors


def test_the_codec_refuses_ids_past_the_integer_column() -> None:
    button = Button("tk", "s", ID)
    assert button.parse("tk:s:2147483647") == (2**31 - 1,)
    for data in ("tk:s:2147483648", "tk:s:999999999999", "tk:s:abc", "tk:s:0", "tk:s:01"):
        assert button.parse(data) is None, data
    assert button.parse("tk:s") is None and button.parse("tk:s:1:2") is None
    assert button.parse("tk:x:1") is None and button.parse("tk:s:１") is None


async def test_every_registered_button_answers_forged_data_as_expired(
    harness_any: BotHarness,
) -> None:
    """Pressed by an admin, who may do the most: the refusal must not depend on the role."""
    bot = harness_any
    who = ADMIN
    await _admin(bot)
    errors = _record_errors(bot)
    buttons, prefixes = registered_buttons(bot)
    # The flows that crashed before: talks, difficulties, pairing, the nomination form.
    shapes = {b.prefix for b in buttons}
    assert {"tk:s", "df:r", "pr:m", "pr:s", "nom:t", "tr:v", "lang"} <= shapes
    assert prefixes, "the flows' own stale-button catch-alls are codec patterns too"
    tried = 0
    for button in buttons:
        for data in forged(button):
            replies = await bot.press(who, data, language_code="en")
            assert replies, data
            assert STALE in replies[-1].text, (data, replies[-1].text)
            tried += 1
    for prefix in prefixes:
        replies = await bot.press(who, f"{prefix.prefix}:999999999999", language_code="en")
        assert STALE in replies[-1].text, prefix
    assert errors == []
    assert tried > 100
    admin_chats = [s for s in bot.fake.sent if s.chat_id == ADMIN and "failed" in s.text]
    assert admin_chats == []


async def test_forged_buttons_mid_form_leave_the_form_where_it_was(
    harness_any: BotHarness,
) -> None:
    bot = harness_any
    errors = _record_errors(bot)
    await bot.send(STRANGER, "/nominate", language_code="en")
    await bot.press(STRANGER, "nom:ok:1", language_code="en")
    await bot.press(STRANGER, "nom:id:1", language_code="en")
    for data in ("nom:t:abc", "nom:t:999999999999", "nom:v:2147483648", "nom:vp:-1", "nom:ok:2"):
        replies = await bot.press(STRANGER, data, language_code="en")
        assert STALE in replies[-1].text, data
    assert errors == []
    # The draft is untouched: the name question is still the one answered next.
    replies = await bot.send(STRANGER, "张三", language_code="en")
    assert any(row for r in replies for row in r.buttons), "the gender question has buttons"


async def test_well_formed_buttons_for_things_that_do_not_exist_fail_no_handler(
    harness_any: BotHarness,
) -> None:
    """Stale rather than forged: the right shape, ids at the top of the range, nothing there."""
    bot = harness_any
    await _admin(bot)
    errors = _record_errors(bot)
    buttons, _prefixes = registered_buttons(bot)
    for button in buttons:
        data = ":".join(part if isinstance(part, str) else _top(part) for part in button.parts)
        replies = await bot.press(ADMIN, data, language_code="en")
        assert replies, data
        assert errors == [], (data, errors)


def _top(field: object) -> str:
    if isinstance(field, Number):
        return str(field.high)
    options = getattr(field, "options", None)
    return sorted(options)[0] if options else "zz"


async def test_every_callback_handler_matches_through_the_codec(harness: BotHarness) -> None:
    """No regex or ad-hoc pattern left: only codec shapes, and the one catch-all at the end."""
    assert harness.app is not None
    catch_alls = []
    for group in harness.app.handlers.values():
        for handler in group:
            for leaf in _walk(handler):
                if not isinstance(leaf, CallbackQueryHandler):
                    continue
                if leaf.pattern is None:
                    catch_alls.append(leaf)
                else:
                    assert pattern_of(leaf) is not None, (leaf.callback, leaf.pattern)
    assert len(catch_alls) == 1
