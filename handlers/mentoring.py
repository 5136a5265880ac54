"""2+1 mentoring: /pair (officials), /mentees and /talk (mentors), /difficulties (both).

/pair is stateless: every button carries the cadre, slot and mentor ids and is checked again
in SQL when pressed, so an old or forged button can do no more than a fresh one. /talk and
the resolution note of /difficulties are persistent conversations: the draft lives in
user_data (JSON-plain, persisted encrypted) and nothing reaches the domain tables before the
mentor presses save.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.ext import (
    BaseHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers.chat.codec import CODE, ID, INDEX, PAGE, Button, Prefix, choice
from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.reply import (
    cipher,
    conversation,
    deny,
    drop_buttons,
    edit_or_reply,
    inline_rows,
    label,
    now,
    plan_notice,
    reply,
)
from handlers.chat.tg import on
from storage import mentoring, people
from storage.mentoring import PairingRefused, Stale, TalkInput
from storage.models import Role
from storage.nominations import NotAllowed
from storage.people import MENTOR_SLOTS, Actor
from storage.rules.cadence import (
    BACK_DAYS,
    DIFFICULTY_MAX_LEN,
    DIFFICULTY_MIN_LEN,
    EVERY_DAYS,
    MAX_DIFFICULTIES,
    RESOLUTION_MAX_LEN,
    RESOLUTION_MIN_LEN,
    SOON_DAYS,
    TALK_MODES,
    TALK_TOPICS,
    TOPIC_MAX_LEN,
    TOPIC_MIN_LEN,
    check_talk_date,
    local_date,
    parse_talk_date,
)
from storage.rules.identity import RuleError, clean_text

PRIVATE = filters.ChatType.PRIVATE
# A new message typed in the private chat; edits of earlier messages are not new answers.
ANSWER = PRIVATE & ~filters.COMMAND & filters.UpdateType.MESSAGE
PER_PAGE = 8
DIFFICULTIES_PER_PAGE = 5
OFFICIALS = (Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN)

# /talk states, in the order a mentor meets them.
MENTEE, DATE, MODE, TOPIC, DIFFICULTIES, REVIEW = range(6)
# The resolution note of a difficulty.
NOTE = 0

TALK = "talk"  # conversation name and user_data key of the talk draft
RESOLVE = "resolve"  # user_data key of the difficulty being resolved
EDITABLE = ("mentee", "date", "mode", *TALK_TOPICS, "difficulties")


# ---------------------------------------------------------------------------------------------
# Shared


def _every_days(context: CadreContext) -> int:
    # TALK_EVERY_DAYS / TALK_SOON_DAYS: read defensively until bot.settings declares them.
    return int(getattr(context.settings, "talk_every_days", EVERY_DAYS))


def _soon_days(context: CadreContext) -> int:
    return int(getattr(context.settings, "talk_soon_days", SOON_DAYS))


def _today(context: CadreContext) -> date:
    """Today in the county's time zone, never the server's."""
    return local_date(now(), context.settings.tz)


async def _load_actor(update: Update, session: AsyncSession) -> Actor | None:
    user = update.effective_user
    if user is None:
        return None
    return await people.load_actor(session, user.id)


async def _answer(update: Update, *, drop: bool = True) -> None:
    """Acknowledge a button; take the keyboard off its message so it is not pressed twice."""
    query = update.callback_query
    if query is None:
        return
    await query.answer()
    if drop:
        await drop_buttons(update)


def _nav(
    update: Update, context: CadreContext, prefix: str, page: int, total: int, per_page: int
) -> list[InlineKeyboardButton]:
    """Previous/next page buttons; `prefix` + page number is their callback data."""
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                label(update, context, "prev"), callback_data=f"{prefix}{page - 1}"
            )
        )
    if (page + 1) * per_page < total:
        nav.append(
            InlineKeyboardButton(
                label(update, context, "next"), callback_data=f"{prefix}{page + 1}"
            )
        )
    return nav


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def _person(update: Update, context: CadreContext, name: str | None, person_id: int) -> str:
    """A person's name on a button; people who redeemed an invite may have none yet."""
    return name or f"{label(update, context, 'person.unnamed')} #{person_id}"


# ---------------------------------------------------------------------------------------------
# /pair: a township official gives each reserve cadre a township-cadre and a village-secretary
# mentor ("2+1").


async def start_pairing(update: Update, context: CadreContext) -> None:
    """List the reserve cadres the official may pair."""
    await _show_cadres(update, context, 0)


async def page_cadres(update: Update, context: CadreContext) -> None:
    """Turn a page of the cadre list."""
    await _answer(update, drop=False)
    (page,) = CADRES_PAGE.values(update)
    await _show_cadres(update, context, page)


async def _show_cadres(update: Update, context: CadreContext, page: int) -> None:
    found: tuple[list[mentoring.CadreItem], int] | None = None
    async with context.session() as session:
        actor = await _load_actor(update, session)
        if actor is not None and actor.has(*OFFICIALS):
            found = await mentoring.pairable_cadres(
                session, actor, offset=page * PER_PAGE, limit=PER_PAGE
            )
    if found is None:
        await deny(update, context)
        return
    cadres, total = found
    if total == 0:
        await edit_or_reply(update, context, "mentoring/pair_none")
        return
    if not cadres:
        await edit_or_reply(update, context, "common/stale_button")
        return
    first = page * PER_PAGE + 1
    buttons = [
        (f"{first + i}. {c.full_name}", f"pr:n:{c.nomination_id}") for i, c in enumerate(cadres)
    ]
    rows = inline_rows(buttons, per_row=2)
    nav = _nav(update, context, "pr:pg:", page, total, PER_PAGE)
    if nav:
        rows.append(nav)
    await edit_or_reply(
        update,
        context,
        "mentoring/pair_cadres",
        markup=InlineKeyboardMarkup(rows),
        cadres=cadres,
        first=first,
        page=page + 1,
        pages=_pages(total, PER_PAGE),
        total=total,
    )


Screen = mentoring.MentorChoice | mentoring.CadrePairings


async def _slot_screen(
    session: AsyncSession, actor: Actor | None, nomination_id: int, slot: str, page: int = 0
) -> Screen:
    if actor is None:
        raise NotAllowed
    return await mentoring.eligible_mentors(
        session, actor, nomination_id, slot, offset=page * PER_PAGE, limit=PER_PAGE
    )


async def _next_screen(
    session: AsyncSession, actor: Actor | None, nomination_id: int, slot: str
) -> Screen:
    """After the township slot comes the village slot; after that, the overview."""
    if actor is None:
        raise NotAllowed
    if slot == MENTOR_SLOTS[0]:
        return await _slot_screen(session, actor, nomination_id, MENTOR_SLOTS[1])
    return await mentoring.cadre_pairings(session, actor, nomination_id)


async def _show(update: Update, context: CadreContext, screen: Screen, page: int = 0) -> None:
    if isinstance(screen, mentoring.CadrePairings):
        await _show_overview(update, context, screen)
        return
    if screen.total and not screen.mentors:
        await reply(update, context, "common/stale_button")  # a page that no longer exists
        return
    cadre, slot = screen.cadre, screen.slot
    nid = cadre.nomination_id
    buttons = [
        (_person(update, context, m.full_name, m.person_id), f"pr:m:{nid}:{slot}:{m.person_id}")
        for m in screen.mentors
    ]
    rows = inline_rows(buttons, per_row=2)
    nav = _nav(update, context, f"pr:s:{nid}:{slot}:", page, screen.total, PER_PAGE)
    if nav:
        rows.append(nav)
    current = cadre.current.get(slot)
    keep = "pair.keep" if current is not None else "pair.skip"
    rows.append(
        [InlineKeyboardButton(label(update, context, keep), callback_data=f"pr:k:{nid}:{slot}")]
    )
    await reply(
        update,
        context,
        "mentoring/pair_mentors",
        markup=InlineKeyboardMarkup(rows),
        cadre=cadre,
        slot=slot,
        current=current,
        mentors=screen.mentors,
        page=page + 1,
        pages=_pages(screen.total, PER_PAGE),
        total=screen.total,
    )


async def _show_overview(
    update: Update, context: CadreContext, cadre: mentoring.CadrePairings
) -> None:
    nid = cadre.nomination_id
    buttons = [
        (label(update, context, f"pair.change.{slot}"), f"pr:s:{nid}:{slot}:0")
        for slot in MENTOR_SLOTS
    ]
    buttons.append((label(update, context, "pair.back"), "pr:pg:0"))
    await reply(
        update,
        context,
        "mentoring/pair_overview",
        markup=InlineKeyboardMarkup(inline_rows(buttons, per_row=1)),
        cadre=cadre,
        slots=list(MENTOR_SLOTS),
    )


async def _refuse(update: Update, context: CadreContext, error: Exception) -> None:
    """A button the person may not use (NotAllowed) or that no longer applies (Stale)."""
    if isinstance(error, NotAllowed):
        await deny(update, context)
        return
    await reply(update, context, "common/stale_button")


async def choose_cadre(update: Update, context: CadreContext) -> None:
    """A cadre was picked: offer the township-cadre mentors first."""
    await _answer(update)
    try:
        async with context.session() as session:
            actor = await _load_actor(update, session)
            (nomination_id,) = CADRE.values(update)
            screen = await _slot_screen(session, actor, nomination_id, MENTOR_SLOTS[0])
    except (NotAllowed, Stale) as error:
        await _refuse(update, context, error)
        return
    await _show(update, context, screen)


async def choose_slot(update: Update, context: CadreContext) -> None:
    """Show (a page of) the mentors who may take one slot."""
    await _answer(update)
    nomination_id, slot, page = SLOT.values(update)
    try:
        async with context.session() as session:
            actor = await _load_actor(update, session)
            screen = await _slot_screen(session, actor, nomination_id, slot, page)
    except (NotAllowed, Stale) as error:
        await _refuse(update, context, error)
        return
    await _show(update, context, screen, page)


async def show_pairing(update: Update, context: CadreContext) -> None:
    """Show a cadre's two mentors with buttons to change either."""
    await _answer(update)
    try:
        async with context.session() as session:
            actor = await _load_actor(update, session)
            (nomination_id,) = PAIRING.values(update)
            screen = await _next_screen(session, actor, nomination_id, MENTOR_SLOTS[1])
    except (NotAllowed, Stale) as error:
        await _refuse(update, context, error)
        return
    await _show(update, context, screen)


async def keep_slot(update: Update, context: CadreContext) -> None:
    """Leave a slot as it is and go on."""
    await _answer(update)
    nomination_id, slot = KEEP.values(update)
    try:
        async with context.session() as session:
            actor = await _load_actor(update, session)
            screen = await _next_screen(session, actor, nomination_id, slot)
    except (NotAllowed, Stale) as error:
        await _refuse(update, context, error)
        return
    await _show(update, context, screen)


async def choose_mentor(update: Update, context: CadreContext) -> None:
    """Assign the pressed mentor to the slot, tell the mentors, go on to the next slot."""
    await _answer(update)
    nid, slot, person_id = MENTOR.values(update)
    done: mentoring.Assignment | None = None
    refused: str | None = None
    try:
        async with context.session() as session:
            actor = await _load_actor(update, session)
            if actor is None:
                raise NotAllowed
            try:
                done = await mentoring.assign_mentor(
                    session, actor, nid, slot, int(person_id), now=now()
                )
            except PairingRefused as error:
                # Refused before anything was written: offer the same slot again.
                refused = error.code
                screen = await _slot_screen(session, actor, nid, slot)
            else:
                screen = await _next_screen(session, actor, nid, slot)
                # In the pairing's transaction (the outbox): a mentor hears of a pairing if
                # and only if it is committed, and a crash, a 429 or a network error after
                # the commit only delays the notice.
                for telegram_id, name, event in (
                    (done.mentor_telegram_id, "mentoring/pair_notice_new", "pair-new"),
                    (done.previous_telegram_id, "mentoring/pair_notice_ended", "pair-ended"),
                ):
                    if done.changed and telegram_id is not None:
                        await plan_notice(
                            session,
                            context,
                            await people.recipients(session, [telegram_id]),
                            name,
                            key=f"{event}:{done.pairing_id}",
                            subject=nid,
                            cadre=done.cadre,
                            slot=slot,
                        )
    except (NotAllowed, Stale) as error:
        await _refuse(update, context, error)
        return
    if done is None:
        await reply(update, context, "mentoring/pair_refused", code=refused, slot=slot)
        await _show(update, context, screen)
        return
    await reply(
        update,
        context,
        "mentoring/pair_done",
        cadre=done.cadre,
        slot=slot,
        mentor_name=_person(update, context, done.mentor_name, done.mentor_person_id),
        previous_name=_person(update, context, done.previous_name, done.previous_person_id)
        if done.previous_person_id is not None
        else "",
        changed=done.changed,
    )
    await _show(update, context, screen)


# ---------------------------------------------------------------------------------------------
# /mentees


async def show_mentees(update: Update, context: CadreContext) -> None:
    """List the mentor's active mentees with when each next talk is due."""
    async with context.session() as session:
        mentees = await _mentee_list(session, await _load_actor(update, session), context)
    if mentees is None:
        await deny(update, context)
        return
    if not mentees:
        await reply(update, context, "mentoring/no_mentees")
        return
    log = label(update, context, "talk.log")
    buttons = [(f"{log} {m.full_name}", f"tk:s:{m.pairing_id}") for m in mentees]
    await reply(
        update,
        context,
        "mentoring/mentees",
        markup=InlineKeyboardMarkup(inline_rows(buttons, per_row=1)),
        mentees=mentees,
        every_days=_every_days(context),
    )


# ---------------------------------------------------------------------------------------------
# /talk: date, mode, the four must-talk topics (text or voice), difficulties, review, save.


def _draft(context: CadreContext) -> dict[str, Any]:
    assert context.user_data is not None
    draft: dict[str, Any] = context.user_data.setdefault(
        TALK, {"at": MENTEE, "topics": {}, "difficulties": [], "editing": False}
    )
    return draft


def _forget_talk(context: CadreContext) -> None:
    assert context.user_data is not None
    context.user_data.pop(TALK, None)


def _state(context: CadreContext) -> int:
    return int(_draft(context).get("at", MENTEE))


async def _mentee_list(
    session: AsyncSession, actor: Actor | None, context: CadreContext
) -> list[mentoring.Mentee] | None:
    """The mentor's mentees, or None for someone who is not a mentor."""
    if actor is None or not actor.has(Role.MENTOR):
        return None
    return await mentoring.list_mentees(
        session,
        actor,
        now=now(),
        tz=context.settings.tz,
        every_days=_every_days(context),
        soon_days=_soon_days(context),
    )


async def begin_talk(update: Update, context: CadreContext) -> int:
    """Start logging a talk: choose which mentee it was with."""
    assert context.user_data is not None
    if RESOLVE in context.user_data:
        await reply(update, context, "mentoring/resolve_busy")
        return ConversationHandler.END
    async with context.session() as session:
        mentees = await _mentee_list(session, await _load_actor(update, session), context)
    if mentees is None:
        await deny(update, context)
        return ConversationHandler.END
    _forget_talk(context)
    _draft(context)
    return await _show_mentees_page(update, context, mentees, 0)


async def begin_talk_with(update: Update, context: CadreContext) -> int:
    """Start logging a talk with the mentee whose button was pressed in /mentees."""
    await _answer(update, drop=False)
    assert context.user_data is not None
    if RESOLVE in context.user_data:
        await reply(update, context, "mentoring/resolve_busy")
        return ConversationHandler.END
    _forget_talk(context)
    try:
        async with context.session() as session:
            (pairing_id,) = TALK_WITH.values(update)
            mentee = await _own_mentee(session, update, context, pairing_id)
    except (NotAllowed, Stale) as error:
        _forget_talk(context)
        await _refuse(update, context, error)
        return ConversationHandler.END
    _take_mentee(context, mentee)
    return await _ask(update, context, DATE)


async def _own_mentee(
    session: AsyncSession, update: Update, context: CadreContext, pairing_id: int
) -> mentoring.Mentee:
    """The mentor's own pairing, checked in SQL: NotAllowed for anyone else's."""
    actor = await _load_actor(update, session)
    if actor is None:
        raise NotAllowed
    return await mentoring.own_mentee(
        session, actor, pairing_id, now=now(), tz=context.settings.tz
    )


def _take_mentee(context: CadreContext, mentee: mentoring.Mentee) -> None:
    draft = _draft(context)
    draft["pairing_id"] = mentee.pairing_id
    draft["mentee"] = mentee.full_name
    draft["paired_on"] = mentee.paired_on.isoformat()


async def _ask_mentee(update: Update, context: CadreContext, page: int) -> int:
    async with context.session() as session:
        mentees = await _mentee_list(session, await _load_actor(update, session), context)
    return await _show_mentees_page(update, context, mentees or [], page)


async def _show_mentees_page(
    update: Update, context: CadreContext, mentees: list[mentoring.Mentee], page: int
) -> int:
    if not mentees:
        _forget_talk(context)
        await reply(update, context, "mentoring/no_mentees")
        return ConversationHandler.END
    page = max(0, min(page, _pages(len(mentees), PER_PAGE) - 1))
    shown = mentees[page * PER_PAGE : (page + 1) * PER_PAGE]
    rows = inline_rows([(m.full_name, f"tk:p:{m.pairing_id}") for m in shown], per_row=2)
    nav = _nav(update, context, "tk:pg:", page, len(mentees), PER_PAGE)
    if nav:
        rows.append(nav)
    _draft(context)["at"] = MENTEE
    await reply(
        update,
        context,
        "mentoring/talk_pick",
        markup=InlineKeyboardMarkup(rows),
        mentees=shown,
        page=page + 1,
        pages=_pages(len(mentees), PER_PAGE),
    )
    return MENTEE


async def page_mentees(update: Update, context: CadreContext) -> int:
    """Turn a page of the mentee list."""
    await _answer(update)
    (page,) = MENTEES_PAGE.values(update)
    return await _ask_mentee(update, context, page)


async def pick_mentee(update: Update, context: CadreContext) -> int:
    """A mentee was picked; a forged or foreign pairing id is refused."""
    await _answer(update)
    refusal: Exception | None = None
    async with context.session() as session:
        try:
            (pairing_id,) = MENTEE_PICK.values(update)
            mentee = await _own_mentee(session, update, context, pairing_id)
        except (NotAllowed, Stale) as error:
            refusal = error
            # Read-only so far: the same transaction lists the mentees to choose from again.
            mentees = await _mentee_list(session, await _load_actor(update, session), context)
    if refusal is not None:
        await _refuse(update, context, refusal)
        return await _show_mentees_page(update, context, mentees or [], 0)
    _take_mentee(context, mentee)
    draft = _draft(context)
    if draft.get("date"):
        # Another mentee may have been paired later than the date already chosen.
        try:
            check_talk_date(
                date.fromisoformat(draft["date"]),
                today=_today(context),
                not_before=mentee.paired_on,
            )
        except RuleError as error:
            draft.pop("date")
            await _date_invalid(update, context, error)
            return await _ask(update, context, DATE)
    return await _advance(update, context, DATE)


async def _date_invalid(update: Update, context: CadreContext, error: RuleError) -> None:
    await reply(
        update,
        context,
        "mentoring/talk_date_invalid",
        code=error.code,
        params=error.params or {},
        back_days=BACK_DAYS,
    )


async def pick_date(update: Update, context: CadreContext) -> int:
    """Today, yesterday, or "another date" (typed next)."""
    await _answer(update)
    (choice,) = DATE_PICK.values(update)
    if choice == "x":
        _draft(context)["typing"] = True
        return await _ask(update, context, DATE)
    return await _take_date(update, context, _today(context) - timedelta(days=int(choice)))


async def type_date(update: Update, context: CadreContext) -> int:
    """A typed date: YYYY-MM-DD or M-D."""
    message = update.effective_message
    assert message is not None and message.text is not None
    try:
        value = parse_talk_date(message.text, today=_today(context))
    except RuleError as error:
        _draft(context)["typing"] = True
        await _date_invalid(update, context, error)
        return await _ask(update, context, DATE)
    return await _take_date(update, context, value)


async def _take_date(update: Update, context: CadreContext, value: date) -> int:
    draft = _draft(context)
    try:
        check_talk_date(
            value,
            today=_today(context),
            back_days=BACK_DAYS,
            not_before=date.fromisoformat(draft["paired_on"]),
        )
    except RuleError as error:
        draft["typing"] = True
        await _date_invalid(update, context, error)
        return await _ask(update, context, DATE)
    draft["date"] = value.isoformat()
    draft.pop("typing", None)
    return await _advance(update, context, MODE)


async def pick_mode(update: Update, context: CadreContext) -> int:
    """Face to face, by phone or a home visit."""
    await _answer(update)
    (mode,) = MODE_PICK.values(update)
    if mode not in TALK_MODES:
        await reply(update, context, "common/stale_button")
        return await _ask(update, context, MODE)
    _draft(context)["mode"] = mode
    return await _advance(update, context, TOPIC)


async def answer_topic(update: Update, context: CadreContext) -> int:
    """An answer to the current must-talk topic: text (2–1000 characters) or a voice message."""
    message = update.effective_message
    assert message is not None
    draft = _draft(context)
    code = str(draft.get("topic", TALK_TOPICS[0]))
    if message.voice is not None:
        answer = {"voice": message.voice.file_id}
    else:
        assert message.text is not None
        try:
            answer = {
                "text": clean_text(message.text, min_len=TOPIC_MIN_LEN, max_len=TOPIC_MAX_LEN)
            }
        except RuleError as error:
            await reply(
                update, context, "mentoring/invalid", code=error.code, params=error.params or {}
            )
            return await _ask(update, context, TOPIC)
    draft["topics"][code] = answer
    if draft.get("editing"):
        return await _advance(update, context, REVIEW)
    following = TALK_TOPICS[TALK_TOPICS.index(code) + 1 :]
    if following:
        draft["topic"] = following[0]
        return await _ask(update, context, TOPIC)
    return await _ask(update, context, DIFFICULTIES)


async def add_difficulty(update: Update, context: CadreContext) -> int:
    """One practical difficulty the mentee raised, one per message."""
    message = update.effective_message
    assert message is not None and message.text is not None
    draft = _draft(context)
    if len(draft["difficulties"]) >= MAX_DIFFICULTIES:
        await reply(
            update,
            context,
            "mentoring/invalid",
            code="difficulty.too_many",
            params={"max": MAX_DIFFICULTIES},
        )
        return await _ask(update, context, DIFFICULTIES)
    try:
        text = clean_text(message.text, min_len=DIFFICULTY_MIN_LEN, max_len=DIFFICULTY_MAX_LEN)
    except RuleError as error:
        await reply(
            update, context, "mentoring/invalid", code=error.code, params=error.params or {}
        )
        return await _ask(update, context, DIFFICULTIES)
    draft["difficulties"].append(text)
    return await _ask(update, context, DIFFICULTIES)


async def remove_difficulty(update: Update, context: CadreContext) -> int:
    """Take one difficulty off the list before saving."""
    await _answer(update)
    (index,) = DIFFICULTY_DROP.values(update)
    difficulties = _draft(context)["difficulties"]
    if not 0 <= index < len(difficulties):
        await reply(update, context, "common/stale_button")
    else:
        difficulties.pop(index)
    return await _ask(update, context, DIFFICULTIES)


async def finish_difficulties(update: Update, context: CadreContext) -> int:
    """No (more) difficulties: show the review screen."""
    await _answer(update)
    _draft(context)["editing"] = False
    return await _ask(update, context, REVIEW)


async def edit_talk(update: Update, context: CadreContext) -> int:
    """Change one answer from the review screen, then come back to it."""
    await _answer(update)
    (field,) = EDIT.values(update)
    draft = _draft(context)
    draft["editing"] = True
    if field == "mentee":
        return await _ask_mentee(update, context, 0)
    if field == "date":
        return await _ask(update, context, DATE)
    if field == "mode":
        return await _ask(update, context, MODE)
    if field == "difficulties":
        return await _ask(update, context, DIFFICULTIES)
    draft["topic"] = field
    return await _ask(update, context, TOPIC)


async def save_talk(update: Update, context: CadreContext) -> int:
    """Store the talk and its difficulties in one transaction."""
    await _answer(update)
    draft = _draft(context)
    missing = _first_missing(draft)
    if missing is not None:
        return await _ask(update, context, missing)
    talk = TalkInput(
        talk_date=date.fromisoformat(draft["date"]),
        mode=draft["mode"],
        topics=draft["topics"],
        difficulties=list(draft["difficulties"]),
    )
    try:
        async with context.session() as session:
            actor = await _load_actor(update, session)
            if actor is None:
                raise NotAllowed
            await mentoring.save_talk(
                session,
                actor,
                int(draft["pairing_id"]),
                talk,
                cipher=cipher(context),
                now=now(),
                tz=context.settings.tz,
            )
            mentee = await mentoring.own_mentee(
                session,
                actor,
                int(draft["pairing_id"]),
                now=now(),
                tz=context.settings.tz,
                every_days=_every_days(context),
                soon_days=_soon_days(context),
            )
    except NotAllowed:
        _forget_talk(context)
        await deny(update, context)
        return ConversationHandler.END
    except Stale:
        _forget_talk(context)
        await reply(
            update, context, "mentoring/talk_pairing_ended", mentee=draft.get("mentee", "")
        )
        return ConversationHandler.END
    except RuleError as error:
        # The date left the window while the draft waited (past midnight, or weeks later).
        draft.pop("date", None)
        draft["editing"] = True
        await _date_invalid(update, context, error)
        return await _ask(update, context, DATE)
    _forget_talk(context)
    await reply(
        update,
        context,
        "mentoring/talk_saved",
        mentee=mentee.full_name,
        talk_date=talk.talk_date,
        difficulties=len(talk.difficulties),
        due_date=mentee.cadence.due_date,
    )
    return ConversationHandler.END


def _first_missing(draft: dict[str, Any]) -> int | None:
    """The state of the first unanswered question (for a draft that lost an answer)."""
    if not draft.get("pairing_id"):
        return MENTEE
    if not draft.get("date"):
        return DATE
    if draft.get("mode") not in TALK_MODES:
        return MODE
    for code in TALK_TOPICS:
        if code not in draft["topics"]:
            draft["topic"] = code
            return TOPIC
    return None


async def _advance(update: Update, context: CadreContext, following: int) -> int:
    """After an answer: the next question, or back to the review when editing one answer."""
    draft = _draft(context)
    if draft.get("editing"):
        missing = _first_missing(draft)
        if missing is not None:
            return await _ask(update, context, missing)
        draft["editing"] = False
        return await _ask(update, context, REVIEW)
    if following == TOPIC:
        draft["topic"] = TALK_TOPICS[0]
    return await _ask(update, context, following)


async def _ask(update: Update, context: CadreContext, state: int) -> int:
    """Ask the question of `state` and return that state."""
    draft = _draft(context)
    if state == MENTEE:
        return await _ask_mentee(update, context, 0)
    draft["at"] = state
    name = draft.get("mentee", "")
    if state == DATE:
        if draft.get("typing"):
            await reply(
                update,
                context,
                "mentoring/talk_type_date",
                today=_today(context),
                back_days=BACK_DAYS,
            )
            return DATE
        buttons = [
            (label(update, context, "talk.today"), "tk:d:0"),
            (label(update, context, "talk.yesterday"), "tk:d:1"),
            (label(update, context, "talk.other_date"), "tk:d:x"),
        ]
        await reply(
            update,
            context,
            "mentoring/talk_ask_date",
            markup=InlineKeyboardMarkup(inline_rows(buttons, per_row=3)),
            mentee=name,
            today=_today(context),
        )
        return DATE
    if state == MODE:
        buttons = [(label(update, context, f"talk_mode.{m}"), f"tk:m:{m}") for m in TALK_MODES]
        await reply(
            update,
            context,
            "mentoring/talk_ask_mode",
            markup=InlineKeyboardMarkup(inline_rows(buttons, per_row=3)),
            mentee=name,
            talk_date=date.fromisoformat(draft["date"]),
        )
        return MODE
    if state == TOPIC:
        code = str(draft.get("topic", TALK_TOPICS[0]))
        await reply(
            update,
            context,
            "mentoring/talk_ask_topic",
            markup=ReplyKeyboardRemove(),
            mentee=name,
            topic=code,
            step=TALK_TOPICS.index(code) + 1,
            steps=len(TALK_TOPICS),
            min_len=TOPIC_MIN_LEN,
            max_len=TOPIC_MAX_LEN,
        )
        return TOPIC
    if state == DIFFICULTIES:
        difficulties = list(draft["difficulties"])
        remove = label(update, context, "talk.remove")
        buttons = [(f"{remove} {i + 1}", f"tk:x:{i}") for i in range(len(difficulties))]
        rows = inline_rows(buttons, per_row=4)
        rows.append(
            [
                InlineKeyboardButton(
                    label(update, context, "talk.difficulties_done"), callback_data="tk:dd"
                )
            ]
        )
        await reply(
            update,
            context,
            "mentoring/talk_ask_difficulties",
            markup=InlineKeyboardMarkup(rows),
            mentee=name,
            difficulties=difficulties,
            max_len=DIFFICULTY_MAX_LEN,
        )
        return DIFFICULTIES
    buttons = [(label(update, context, f"talk.edit.{f}"), f"tk:e:{f}") for f in EDITABLE]
    rows = inline_rows(buttons, per_row=2)
    rows.append([InlineKeyboardButton(label(update, context, "talk.save"), callback_data="tk:go")])
    draft["editing"] = False
    await reply(
        update,
        context,
        "mentoring/talk_review",
        markup=InlineKeyboardMarkup(rows),
        mentee=name,
        talk_date=date.fromisoformat(draft["date"]),
        mode=draft["mode"],
        topics=mentoring.topic_views(draft["topics"]),
        difficulties=list(draft["difficulties"]),
    )
    return REVIEW


async def reprompt_talk(update: Update, context: CadreContext) -> int:
    """Something the current question cannot take (a sticker, a photo, text for a button)."""
    state = _state(context)
    if state in (MENTEE, MODE, REVIEW):
        await reply(update, context, "mentoring/use_buttons")
    else:
        code = {DATE: "date.kind", TOPIC: "topic.kind", DIFFICULTIES: "difficulty.kind"}[state]
        await reply(update, context, "mentoring/invalid", code=code, params={})
    if state == MENTEE:
        return await _ask_mentee(update, context, 0)
    return await _ask(update, context, state)


async def refuse_stale_talk_button(update: Update, context: CadreContext) -> int:
    """A /talk button from an earlier question: say so and ask the current one again."""
    await _answer(update, drop=False)
    await reply(update, context, "common/stale_button")
    return await _ask(update, context, _state(context))


async def answer_command_mid_talk(update: Update, context: CadreContext) -> int:
    """Another command in the middle of a talk: say how to go on or leave."""
    await reply(update, context, "mentoring/talk_busy")
    return await _ask(update, context, _state(context))


async def cancel_talk(update: Update, context: CadreContext) -> int:
    """Leave /talk; the draft is dropped and nothing was stored."""
    _forget_talk(context)
    await reply(update, context, "common/cancelled", markup=ReplyKeyboardRemove())
    return ConversationHandler.END


# ---------------------------------------------------------------------------------------------
# /difficulties: open items in scope; resolve one with a note.


async def list_difficulties(update: Update, context: CadreContext) -> None:
    """List the open difficulties the person may resolve."""
    await _show_difficulties(update, context, 0)


async def page_difficulties(update: Update, context: CadreContext) -> None:
    """Turn a page of the difficulties list."""
    await _answer(update, drop=False)
    (page,) = DIFFICULTIES_PAGE.values(update)
    await _show_difficulties(update, context, page)


async def _show_difficulties(update: Update, context: CadreContext, page: int) -> None:
    async with context.session() as session:
        actor = await _load_actor(update, session)
        allowed = actor is not None and actor.has(Role.MENTOR, *OFFICIALS)
        items, total = (
            await mentoring.open_difficulties(
                session,
                actor,
                cipher=cipher(context),
                offset=page * DIFFICULTIES_PER_PAGE,
                limit=DIFFICULTIES_PER_PAGE,
                tz=context.settings.tz,
            )
            if actor is not None and allowed
            else ([], 0)
        )
    if not allowed:
        await deny(update, context)
        return
    if total == 0:
        await edit_or_reply(update, context, "mentoring/no_difficulties")
        return
    first = page * DIFFICULTIES_PER_PAGE + 1
    resolve = label(update, context, "difficulty.resolve")
    rows = inline_rows(
        [(f"{resolve} {first + i}", f"df:r:{d.id}") for i, d in enumerate(items)], per_row=3
    )
    nav = _nav(update, context, "df:pg:", page, total, DIFFICULTIES_PER_PAGE)
    if nav:
        rows.append(nav)
    await edit_or_reply(
        update,
        context,
        "mentoring/difficulties",
        markup=InlineKeyboardMarkup(rows),
        items=items,
        first=first,
        page=page + 1,
        pages=_pages(total, DIFFICULTIES_PER_PAGE),
        total=total,
    )


async def begin_resolution(update: Update, context: CadreContext) -> int:
    """Ask for the note that resolves the pressed difficulty."""
    await _answer(update, drop=False)
    assert context.user_data is not None
    if TALK in context.user_data:
        await reply(update, context, "mentoring/talk_busy")
        await _ask(update, context, _state(context))
        return ConversationHandler.END
    (difficulty_id,) = DIFFICULTY_RESOLVE.values(update)
    try:
        async with context.session() as session:
            actor = await _load_actor(update, session)
            if actor is None:
                raise NotAllowed
            item = await mentoring.difficulty_for_resolution(
                session, actor, difficulty_id, cipher=cipher(context), tz=context.settings.tz
            )
    except NotAllowed:
        await deny(update, context)
        return _leave_resolution(context)
    except Stale:
        await reply(update, context, "common/stale_button")
        return _leave_resolution(context)
    context.user_data[RESOLVE] = {"id": item.id}
    await reply(
        update,
        context,
        "mentoring/ask_resolution",
        item=item,
        min_len=RESOLUTION_MIN_LEN,
        max_len=RESOLUTION_MAX_LEN,
    )
    return NOTE


def _leave_resolution(context: CadreContext) -> int:
    assert context.user_data is not None
    context.user_data.pop(RESOLVE, None)
    return ConversationHandler.END


async def resolve_with_note(update: Update, context: CadreContext) -> int:
    """Mark the difficulty resolved with the typed note."""
    message = update.effective_message
    assert message is not None and message.text is not None and context.user_data is not None
    pending = context.user_data.get(RESOLVE)
    if not pending:
        await reply(update, context, "common/stale_button")
        return _leave_resolution(context)
    try:
        async with context.session() as session:
            actor = await _load_actor(update, session)
            if actor is None:
                raise NotAllowed
            item = await mentoring.resolve_difficulty(
                session,
                actor,
                int(pending["id"]),
                cipher=cipher(context),
                note=message.text,
                now=now(),
                tz=context.settings.tz,
            )
    except RuleError as error:
        await reply(
            update, context, "mentoring/invalid", code=error.code, params=error.params or {}
        )
        return NOTE
    except NotAllowed:
        await deny(update, context)
        return _leave_resolution(context)
    except Stale:
        await reply(update, context, "common/stale_button")
        return _leave_resolution(context)
    await reply(update, context, "mentoring/resolved", item=item)
    return _leave_resolution(context)


async def reprompt_note(update: Update, context: CadreContext) -> int:
    """A sticker, photo or voice where the resolution note is expected."""
    await reply(update, context, "mentoring/invalid", code="note.kind", params={})
    return NOTE


async def answer_command_mid_note(update: Update, context: CadreContext) -> int:
    """Another command while a resolution note is awaited."""
    await reply(update, context, "mentoring/resolve_busy")
    return NOTE


async def cancel_resolution(update: Update, context: CadreContext) -> int:
    """Leave the resolution; the difficulty stays open."""
    await reply(update, context, "common/cancelled", markup=ReplyKeyboardRemove())
    return _leave_resolution(context)


# ---------------------------------------------------------------------------------------------
# Wiring

_SLOT = choice(*MENTOR_SLOTS)
CADRES_PAGE = Button("pr", "pg", PAGE)
CADRE = Button("pr", "n", ID)
SLOT = Button("pr", "s", ID, _SLOT, PAGE)
MENTOR = Button("pr", "m", ID, _SLOT, ID)
KEEP = Button("pr", "k", ID, _SLOT)
PAIRING = Button("pr", "o", ID)
DIFFICULTIES_PAGE = Button("df", "pg", PAGE)
DIFFICULTY_RESOLVE = Button("df", "r", ID)
TALK_WITH = Button("tk", "s", ID)
MENTEE_PICK = Button("tk", "p", ID)
MENTEES_PAGE = Button("tk", "pg", PAGE)
DATE_PICK = Button("tk", "d", choice("0", "1", "x"))
MODE_PICK = Button("tk", "m", CODE)
DIFFICULTY_DROP = Button("tk", "x", INDEX)
EDIT = Button("tk", "e", choice(*EDITABLE))


def _talk_handler() -> ConversationHandler[CadreContext]:
    states: dict[object, list[BaseHandler[Update, CadreContext, Any]]] = {
        MENTEE: [
            on(MENTEE_PICK, pick_mentee),
            on(MENTEES_PAGE, page_mentees),
            MessageHandler(ANSWER, reprompt_talk),
        ],
        DATE: [
            on(DATE_PICK, pick_date),
            MessageHandler(filters.TEXT & ANSWER, type_date),
            MessageHandler(ANSWER, reprompt_talk),
        ],
        MODE: [
            on(MODE_PICK, pick_mode),
            MessageHandler(ANSWER, reprompt_talk),
        ],
        TOPIC: [
            MessageHandler((filters.TEXT | filters.VOICE) & ANSWER, answer_topic),
            MessageHandler(ANSWER, reprompt_talk),
        ],
        DIFFICULTIES: [
            on(Button("tk", "dd"), finish_difficulties),
            on(DIFFICULTY_DROP, remove_difficulty),
            MessageHandler(filters.TEXT & ANSWER, add_difficulty),
            MessageHandler(ANSWER, reprompt_talk),
        ],
        REVIEW: [
            on(EDIT, edit_talk),
            on(Button("tk", "go"), save_talk),
            MessageHandler(ANSWER, reprompt_talk),
        ],
    }
    return conversation(
        TALK,
        [
            CommandHandler("talk", begin_talk, filters=PRIVATE),
            on(TALK_WITH, begin_talk_with),
        ],
        states,
        cancel=cancel_talk,
        busy=answer_command_mid_talk,
        more_fallbacks=[on(Prefix("tk"), refuse_stale_talk_button)],
    )


def _resolution_handler() -> ConversationHandler[CadreContext]:
    return conversation(
        "difficulty",
        [on(DIFFICULTY_RESOLVE, begin_resolution)],
        {
            NOTE: [
                MessageHandler(filters.TEXT & ANSWER, resolve_with_note),
                on(DIFFICULTY_RESOLVE, begin_resolution),
                MessageHandler(ANSWER, reprompt_note),
            ]
        },
        cancel=cancel_resolution,
        busy=answer_command_mid_note,
    )


COMMANDS: tuple[Command, ...] = (
    command("mentees", Role.MENTOR),
    command("talk", Role.MENTOR),
    command("difficulties", Role.MENTOR, *OFFICIALS),
    command("pair", *OFFICIALS),
)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    """The two conversations first (their fallbacks see commands before the plain ones)."""
    return [
        _talk_handler(),
        _resolution_handler(),
        CommandHandler("pair", start_pairing, filters=PRIVATE),
        CommandHandler("mentees", show_mentees, filters=PRIVATE),
        CommandHandler("difficulties", list_difficulties, filters=PRIVATE),
        on(CADRES_PAGE, page_cadres),
        on(CADRE, choose_cadre),
        on(SLOT, choose_slot),
        on(MENTOR, choose_mentor),
        on(KEEP, keep_slot),
        on(PAIRING, show_pairing),
        on(DIFFICULTIES_PAGE, page_difficulties),
    ]
