"""/pair: a township official gives each reserve cadre a township-cadre and a village-secretary
mentor ("2+1").

Stateless: every button carries the cadre, slot and mentor ids and is checked again in SQL
when pressed (storage.mentoring), so an old or forged button can do no more than a fresh one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import notices
from handlers.chat.codec import ID, PAGE, Button, choice
from handlers.chat.commands import command
from handlers.chat.paged import Pages
from handlers.chat.screen import Btn, Pager, Screen, rows_of
from handlers.chat.screens import Act, screen
from storage import mentoring, people
from storage.mentoring import PairingRefused
from storage.models import Role
from storage.people import MENTOR_SLOTS, Actor

COMMAND = command("pair", Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN)
PAGER = Pager(8)

_SLOT = choice(*MENTOR_SLOTS)
CADRES_PAGE = Button("pr", "pg", PAGE)
CADRE = Button("pr", "n", ID)
SLOT = Button("pr", "s", ID, _SLOT, PAGE)
MENTOR = Button("pr", "m", ID, _SLOT, ID)
KEEP = Button("pr", "k", ID, _SLOT)
PAIRING = Button("pr", "o", ID)
CADRE_LIST = Pages("mentoring/pair_cadres", PAGER, CADRES_PAGE)
MENTOR_LIST = Pages("mentoring/pair_mentors", PAGER, SLOT)

Choice = mentoring.MentorChoice | mentoring.CadrePairings


def _person(act: Act, name: str | None, person_id: int | None) -> str:
    """A person's name on a button; people who redeemed an invite may have none yet (no
    person: "")."""
    if person_id is None:
        return ""
    return name or f"{act.label('person.unnamed')} #{person_id}"


@screen(command=COMMAND, button=CADRES_PAGE)
async def cadres(act: Act) -> Screen:
    """The reserve cadres the official may pair, a page at a time."""
    page = int(act.values[0]) if act.values else 0
    async with act.session() as session:
        found, total = await mentoring.pairable_cadres(
            session, act.actor, offset=PAGER.offset(page), limit=PAGER.per_page
        )
    if total == 0:
        return Screen("mentoring/pair_none", edit=True)
    if not found:
        return Screen("common/stale_button", edit=True)
    first = PAGER.offset(page) + 1
    buttons = [
        Btn(f"{first + i}. {c.full_name}", CADRE.data(c.nomination_id))
        for i, c in enumerate(found)
    ]
    return CADRE_LIST.screen(act, rows_of(buttons, 2), page, total, cadres=found, first=first)


async def _slot(
    session: AsyncSession, actor: Actor, nomination_id: int, slot: str, page: int = 0
) -> Choice:
    return await mentoring.eligible_mentors(
        session, actor, nomination_id, slot, offset=PAGER.offset(page), limit=PAGER.per_page
    )


async def _after(session: AsyncSession, actor: Actor, nomination_id: int, slot: str) -> Choice:
    """After the township slot comes the village slot; after that, the overview."""
    if slot == MENTOR_SLOTS[0]:
        return await _slot(session, actor, nomination_id, MENTOR_SLOTS[1])
    return await mentoring.cadre_pairings(session, actor, nomination_id)


def _shown(act: Act, choice: Choice, page: int = 0) -> Screen:
    if isinstance(choice, mentoring.CadrePairings):
        return _overview(act, choice)
    if choice.total and not choice.mentors:
        return Screen("common/stale_button")  # a page that no longer exists
    cadre, slot = choice.cadre, choice.slot
    nid = cadre.nomination_id
    buttons = [
        Btn(_person(act, m.full_name, m.person_id), MENTOR.data(nid, slot, m.person_id))
        for m in choice.mentors
    ]
    current = cadre.current.get(slot)
    keep_label = act.label("pair.keep" if current is not None else "pair.skip")
    keep = Btn(keep_label, KEEP.data(nid, slot))
    return MENTOR_LIST.screen(
        act,
        rows_of(buttons, 2),
        page,
        choice.total,
        fixed=(nid, slot),
        after=((keep,),),
        edit=False,
        cadre=cadre,
        slot=slot,
        current=current,
        mentors=choice.mentors,
    )


def _overview(act: Act, cadre: mentoring.CadrePairings) -> Screen:
    nid = cadre.nomination_id
    buttons = [
        Btn(act.label(f"pair.change.{slot}"), SLOT.data(nid, slot, 0)) for slot in MENTOR_SLOTS
    ]
    buttons.append(Btn(act.label("pair.back"), CADRES_PAGE.data(0)))
    values = {"cadre": cadre, "slots": list(MENTOR_SLOTS)}
    return Screen("mentoring/pair_overview", values, rows_of(buttons, 1))


async def _step(act: Act, slot: str, page: int = 0, *, after: bool = False) -> Screen:
    """The pressed message's buttons go; then the mentors who may take `slot` (a page of
    them), or with `after` what comes after it."""
    await act.chat.drop_buttons()
    nomination_id = act.values[0]
    async with act.session() as session:
        if after:
            choice = await _after(session, act.actor, nomination_id, slot)
        else:
            choice = await _slot(session, act.actor, nomination_id, slot, page)
    return _shown(act, choice, page)


@screen(button=CADRE, needs=COMMAND.needs)
async def choose_cadre(act: Act) -> Screen:
    """A cadre was picked: offer the township-cadre mentors first."""
    return await _step(act, MENTOR_SLOTS[0])


@screen(button=SLOT, needs=COMMAND.needs)
async def choose_slot(act: Act) -> Screen:
    """Show (a page of) the mentors who may take one slot."""
    _, slot, page = act.values
    return await _step(act, slot, page)


@screen(button=PAIRING, needs=COMMAND.needs)
async def show_pairing(act: Act) -> Screen:
    """Show a cadre's two mentors with buttons to change either."""
    return await _step(act, MENTOR_SLOTS[1], after=True)


@screen(button=KEEP, needs=COMMAND.needs)
async def keep_slot(act: Act) -> Screen:
    """Leave a slot as it is and go on."""
    return await _step(act, act.values[1], after=True)


@screen(button=MENTOR, needs=COMMAND.needs)
async def choose_mentor(act: Act) -> list[Screen]:
    """Assign the pressed mentor to the slot, tell the mentors, go on to the next slot."""
    await act.chat.drop_buttons()
    nid, slot, person_id = act.values
    async with act.session() as session:
        try:
            done = await mentoring.assign_mentor(
                session, act.actor, nid, slot, int(person_id), now=datetime.now(UTC)
            )
        except PairingRefused as error:
            # Refused before anything was written: offer the same slot again.
            again = await _slot(session, act.actor, nid, slot)
            refused = Screen("mentoring/pair_refused", {"code": error.code, "slot": slot})
            return [refused, _shown(act, again)]
        following = await _after(session, act.actor, nid, slot)
        # In the pairing's transaction (the outbox): a mentor hears of a pairing if and
        # only if it is committed, and a crash, a 429 or a network error after the commit
        # only delays the notice.
        for telegram_id, name, event in (
            (done.mentor_telegram_id, "mentoring/pair_notice_new", "pair-new"),
            (done.previous_telegram_id, "mentoring/pair_notice_ended", "pair-ended"),
        ):
            if done.changed and telegram_id is not None:
                await act.chat.notify(
                    session,
                    await people.recipients(session, [telegram_id]),
                    name,
                    key=f"{event}:{done.pairing_id}",
                    subject=nid,
                    cadre=done.cadre,
                    slot=slot,
                )
        if done.changed:
            await notices.paired(act.chat, session, nid, done.pairing_id)
    said = Screen(
        "mentoring/pair_done",
        {
            "cadre": done.cadre,
            "slot": slot,
            "mentor_name": _person(act, done.mentor_name, done.mentor_person_id),
            "previous_name": _person(act, done.previous_name, done.previous_person_id),
            "changed": done.changed,
        },
    )
    return [said, _shown(act, following)]


MENUS = (cadres, choose_cadre, choose_slot, choose_mentor, keep_slot, show_pairing)
