"""Drafts as the conversations before the flow engine stored them, for the deploy tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert

from storage.crypto import DataCipher
from storage.models import ConversationState, UserData
from tests.support.harness import BotHarness


async def store_old_drafts(
    bot: BotHarness, drafts: Mapping[int, tuple[str, dict[str, Any], int]]
) -> None:
    """Stop the bot, store each user's (conversation name, draft, state) as the handlers
    before the flow engine wrote them (a flat draft under the conversation's name, the state
    an int of the old numbering), and start it again: what a deploy finds."""
    await bot.stop()
    cipher = DataCipher(bot.settings.require_data_key())
    async with bot.database.sessionmaker.begin() as session:
        for user, (name, draft, state) in drafts.items():
            payload = cipher.encrypt(json.dumps({name: draft}))
            await session.execute(delete(UserData).where(UserData.user_id == user))
            await session.execute(insert(UserData).values(user_id=user, payload=payload))
            await session.execute(
                insert(ConversationState).values(
                    name=name, key=json.dumps([user, user]), state={"state": state}
                )
            )
    await bot.start()
