"""/invite: an official makes one staff invite code in the bot, as `cadrebot invite` does on
the server (the same storage, the same expiry, INVITE_DAYS).

A county official (or an admin) chooses the role: a township official (then the township),
a reviewer (then the department, from VETTING_DEPARTMENTS) or an admin; a township official
makes mentor codes for their own township (the "2+1" slot: a township cadre or the village
party secretary). The last step names what will be made; the code and its start link are
shown once, since only the code's hash is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import acting, as_actor
from handlers.chat.commands import command
from handlers.chat.flow import Finish, Flow, Outcome, Run, Texts
from handlers.chat.kinds import Choice, Confirm, Pick
from handlers.chat.screen import Screen
from storage import geo, staff
from storage.models import Role, Township
from storage.people import MENTOR_SLOTS, Actor
from storage.rules.staff import invitable

COMMAND = command("invite", Role.COUNTY_OFFICIAL, Role.ADMIN, Role.TOWNSHIP_OFFICIAL)
# bot_data key of the bot's username, as Telegram gave it at start-up.
USERNAME_KEY = "bot_username"
# The link's name when neither BOT_USERNAME nor Telegram gave one, as the CLI prints it.
PLACEHOLDER_USERNAME = "<your_bot>"


def _roles(run: Run) -> Sequence[str]:
    can = run.answers.get("can")
    return [str(r) for r in can] if isinstance(can, list) else []


async def begin(run: Run, args: str) -> dict[str, Any] | None:
    """The roles this person may hand out; a township official's one role is taken as
    chosen, and their township too when they have only one."""
    actor = await acting(run)  # the engine checked the command's roles
    can = [r.value for r in invitable(actor.roles)]
    answers: dict[str, Any] = {"can": can}
    if can == [Role.MENTOR.value]:
        answers["role"] = Role.MENTOR.value
    mine = sorted(actor.township_ids(Role.TOWNSHIP_OFFICIAL))
    answers["mine"] = mine
    if can == [Role.MENTOR.value] and len(mine) == 1:
        async with run.session() as session:
            township = await session.get(Township, mine[0])
        if township is not None:
            answers.update(township_id=township.id, township_name=township.name)
    return answers


def _needs_township(run: Run) -> bool:
    return run.answers.get("role") in (Role.TOWNSHIP_OFFICIAL.value, Role.MENTOR.value)


async def _townships(run: Run, offset: int, limit: int) -> tuple[list[tuple[int, str]], int]:
    """Every township for a township official's code, one's own for a mentor's."""
    mine = {int(t) for t in run.answers.get("mine", [])}
    async with run.session() as session:
        townships = await geo.list_townships(session)
    if run.answers.get("role") == Role.MENTOR.value:
        townships = [t for t in townships if t.id in mine]
    return [(t.id, t.name) for t in townships[offset : offset + limit]], len(townships)


async def _take_township(run: Run, township_id: int) -> dict[str, Any] | None:
    listed, _ = await _townships(run, 0, 10_000)
    name = dict(listed).get(township_id)
    return None if name is None else {"township_id": township_id, "township_name": name}


def _departments(run: Run) -> Sequence[str]:
    return run.settings.department_codes


def _confirm_values(run: Run) -> dict[str, Any]:
    return {**run.values(), "days": run.settings.invite_days}


async def make(run: Run, answers: dict[str, Any]) -> Outcome:
    """Make the code and show it with its link, once."""
    role = Role(str(answers["role"]))
    now = datetime.now(UTC)
    days = run.settings.invite_days

    async def work(session: AsyncSession, actor: Actor) -> str:
        return await staff.make_invite(
            session,
            actor,
            role,
            now=now,
            days=days,
            departments=run.settings.department_codes,
            township_id=answers.get("township_id") if _needs_township(run) else None,
            department=answers.get("department") if role == Role.REVIEWER else None,
            mentor_slot=answers.get("slot") if role == Role.MENTOR else None,
        )

    code = await as_actor(run, work)
    # BOT_USERNAME, else the name Telegram gave at start-up (bot/app.py keeps it).
    username = run.settings.bot_username or run.chat.service(USERNAME_KEY)
    values = {
        **run.values(),
        "code": code,
        "link": f"https://t.me/{username or PLACEHOLDER_USERNAME}?start={code}",
        "expires": (now + timedelta(days=days)).astimezone(run.settings.tz).date(),
    }
    return Finish((Screen("staff/invite_made", values),))


INVITE = Flow(
    name="invite",
    command=COMMAND,
    prefix="iv",
    start=begin,
    questions=(
        Choice("role", _roles, template="staff/ask_role", tag="r", per_row=1),
        Pick(
            "township_id",
            _townships,
            _take_township,
            tag="t",
            page_tag="tp",
            template="staff/ask_township",
            shows="township_name",
            when=_needs_township,
        ),
        Choice(
            "department",
            _departments,
            template="staff/ask_department",
            tag="d",
            labels="dept",
            when=lambda run: run.answers.get("role") == Role.REVIEWER.value,
        ),
        Choice(
            "slot",
            MENTOR_SLOTS,
            template="staff/ask_slot",
            tag="s",
            labels="mentor_slot",
            per_row=1,
            when=lambda run: run.answers.get("role") == Role.MENTOR.value,
        ),
        Confirm(
            "confirm",
            tag="y",
            template="staff/invite_confirm",
            declined="staff/invite_dropped",
            yes="invite.make",
            no="invite.drop",
            values=_confirm_values,
        ),
    ),
    submit=make,
    texts=Texts(busy="staff/invite_busy"),
)
