"""The one fake Bot API refuses what Telegram refuses, in-process and over HTTP alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest
from telegram.ext import Defaults, ExtBot

from bot.fakeapi import spec
from bot.fakeapi.core import FakeBotApi
from bot.fakeapi.server import FakeBotApiServer
from bot.fakeapi.transport import FakeTransport

TOKEN = "123456:FAKEAPITESTabcdefghijklmnopqrstuvwxyz"
API_JSON = Path("/work/shared/telegram-bot-api-spec/api.json")


@pytest.mark.skipif(not API_JSON.is_file(), reason="the Bot API description is not here")
def test_methods_json_is_the_bot_api_description() -> None:
    """methods.json is what `python -m bot.fakeapi.spec api.json` extracts, unchanged."""
    shipped = json.loads(spec.METHODS_FILE.read_text(encoding="utf-8"))
    assert shipped == spec.extract(API_JSON)


def test_calls_the_bot_api_does_not_have_are_refused() -> None:
    api = FakeBotApi()
    assert api.answer("sendMesage", {"chat_id": 1, "text": "x"}, {})[0] == 404
    status, payload = api.answer("sendMessage", {"chat_id": 1, "text": "x", "markup": "{}"}, {})
    assert status == 400 and "no parameter 'markup'" in payload["description"]
    status, payload = api.answer("sendMessage", {"chat_id": 1}, {})
    assert status == 400 and "'text' is required" in payload["description"]
    status, payload = api.answer(
        "sendMessage", {"chat_id": 1, "text": "x", "protect_content": 3}, {}
    )
    assert status == 400 and "protect_content must be Boolean" in payload["description"]
    # A method the fake does not play but that only answers True is accepted and noted.
    assert api.answer("setMyDescription", {"description": "x"}, {}) == (
        200,
        {"ok": True, "result": True},
    )
    assert api.take()[-1].note == "setMyDescription"
    # One that returns an object it cannot make up is refused, not answered wrongly.
    assert api.answer("getChat", {"chat_id": 1}, {})[0] == 400


async def test_texts_and_buttons_are_held_to_telegrams_limits() -> None:
    fake = FakeTransport()
    defaults = Defaults(parse_mode="HTML")
    async with ExtBot(TOKEN, request=fake, get_updates_request=fake, defaults=defaults) as bot:
        with pytest.raises(BadRequest, match=r"(?i)too long"):
            await bot.send_message(1, "字" * 4097)
        with pytest.raises(BadRequest, match=r"(?i)parse entities"):
            await bot.send_message(1, "<b>x")
        with pytest.raises(BadRequest, match=r"(?i)empty"):
            await bot.send_message(1, "<b> </b>")
        for data in ("d" * 65, ""):
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data=data)]])
            with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
                await bot.send_message(1, "x", reply_markup=keyboard)
        with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
            await bot.send_photo(1, InputFile(b"\x89PNG", filename="a.png"), caption="c" * 1025)
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 64)]])
        sent = await bot.send_message(1, "<b>ok</b>", reply_markup=keyboard)
        assert sent.text == "ok"
        # PTB adds its Defaults' parse_mode to an edit of the buttons alone: not the bot's fault.
        assert await bot.edit_message_reply_markup(1, sent.message_id)
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_reply_markup(1, sent.message_id)
    assert [s.text for s in fake.sent] == ["<b>ok</b>"]


def test_lax_mode_counts_afterwards_what_it_let_through() -> None:
    api = FakeBotApi(strict=False, log_calls=False)
    for text in ("<b>fine</b>", "<p>no</p>", "x" * 5000):
        assert (
            api.answer("sendMessage", {"chat_id": 1, "text": text, "parse_mode": "HTML"}, {})[0]
            == 200
        )
    assert len(api.accepted) == 3 and api.rejected_sends() == 2
    assert not api.calls and not api.events


async def test_the_http_server_is_the_same_fake() -> None:
    async with FakeBotApiServer(rate=1000, per_chat_seconds=0.0) as server:
        async with Bot(TOKEN, base_url=f"{server.url}/bot") as bot:
            with pytest.raises(BadRequest, match=r"(?i)parse entities"):
                await bot.send_message(5, "<p>x</p>", parse_mode="HTML")
            await bot.send_message(5, "<b>ok</b>", parse_mode="HTML")
        assert [(a.chat_id, a.text) for a in server.accepted] == [(5, "<b>ok</b>")]
