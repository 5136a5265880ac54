"""/staff: the staff an official manages, a page at a time; under a person, revoke their
role (asked to confirm first) or correct their name.

Scope lives in storage/staff.py's queries: a county official or an admin sees the
county-level staff and every township's mentors, a township official their township's
mentors. A revoked person's "/" menu is published again (storage marks it in the same
transaction). The name correction is a flow (persisted as "staff_name") that only the
"correct name" button opens; nothing is written before the name is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import acting, as_actor
from handlers.chat.codec import ID, PAGE, Button
from handlers.chat.commands import command
from handlers.chat.flow import Entry, Finish, Flow, InChat, Outcome, Question, Reask, Run, Texts
from handlers.chat.kinds import checked
from handlers.chat.paged import Pages, page_in_scope
from handlers.chat.screen import Btn, Pager, Screen
from handlers.chat.screens import Act, screen
from storage import staff
from storage.models import Role
from storage.people import Actor
from storage.rules.identity import normalize_name
from storage.staff import StaffMember

COMMAND = command("staff", Role.COUNTY_OFFICIAL, Role.ADMIN, Role.TOWNSHIP_OFFICIAL)
PAGER = Pager(8)
PAGE_BUTTON = Button("sf", "pg", PAGE)
OPEN = Button("sf", "o", ID)
REVOKE = Button("sf", "r", ID)
REVOKE_YES = Button("sf", "ry", ID)
REVOKE_NO = Button("sf", "rn", ID)
RENAME = Button("sf", "n", ID)
LIST = Pages("staff/list", PAGER, PAGE_BUTTON)


def _line(at: InChat, member: StaffMember) -> str:
    """A person's button: name (or that none is on file), role, township."""
    name = member.full_name or at.label("staff.no_name")
    where = member.township or (at.label(f"dept.{member.department}") if member.department else "")
    role = at.label(f"role.{member.role.value}")
    return " · ".join(part for part in (name, role, where) if part)


async def listing(at: InChat, actor: Actor, page: int) -> Screen:
    page, members, total = await page_in_scope(at, actor, PAGER, page, staff.staff_in_scope)
    if total == 0:
        return Screen("staff/none", edit=True)
    rows = tuple((Btn(_line(at, m), OPEN.data(m.grant_id)),) for m in members)
    return LIST.screen(at, rows, page, total)


@screen(command=COMMAND)
async def list_staff(act: Act) -> Screen:
    """/staff: the first page."""
    return await listing(act, act.actor, 0)


@screen(button=PAGE_BUTTON, needs=COMMAND.needs)
async def page_staff(act: Act) -> Screen:
    """Turn a page of the list."""
    return await listing(act, act.actor, int(act.values[0]))


def _shown(member: StaffMember, tz: ZoneInfo) -> dict[str, Any]:
    return {"member": member, "since": member.granted_at.astimezone(tz).date()}


@screen(button=OPEN, needs=COMMAND.needs)
async def open_member(act: Act) -> Screen:
    """One person's role, with "revoke", "correct name" and "back"."""
    grant_id = int(act.values[0])
    async with act.session() as session:
        member = await staff.member(session, act.actor, grant_id)
    rows = (
        (
            Btn(act.label("staff.revoke"), REVOKE.data(grant_id)),
            Btn(act.label("staff.rename"), RENAME.data(grant_id)),
        ),
        (Btn(act.label("back"), PAGE_BUTTON.data(0)),),
    )
    return Screen("staff/member", _shown(member, act.settings.tz), rows, edit=True)


@screen(button=REVOKE, needs=COMMAND.needs)
async def ask_revoke(act: Act) -> Screen:
    """Revoking is never one press: say whose role ends, with "confirm" and "keep"."""
    grant_id = int(act.values[0])
    async with act.session() as session:
        member = await staff.member(session, act.actor, grant_id)
    rows = (
        (Btn(act.label("staff.revoke_yes"), REVOKE_YES.data(grant_id)),),
        (Btn(act.label("staff.revoke_no"), REVOKE_NO.data(grant_id)),),
    )
    return Screen("staff/confirm_revoke", _shown(member, act.settings.tz), rows, edit=True)


@screen(button=REVOKE_YES, needs=COMMAND.needs)
async def revoke(act: Act) -> Screen:
    """End the role; storage checks the scope again and marks the person's menu."""
    async with act.session() as session:
        member = await staff.revoke(session, act.actor, int(act.values[0]), now=datetime.now(UTC))
    return Screen("staff/revoked", _shown(member, act.settings.tz), edit=True)


@screen(button=REVOKE_NO, needs=COMMAND.needs)
async def keep(act: Act) -> Screen:
    """Nothing changes."""
    return Screen("staff/kept", edit=True)


# -- the name correction --------------------------------------------------------------------


async def _member(run: Run, grant_id: int) -> StaffMember:
    async def work(session: AsyncSession, actor: Actor) -> StaffMember:
        return await staff.member(session, actor, grant_id)

    return await as_actor(run, work)


async def enter(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
    """The "correct name" button: ask for the name, if the person is still in scope."""
    await _member(run, int(values[0]))
    return {"grant": int(values[0])}


@dataclass(slots=True)
class NewName(Question):
    """The name as it should be on file; another "correct name" pressed meanwhile switches
    to that person."""

    key: str = "full_name"

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (RENAME,)

    async def ask(self, run: Run, page: int) -> Screen:
        member = await _member(run, int(run.answers["grant"]))
        return Screen("staff/ask_name", {"member": member})

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        await _member(run, int(values[0]))
        run.answers["grant"] = int(values[0])
        return Reask()

    async def on_text(self, run: Run, text: str) -> Outcome:
        return await checked(lambda run, raw: normalize_name(raw), run, text, "form/invalid")


async def rename(run: Run, answers: dict[str, Any]) -> Outcome:
    """Put the name on file (storage checks the scope again and audits it)."""
    actor = await acting(run)
    async with run.session() as session:
        member = await staff.correct_name(
            session, actor, int(answers["grant"]), str(answers["full_name"])
        )
    return Finish((Screen("staff/renamed", {"member": member}),))


RENAME_FLOW = Flow(
    name="staff_name",
    command=COMMAND,
    # Its own button only: the list's pages and files still answer while the name is awaited.
    prefix="sf:n",
    questions=(NewName(),),
    submit=rename,
    entries=(Entry(RENAME, enter),),
    by_command=False,
    texts=Texts(busy="staff/rename_busy"),
)

MENUS = (list_staff, page_staff, open_member, ask_revoke, revoke, keep)
