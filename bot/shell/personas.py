"""Who the shell speaks as: a demo person by role or name, a candidate, or a new user."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.settings import Settings
from storage.db import Database
from storage.models import Person, Role, TelegramAccount

LANGUAGE_CODES = {"zh": "zh-hans", "en": "en"}
# Stable fake Telegram ids: the same persona is the same user in every session.
PERSONA_IDS: dict[str, int] = {
    Role.ADMIN.value: 900001,
    Role.COUNTY_OFFICIAL.value: 900002,
    Role.TOWNSHIP_OFFICIAL.value: 900003,
    Role.MENTOR.value: 900004,
    Role.REVIEWER.value: 900005,
    "candidate": 900100,
}


class ShellError(Exception):
    """A problem the operator can fix; the message is the one line we print."""


@dataclass(frozen=True, slots=True)
class Persona:
    key: str  # a role value, "candidate" or "new"
    user_id: int
    spec: dict[str, Any] | None = None  # the demo person of demo_small.json, for roles


def demo_people() -> dict[str, dict[str, Any]]:
    from storage.seed import demo_data

    return dict(demo_data()["people"])


def resolve_persona(name: str, user_id: int | None) -> Persona:
    """`--as`: a role, a demo person's name, `candidate` or `new`."""
    people = demo_people()
    wanted = name.strip()
    key = wanted.lower().replace("-", "_")
    if key not in people and key not in ("candidate", "new"):
        by_name = [role for role, spec in people.items() if spec.get("name") == wanted]
        if not by_name:
            choices = ", ".join([*people, "candidate", "new"])
            raise ShellError(f"unknown --as {name!r}: use one of {choices} or a demo name")
        key = by_name[0]
    if user_id is None and key == "new":
        user_id = 7_000_000_000 + secrets.randbelow(1_000_000_000)
    elif user_id is None:
        user_id = PERSONA_IDS[key]
    if user_id <= 0 or user_id >= 2**52:
        raise ShellError("--user-id must be a positive Telegram user id")
    return Persona(key, user_id, people.get(key))


async def _persona_invite(
    session: Any, spec: dict[str, Any], role: Role, person_id: int, settings: Settings
) -> str:
    """A fresh single-use invite that steps its redeemer into the demo person."""
    from storage.seed import demo_invite

    try:
        return await demo_invite(
            session, role, spec, person_id, now=datetime.now(UTC), days=settings.invite_days
        )
    except ValueError as exc:
        raise ShellError(str(exc)) from None


async def prepare_personas(database: Database, settings: Settings, persona: Persona) -> str | None:
    """Link unclaimed demo people to their stable ids; return the code for our persona.

    The other demo people are linked quietly (so that notices to, say, the township
    official have someone to reach). Our own persona gets a fresh invite that the shell
    redeems through the real `/start CODE` handler, unless we already speak for it.
    """
    from storage import people

    own_code: str | None = None
    window = timedelta(minutes=settings.invite_failure_window_minutes)
    async with database.sessionmaker.begin() as session:
        for role_name, spec in demo_people().items():
            role = Role(role_name)
            person = await session.scalar(select(Person).where(Person.full_name == spec["name"]))
            ours = persona.key == role_name
            if person is None:
                if ours:
                    raise ShellError(
                        f"this database has no demo {role_name} ({spec['name']}): "
                        "run `cadrebot seed --demo`, or `cadrebot shell --own-database`"
                    )
                continue
            if ours:
                actor = await people.load_actor(session, persona.user_id)
                if actor is None or actor.person_id != person.id or role not in actor.roles:
                    own_code = await _persona_invite(session, spec, role, person.id, settings)
                continue
            holder = await session.scalar(
                select(TelegramAccount.telegram_id).where(TelegramAccount.person_id == person.id)
            )
            stable = PERSONA_IDS[role_name]
            if holder is not None or stable == persona.user_id:
                continue
            code = await _persona_invite(session, spec, role, person.id, settings)
            account = await people.ensure_account(session, stable, LANGUAGE_CODES["zh"])
            await people.redeem_invite(
                session,
                account,
                code,
                now=datetime.now(UTC),
                max_failures=settings.invite_max_failures,
                window=window,
            )
    return own_code
