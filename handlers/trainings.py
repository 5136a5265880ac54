"""Trainings: /training creates a session, /trainings manages them, invitees answer by button
and check in by sending the session's code.

Callback data (short ids only):
- creation, inside the conversation: `tc:k:<kind>`, `tc:o:<topic>`, `tc:d:<duration>`,
  `tc:a:c` (county) | `tc:a:t:<township>` | `tc:a:p` (chosen people), `tc:p:<nomination>`
  (toggle), `tc:pp:<page>`, `tc:pd` (done), `tc:e:<field>`, `tc:go`;
- `tr:sc:<invite>` enters a score (the conversation's second entry point);
- outside it: `tr:l:<page>` list, `tr:v:<training>` one session, `tr:c:<training>:<page>`
  check-in list, `tr:t:<invite>:<page>` tick, `tr:s:<training>:<page>` scores,
  `tr:k:<training>` ranking, `tr:i:<invite>` an invitation, `tr:r:<invite>:y|n` RSVP.

Every button is checked again in storage: a forged or stale one gets common/forbidden or
common/stale_button, never someone else's data.

The check-in code is a plain text message, so its handler sits in group 0 next to the
conversations and must not take texts that are theirs. PTB filters are synchronous and
cannot ask the database whether a text is a code of an open session the sender is invited
to, and a handler in a later group would run in addition to (not instead of) a group-0
conversation or the not-understood catch-all. So `CheckinCodeHandler` matches texts of the
code's shape, asks storage in `handle_update`, and when the text is no code of the sender's
sessions hands the update to the next handler of its group that wants it, exactly as if it
had never matched. Conversations registered before it have already had their turn.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    BaseHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers.chat import codec as cb
from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.reply import (
    conversation,
    deny,
    drop_buttons,
    edit_or_reply,
    keyboard,
    label,
    now,
    reply,
)
from handlers.chat.tg import on
from storage import outbox, people, trainings
from storage.models import OFFICIAL_ROLES, Training
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.rules.identity import RuleError
from storage.trainings import (
    DURATIONS,
    KINDS,
    TOPICS,
    AudienceChanged,
    EmptyAudience,
    TrainingClosed,
    TrainingDraft,
)
from templates import labels_for, normalize_locale, render, split_message

log = logging.getLogger("cadrebot.trainings")

PRIVATE = filters.ChatType.PRIVATE
DRAFT = "training"
PAGE = 8

KIND, TOPIC, TITLE, STARTS, DURATION, PLACE, AUDIENCE, PICK, REVIEW = range(9)
SCORE = 20
ORDER = (KIND, TOPIC, TITLE, STARTS, DURATION, PLACE, AUDIENCE)
EDITABLE = {
    "kind": KIND,
    "topic": TOPIC,
    "title": TITLE,
    "starts": STARTS,
    "duration": DURATION,
    "place": PLACE,
    "audience": AUDIENCE,
}
TEMPLATE = {
    KIND: "ask_kind",
    TOPIC: "ask_topic",
    TITLE: "ask_title",
    STARTS: "ask_starts",
    DURATION: "ask_duration",
    PLACE: "ask_place",
    AUDIENCE: "ask_audience",
    PICK: "ask_people",
    REVIEW: "review",
    SCORE: "ask_score",
}
TEXT_STATES = (TITLE, STARTS, PLACE, SCORE)


@dataclass(slots=True)
class Screen:
    """A message to show: template, values, buttons."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    markup: InlineKeyboardMarkup | None = None


# -- small helpers ----------------------------------------------------------------------------


def _draft(context: CadreContext) -> dict[str, Any]:
    assert context.user_data is not None
    stored: dict[str, Any] = context.user_data.setdefault(
        DRAFT, {"answers": {}, "editing": False, "picked": [], "page": 0}
    )
    return stored


def _answers(context: CadreContext) -> dict[str, Any]:
    return _draft(context)["answers"]  # type: ignore[no-any-return]


def _forget(context: CadreContext) -> None:
    assert context.user_data is not None
    context.user_data.pop(DRAFT, None)


async def _actor(session: AsyncSession, update: Update) -> Actor | None:
    user = update.effective_user
    assert user is not None
    return await people.load_actor(session, user.id)


def _local(context: CadreContext, moment: datetime) -> datetime:
    return moment.astimezone(context.settings.tz)


def _parts(update: Update) -> list[str]:
    query = update.callback_query
    assert query is not None and query.data is not None
    return query.data.split(":")


def _int(value: str) -> int | None:
    """A number from data the codec already admitted (so within INTEGER's range)."""
    return _NUMBER.parse(value)


def _button(update: Update, context: CadreContext, key: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label(update, context, key), callback_data=data)


def _nav(
    update: Update, context: CadreContext, page: int, total: int, data: str
) -> list[InlineKeyboardButton]:
    """Previous/next buttons; `data` has a `{}` where the page goes."""
    row = []
    if page > 0:
        row.append(_button(update, context, "prev", data.format(page - 1)))
    if (page + 1) * PAGE < total:
        row.append(_button(update, context, "next", data.format(page + 1)))
    return row


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE))


async def _show(update: Update, context: CadreContext, screen: Screen, *, edit: bool) -> None:
    if edit:
        await edit_or_reply(update, context, screen.name, markup=screen.markup, **screen.values)
    else:
        await reply(update, context, screen.name, markup=screen.markup, **screen.values)


async def _drop_buttons(update: Update) -> None:
    """Take the buttons off an answered question so that it cannot be answered twice."""
    query = update.callback_query
    if query is not None and query.message is not None:
        # Already without buttons, or too old to edit: nothing to undo.
        with contextlib.suppress(TelegramError):
            await drop_buttons(update)


def _session_values(context: CadreContext, training: Training) -> dict[str, Any]:
    return {
        "kind": training.kind,
        "topic": training.topic,
        "title": training.title,
        "place": training.place,
        "starts": _local(context, training.starts_at),
        "ends": _local(context, training.ends_at),
    }


# -- creating a session: the questions ----------------------------------------------------------


def _choices(
    update: Update, context: CadreContext, prefix: str, group: str, codes: Iterable[str]
) -> InlineKeyboardMarkup:
    buttons = [(label(update, context, f"training.{group}.{c}"), f"{prefix}:{c}") for c in codes]
    return keyboard(buttons, per_row=2)


async def _question(
    update: Update,
    context: CadreContext,
    state: int,
    session: AsyncSession | None = None,
    actor: Actor | None = None,
) -> Screen:
    """The screen of `state`; DB-backed ones use the caller's session or open their own."""
    if state in (AUDIENCE, PICK, REVIEW) and (session is None or actor is None):
        async with context.session() as own:
            found = await _actor(own, update)
            if found is None or not trainings.can_organize(found):
                return Screen("common/forbidden")
            return await _question(update, context, state, own, found)
    draft = _draft(context)
    answers = draft["answers"]
    screen = Screen(f"trainings/{TEMPLATE[state]}", {"editing": bool(draft.get("editing"))})
    if state == KIND:
        screen.markup = _choices(update, context, "tc:k", "kind", KINDS)
    elif state == TOPIC:
        screen.markup = _choices(update, context, "tc:o", "topic", TOPICS)
    elif state == DURATION:
        screen.markup = _choices(update, context, "tc:d", "duration", DURATIONS)
    elif state == STARTS:
        tomorrow = _local(context, now()) + timedelta(days=1)
        screen.values["example"] = tomorrow.replace(hour=9, minute=0, second=0, microsecond=0)
    elif state in (TITLE, PLACE):
        screen.values["current"] = answers.get("title" if state == TITLE else "place", "")
    elif state == AUDIENCE:
        assert session is not None and actor is not None
        buttons: list[tuple[str, str]] = []
        if trainings.is_county_level(actor):
            buttons.append((label(update, context, "training.audience.county"), "tc:a:c"))
        for township in await trainings.audience_townships(session, actor):
            buttons.append((township.name, f"tc:a:t:{township.id}"))
        buttons.append((label(update, context, "training.audience.people"), "tc:a:p"))
        screen.markup = keyboard(buttons, per_row=2)
        screen.values["county"] = trainings.is_county_level(actor)
    elif state == PICK:
        assert session is not None and actor is not None
        page = int(draft.get("page", 0))
        picks, total = await trainings.pickable_pool(
            session, actor, offset=page * PAGE, limit=PAGE
        )
        picked = {p.nomination_id for p in await _valid_picks(session, actor, draft)}
        on, off = (
            label(update, context, "training.mark_on"),
            label(update, context, "training.mark_off"),
        )
        rows = [
            [
                InlineKeyboardButton(
                    f"{on if p.nomination_id in picked else off} {p.full_name} · {p.township}",
                    callback_data=f"tc:p:{p.nomination_id}",
                )
            ]
            for p in picks
        ]
        nav = _nav(update, context, page, total, "tc:pp:{}")
        if nav:
            rows.append(nav)
        rows.append([_button(update, context, "training.pick_done", "tc:pd")])
        screen.markup = InlineKeyboardMarkup(rows)
        screen.values |= {
            "picked": len(picked),
            "total": total,
            "page": page + 1,
            "pages": _pages(total),
        }
    elif state == REVIEW:
        assert session is not None and actor is not None
        names: list[str] = []
        if answers.get("audience") == "people":
            names = [p.full_name for p in await _valid_picks(session, actor, draft)]
        buttons = [(label(update, context, f"training.edit.{f}"), f"tc:e:{f}") for f in EDITABLE]
        edits = keyboard(buttons, per_row=2).inline_keyboard
        save = (_button(update, context, "training.save", "tc:go"),)
        screen.markup = InlineKeyboardMarkup((*edits, save))
        starts = answers.get("starts_at")
        screen.values |= {
            "kind": answers.get("kind", ""),
            "topic": answers.get("topic", ""),
            "title": answers.get("title", ""),
            "place": answers.get("place", ""),
            "starts": _local(context, datetime.fromisoformat(starts)) if starts else None,
            "duration": answers.get("duration", ""),
            "audience": answers.get("audience", ""),
            "township": answers.get("township_name", ""),
            "people": names,
        }
    return screen


async def _valid_picks(
    session: AsyncSession, actor: Actor, draft: dict[str, Any]
) -> list[trainings.PoolPick]:
    """The chosen people, dropping any who left the pool (or the scope) since being picked."""
    picked = [int(n) for n in draft.get("picked", [])]
    picks = await trainings.picked_pool(session, actor, picked)
    valid = {p.nomination_id for p in picks}
    draft["picked"] = [n for n in picked if n in valid]
    return picks


async def _ask(
    update: Update,
    context: CadreContext,
    state: int,
    session: AsyncSession | None = None,
    actor: Actor | None = None,
) -> int:
    """Show the question of `state` and return it as the conversation's state."""
    screen = await _question(update, context, state, session, actor)
    if screen.name == "common/forbidden":
        _forget(context)
        await deny(update, context, session=session)
        return ConversationHandler.END
    _draft(context)["at"] = state
    await _show(update, context, screen, edit=False)
    return state


def _next_state(context: CadreContext, state: int) -> int:
    """After `state` was answered: the next question, or the review when editing."""
    draft = _draft(context)
    if state == AUDIENCE and draft["answers"].get("audience") == "people":
        return PICK
    if draft.get("editing") or state in (PICK, AUDIENCE):
        draft["editing"] = False
        return REVIEW
    return ORDER[ORDER.index(state) + 1]


def _state(context: CadreContext) -> int:
    return int(_draft(context).get("at", KIND))


# -- creating a session: the callbacks ----------------------------------------------------------


async def begin_training(update: Update, context: CadreContext) -> int:
    """Start creating a training session (officials only)."""
    async with context.session() as session:
        actor = await _actor(session, update)
    if not trainings.can_organize(actor):
        await deny(update, context)
        return ConversationHandler.END
    _forget(context)
    _draft(context)
    return await _ask(update, context, KIND)


async def choose_option(update: Update, context: CadreContext) -> int:
    """A kind, topic or duration button of the current question."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    state = _state(context)
    parts = _parts(update)
    expected: dict[int, tuple[str, str, tuple[str, ...]]] = {
        KIND: ("k", "kind", KINDS),
        TOPIC: ("o", "topic", TOPICS),
        DURATION: ("d", "duration", tuple(DURATIONS)),
    }
    if state not in expected or len(parts) != 3:
        return await _stale(update, context)
    code, key, allowed = expected[state]
    if parts[1] != code or parts[2] not in allowed:
        return await _stale(update, context)
    _answers(context)[key] = parts[2]
    await _drop_buttons(update)
    return await _ask(update, context, _next_state(context, state))


async def type_answer(update: Update, context: CadreContext) -> int:
    """A typed title, date and time, or place."""
    message = update.effective_message
    assert message is not None and message.text is not None
    state = _state(context)
    answers = _answers(context)
    try:
        if state == TITLE:
            answers["title"] = trainings.clean_line(
                message.text, min_len=trainings.TITLE_MIN, max_len=trainings.TITLE_MAX
            )
        elif state == PLACE:
            answers["place"] = trainings.clean_line(
                message.text, min_len=trainings.PLACE_MIN, max_len=trainings.PLACE_MAX
            )
        elif state == STARTS:
            starts = trainings.parse_starts_at(message.text, now=now(), tz=context.settings.tz)
            answers["starts_at"] = starts.isoformat()
        else:
            return await use_buttons(update, context)
    except RuleError as error:
        await reply(update, context, "trainings/invalid", code=error.code, params=error.params)
        return await _ask(update, context, state)
    return await _ask(update, context, _next_state(context, state))


async def _lost_role(
    update: Update, context: CadreContext, session: AsyncSession | None = None
) -> int:
    """The official's role was revoked mid-flow: drop the draft, say no."""
    _forget(context)
    await deny(update, context, session=session)
    return ConversationHandler.END


async def choose_audience(update: Update, context: CadreContext) -> int:
    """The county, a township or chosen people; checked against the official's scope."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    answers = _answers(context)
    denied = True
    async with context.session() as session:
        actor = await _actor(session, update)
        if actor is None or not trainings.can_organize(actor):
            return await _lost_role(update, context, session)
        if parts[2:] == ["c"] and trainings.is_county_level(actor):
            answers.update(audience="county", township_id=None, township_name="")
            denied = False
        elif len(parts) == 4 and parts[2] == "t" and (township_id := _int(parts[3])) is not None:
            allowed = {t.id: t.name for t in await trainings.audience_townships(session, actor)}
            if township_id in allowed:
                answers.update(
                    audience="township",
                    township_id=township_id,
                    township_name=allowed[township_id],
                )
                denied = False
        elif parts[2:] == ["p"]:
            answers.update(audience="people", township_id=None, township_name="")
            _draft(context)["page"] = 0
            denied = False
        state = AUDIENCE if denied else _next_state(context, AUDIENCE)
        screen = await _question(update, context, state, session, actor)
    if denied:
        await deny(update, context)
    else:
        await _drop_buttons(update)
    _draft(context)["at"] = state
    await _show(update, context, screen, edit=False)
    return state


async def pick_person(update: Update, context: CadreContext) -> int:
    """Toggle one reserve cadre of the pool, turn the page, or finish choosing."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    draft = _draft(context)
    picked: list[int] = list(draft.get("picked", []))
    if parts[1] == "pd":
        if not picked:
            await reply(update, context, "trainings/pick_none")
            return await _ask(update, context, PICK)
        await _drop_buttons(update)
        return await _ask(update, context, _next_state(context, PICK))
    number = _int(parts[2]) if len(parts) == 3 else None
    if number is None:
        return await _stale(update, context)
    denied = False
    async with context.session() as session:
        actor = await _actor(session, update)
        if actor is None or not trainings.can_organize(actor):
            return await _lost_role(update, context, session)
        if parts[1] == "pp":
            draft["page"] = number
        elif await trainings.picked_pool(session, actor, [number]):
            if number in picked:
                picked.remove(number)
            else:
                picked.append(number)
            draft["picked"] = picked
        else:
            denied = True
        screen = await _question(update, context, PICK, session, actor)
    if denied:
        await deny(update, context)
    await _show(update, context, screen, edit=not denied)
    return PICK


async def edit_field(update: Update, context: CadreContext) -> int:
    """From the review screen: answer one question again."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    if len(parts) != 3 or parts[2] not in EDITABLE:
        return await _stale(update, context)
    _draft(context)["editing"] = True
    await _drop_buttons(update)
    return await _ask(update, context, EDITABLE[parts[2]])


def _draft_of(context: CadreContext) -> TrainingDraft | int:
    """The finished draft, or the state of the first unanswered question."""
    draft = _draft(context)
    answers = draft["answers"]
    for key, state in (
        ("kind", KIND),
        ("topic", TOPIC),
        ("title", TITLE),
        ("starts_at", STARTS),
        ("duration", DURATION),
        ("place", PLACE),
        ("audience", AUDIENCE),
    ):
        if not answers.get(key):
            return state
    if answers["audience"] == "people" and not draft.get("picked"):
        return PICK
    return TrainingDraft(
        kind=answers["kind"],
        topic=answers["topic"],
        title=answers["title"],
        place=answers["place"],
        starts_at=datetime.fromisoformat(answers["starts_at"]),
        duration=answers["duration"],
        audience=answers["audience"],
        township_id=answers.get("township_id"),
        nomination_ids=tuple(int(n) for n in draft.get("picked", [])),
    )


async def save_training(update: Update, context: CadreContext) -> int:
    """Store the session, its invites and check-in code; then send the invitations."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    ready = _draft_of(context)
    if isinstance(ready, int):
        _draft(context)["editing"] = True
        return await _ask(update, context, ready)
    problem: str | None = None
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            created = await trainings.create_training(session, actor, ready, now=now())
            # Queued with the session it announces: sent by the dispatcher within limits.
            delivered = await plan_invitations(
                session, context, created.training, created.invitations
            )
    except RuleError as error:
        await reply(update, context, "trainings/invalid", code=error.code, params=error.params)
        _draft(context)["editing"] = True
        return await _ask(update, context, STARTS)
    except AudienceChanged:
        problem = "audience_changed"
    except EmptyAudience:
        problem = "empty_audience"
    except NotAllowed:
        _forget(context)
        await deny(update, context)
        return ConversationHandler.END
    if problem is not None:
        await reply(update, context, f"trainings/{problem}")
        _draft(context)["editing"] = True
        return await _ask(update, context, PICK if problem == "audience_changed" else AUDIENCE)
    await _drop_buttons(update)
    _forget(context)
    await reply(
        update,
        context,
        "trainings/saved",
        code=created.training.checkin_code,
        invited=created.invited,
        reachable=len(created.invitations),
        delivered=delivered,
        **_session_values(context, created.training),
    )
    return ConversationHandler.END


async def plan_invitations(
    session: AsyncSession,
    context: CadreContext,
    training: Training,
    invitations: list[trainings.Invitation],
) -> int:
    """Queue each invitee's invitation in their language, with RSVP buttons (the outbox).

    Returns how many were queued; the dispatcher sends them within Telegram's limits and
    marks people who blocked the bot as unreachable, without holding up the organizer.
    """
    queued = 0
    values = _session_values(context, training)
    for invitation in invitations:
        locale = normalize_locale(invitation.language, context.settings.locale)
        body = render(context.jinja, locale, "trainings/invitation", rsvp=None, **values)
        markup = _rsvp_markup(labels_for(context.jinja, locale), invitation.invite_id)
        if await outbox.plan(
            session,
            key=f"training-invite:{invitation.invite_id}",
            chat_id=invitation.telegram_id,
            kind="trainings/invitation",
            parts=split_message(body),
            markup=markup.to_dict(),
        ):
            queued += 1
    return queued


def _rsvp_markup(labels: dict[str, str], invite_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    labels["training.rsvp_yes"], callback_data=f"tr:r:{invite_id}:y"
                ),
                InlineKeyboardButton(
                    labels["training.rsvp_no"], callback_data=f"tr:r:{invite_id}:n"
                ),
            ]
        ]
    )


# -- entering a competition score (the same conversation, second entry point) ------------------


async def ask_score(update: Update, context: CadreContext) -> int:
    """Ask the organizer for one attendee's competition score."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    invite_id = _int(parts[2]) if len(parts) == 3 else None
    if invite_id is None:
        await reply(update, context, "common/stale_button")
        return ConversationHandler.END
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            target = await trainings.score_target(session, actor, invite_id)
    except NotAllowed:
        await deny(update, context)
        return _leave_score(context)
    _forget(context)
    _draft(context).update(at=SCORE, invite_id=target.invite_id)
    await reply(
        update,
        context,
        "trainings/ask_score",
        person=target.full_name,
        score=target.score,
    )
    return SCORE


def _leave_score(context: CadreContext) -> int:
    """End the conversation, unless a score question was open: then keep waiting for it."""
    assert context.user_data is not None
    draft = context.user_data.get(DRAFT) or {}
    return SCORE if draft.get("at") == SCORE else ConversationHandler.END


async def type_score(update: Update, context: CadreContext) -> int:
    """A typed score (0–100, one decimal): store it and show the scores again."""
    message = update.effective_message
    assert message is not None and message.text is not None
    invite_id = int(_draft(context).get("invite_id", 0))
    try:
        score = trainings.parse_score(message.text)
    except RuleError as error:
        await reply(update, context, "trainings/invalid", code=error.code, params=error.params)
        return SCORE
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            training = await trainings.set_score(session, actor, invite_id, score)
            screen = await _scores_screen(update, context, session, actor, training.id, 0)
    except NotAllowed:
        _forget(context)
        await deny(update, context)
        return ConversationHandler.END
    _forget(context)
    await reply(update, context, "trainings/score_saved", score=score)
    await _show(update, context, screen, edit=False)
    return ConversationHandler.END


# -- inside the conversation: wrong input, other commands, /cancel ------------------------------


async def use_buttons(update: Update, context: CadreContext) -> int:
    """Text where a button is expected: say so and ask again."""
    await reply(update, context, "trainings/use_buttons")
    return await _ask(update, context, _state(context))


async def reprompt(update: Update, context: CadreContext) -> int:
    """A sticker, photo, voice… : ask the current question again."""
    state = _state(context)
    await reply(update, context, "common/wrong_input")
    if state == SCORE:
        return SCORE
    return await _ask(update, context, state)


async def stale_in_flow(update: Update, context: CadreContext) -> int:
    """A button of an earlier question: it no longer applies; ask the current one again."""
    query = update.callback_query
    if query is not None:
        await query.answer()
    return await _stale(update, context)


async def _stale(update: Update, context: CadreContext) -> int:
    """Say the button no longer applies (its query is already answered) and ask again."""
    await reply(update, context, "common/stale_button")
    state = _state(context)
    if state == SCORE:
        return SCORE
    return await _ask(update, context, state)


async def busy(update: Update, context: CadreContext) -> int:
    """Another command in the middle of the flow: say how to go on or leave."""
    state = _state(context)
    await reply(update, context, "trainings/busy", scoring=state == SCORE)
    if state == SCORE:
        return SCORE
    return await _ask(update, context, state)


async def cancel(update: Update, context: CadreContext) -> int:
    """Leave the flow; the draft is dropped, nothing was stored."""
    _forget(context)
    await reply(update, context, "common/cancelled", markup=ReplyKeyboardRemove())
    return ConversationHandler.END


# -- managing sessions: /trainings ------------------------------------------------------------


async def list_sessions(update: Update, context: CadreContext) -> None:
    """Officials: the sessions they manage. Everyone else: their own invitations."""
    query = update.callback_query
    if query is not None:
        await query.answer()
    page = 0
    if query is not None:
        parts = _parts(update)
        page = (_int(parts[2]) or 0) if len(parts) == 3 else 0
    async with context.session() as session:
        actor = await _actor(session, update)
        if actor is not None and trainings.can_organize(actor):
            items, total = await trainings.list_trainings(
                session, actor, offset=page * PAGE, limit=PAGE
            )
            screen = _list_screen(update, context, items, total, page)
        else:
            mine = [] if actor is None else await trainings.my_trainings(session, actor, now=now())
            screen = _mine_screen(update, context, mine)
    await _show(update, context, screen, edit=query is not None)


def _list_screen(
    update: Update,
    context: CadreContext,
    items: list[trainings.TrainingItem],
    total: int,
    page: int,
) -> Screen:
    # Numbered like the lines of the message, so that equal titles stay apart.
    rows = [
        [InlineKeyboardButton(f"{n}. {i.title}", callback_data=f"tr:v:{i.id}")]
        for n, i in enumerate(items, start=1)
    ]
    nav = _nav(update, context, page, total, "tr:l:{}")
    if nav:
        rows.append(nav)
    shown = [
        {
            "kind": i.kind,
            "topic": i.topic,
            "title": i.title,
            "starts": _local(context, i.starts_at),
            "invited": i.invited,
            "attended": i.attended,
        }
        for i in items
    ]
    return Screen(
        "trainings/list",
        {"items": shown, "total": total, "page": page + 1, "pages": _pages(total)},
        InlineKeyboardMarkup(rows) if rows else None,
    )


def _mine_screen(
    update: Update, context: CadreContext, mine: list[trainings.MyTraining]
) -> Screen:
    current = now()
    shown = [
        {
            "kind": m.kind,
            "topic": m.topic,
            "title": m.title,
            "place": m.place,
            "starts": _local(context, m.starts_at),
            "rsvp": m.rsvp,
            "attended": m.attended,
            "over": m.ends_at < current,
        }
        for m in mine
    ]
    rows = [
        [InlineKeyboardButton(m.title, callback_data=f"tr:i:{m.invite_id}")]
        for m in mine
        if m.starts_at > current
    ]
    return Screen("trainings/mine", {"items": shown}, InlineKeyboardMarkup(rows) if rows else None)


async def show_session(update: Update, context: CadreContext) -> None:
    """One session: when, where, code, RSVPs and attendance, and what can be done."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    training_id = _int(parts[2]) if len(parts) == 3 else None
    if training_id is None:
        await reply(update, context, "common/stale_button")
        return
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            view = await trainings.training_view(session, actor, training_id)
    except NotAllowed:
        await deny(update, context)
        return
    training = view.training
    rows = [[_button(update, context, "training.checkin_list", f"tr:c:{training.id}:0")]]
    if training.kind == "competition":
        rows.append(
            [
                _button(update, context, "training.scores", f"tr:s:{training.id}:0"),
                _button(update, context, "training.ranking", f"tr:k:{training.id}"),
            ]
        )
    rows.append([_button(update, context, "training.list", "tr:l:0")])
    await edit_or_reply(
        update,
        context,
        "trainings/view",
        markup=InlineKeyboardMarkup(rows),
        code=training.checkin_code,
        township=view.township,
        invited=view.invited,
        yes=view.yes,
        no=view.no,
        attended=view.attended,
        scored=view.scored,
        **_session_values(context, training),
    )


def _invitee_rows(
    update: Update,
    context: CadreContext,
    page: trainings.InviteePage,
    number: int,
    *,
    scores: bool,
) -> InlineKeyboardMarkup:
    training_id = page.training.id
    rows: list[list[InlineKeyboardButton]] = []
    for row in page.rows:
        if scores:
            shown = (
                f"{row.score:.1f}"
                if row.score is not None
                else label(update, context, "training.no_score")
            )
            text, data = f"{row.full_name} · {shown}", f"tr:sc:{row.invite_id}"
        else:
            mark = label(
                update, context, "training.mark_on" if row.attended else "training.mark_off"
            )
            text, data = (
                f"{mark} {row.full_name} · {row.township}",
                f"tr:t:{row.invite_id}:{number}",
            )
        rows.append([InlineKeyboardButton(text, callback_data=data)])
    letter = "s" if scores else "c"
    nav = _nav(update, context, number, page.total, f"tr:{letter}:{training_id}:{{}}")
    if nav:
        rows.append(nav)
    rows.append([_button(update, context, "training.session", f"tr:v:{training_id}")])
    return InlineKeyboardMarkup(rows)


async def _checkin_screen(
    update: Update,
    context: CadreContext,
    session: AsyncSession,
    actor: Actor,
    training_id: int,
    number: int,
) -> Screen:
    page = await trainings.invitees(session, actor, training_id, offset=number * PAGE, limit=PAGE)
    view = await trainings.training_view(session, actor, training_id)
    return Screen(
        "trainings/checkin_list",
        {
            "rows": [
                {
                    "name": r.full_name,
                    "township": r.township,
                    "rsvp": r.rsvp,
                    "attended": r.attended,
                }
                for r in page.rows
            ],
            "invited": view.invited,
            "attended": view.attended,
            "page": number + 1,
            "pages": _pages(page.total),
            **_session_values(context, page.training),
        },
        _invitee_rows(update, context, page, number, scores=False),
    )


async def _scores_screen(
    update: Update,
    context: CadreContext,
    session: AsyncSession,
    actor: Actor,
    training_id: int,
    number: int,
) -> Screen:
    page = await trainings.invitees(
        session, actor, training_id, attended_only=True, offset=number * PAGE, limit=PAGE
    )
    return Screen(
        "trainings/scores",
        {
            "rows": [{"name": r.full_name, "score": r.score} for r in page.rows],
            "total": page.total,
            "page": number + 1,
            "pages": _pages(page.total),
            **_session_values(context, page.training),
        },
        _invitee_rows(update, context, page, number, scores=True),
    )


async def show_checkin_list(update: Update, context: CadreContext) -> None:
    """The check-in list: one ✅/⬜ button per invitee, paged."""
    await _paged(update, context, scores=False)


async def show_scores(update: Update, context: CadreContext) -> None:
    """A competition's attendees with their scores; pressing one asks for the score."""
    await _paged(update, context, scores=True)


async def _paged(update: Update, context: CadreContext, *, scores: bool) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    training_id = _int(parts[2]) if len(parts) == 4 else None
    number = _int(parts[3]) if len(parts) == 4 else None
    if training_id is None or number is None:
        await reply(update, context, "common/stale_button")
        return
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            if scores:
                view = await trainings.training_view(session, actor, training_id)
                if view.training.kind != "competition":
                    raise NotAllowed
                screen = await _scores_screen(update, context, session, actor, training_id, number)
            else:
                screen = await _checkin_screen(
                    update, context, session, actor, training_id, number
                )
    except NotAllowed:
        await deny(update, context)
        return
    await _show(update, context, screen, edit=True)


async def toggle_attendance(update: Update, context: CadreContext) -> None:
    """Tick or untick one invitee on the check-in list."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    invite_id = _int(parts[2]) if len(parts) == 4 else None
    number = _int(parts[3]) if len(parts) == 4 else None
    if invite_id is None or number is None:
        await reply(update, context, "common/stale_button")
        return
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            training = await trainings.toggle_attendance(session, actor, invite_id, now=now())
            screen = await _checkin_screen(update, context, session, actor, training.id, number)
    except NotAllowed:
        await deny(update, context)
        return
    except TrainingClosed:
        await reply(update, context, "trainings/not_open")
        return
    await _show(update, context, screen, edit=True)


async def show_ranking(update: Update, context: CadreContext) -> None:
    """A competition's ranking; equal scores share a rank."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    training_id = _int(parts[2]) if len(parts) == 3 else None
    if training_id is None:
        await reply(update, context, "common/stale_button")
        return
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            training, ranks = await trainings.ranking(session, actor, training_id)
    except NotAllowed:
        await deny(update, context)
        return
    rows = [[_button(update, context, "training.session", f"tr:v:{training.id}")]]
    await edit_or_reply(
        update,
        context,
        "trainings/ranking",
        markup=InlineKeyboardMarkup(rows),
        rows=[
            {"rank": r.rank, "name": r.full_name, "township": r.township, "score": r.score}
            for r in ranks
        ],
        **_session_values(context, training),
    )


# -- the invitee: invitation, RSVP, check-in ---------------------------------------------------


async def show_invitation(update: Update, context: CadreContext) -> None:
    """One of the person's own invitations, with RSVP buttons until it starts."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    invite_id = _int(parts[2]) if len(parts) == 3 else None
    if invite_id is None:
        await reply(update, context, "common/stale_button")
        return
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            view = await trainings.own_invitation(session, actor, invite_id)
    except NotAllowed:
        await deny(update, context)
        return
    await _show_invitation(update, context, view)


async def _show_invitation(
    update: Update, context: CadreContext, view: trainings.InviteView
) -> None:
    markup = None
    if now() < view.training.starts_at:
        labels = {k: label(update, context, k) for k in ("training.rsvp_yes", "training.rsvp_no")}
        markup = _rsvp_markup(labels, view.invite.id)
    await edit_or_reply(
        update,
        context,
        "trainings/invitation",
        markup=markup,
        rsvp=view.invite.rsvp,
        **_session_values(context, view.training),
    )


async def answer_invitation(update: Update, context: CadreContext) -> None:
    """The invitee's yes or no; only they may answer, and only until the session starts."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    parts = _parts(update)
    invite_id = _int(parts[2]) if len(parts) == 4 else None
    if invite_id is None or parts[3] not in ("y", "n"):
        await reply(update, context, "common/stale_button")
        return
    answer: Literal["yes", "no"] = "yes" if parts[3] == "y" else "no"
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            view = await trainings.answer_rsvp(session, actor, invite_id, answer, now=now())
    except NotAllowed:
        await deny(update, context)
        return
    except TrainingClosed:
        await reply(update, context, "trainings/rsvp_closed")
        return
    await _show_invitation(update, context, view)


async def check_in_with_code(update: Update, context: CadreContext) -> bool:
    """Record attendance for a session's check-in code; False lets the text pass on."""
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None and message.text is not None
    async with context.session() as session:
        actor = await people.load_actor(session, user.id)
        result = (
            None
            if actor is None
            else await trainings.check_in_by_code(session, actor, message.text, now=now())
        )
    if result is None:
        return False
    await reply(
        update,
        context,
        "trainings/checkin",
        outcome=result.outcome,
        opens=_local(context, result.opens_at),
        closes=_local(context, result.closes_at),
        **_session_values(context, result.training),
    )
    return True


class CheckinCodeHandler(MessageHandler[CadreContext, object]):
    """Takes a text only when it is a check-in code of the sender's sessions.

    `check_update` can only see the shape of the text; the database answers in
    `handle_update`. When the callback returns False the update goes to the next handler of
    this group that wants it, as if this one had not matched.
    """

    async def handle_update(
        self,
        update: Update,
        application: Application[Any, CadreContext, Any, Any, Any, Any],
        check_result: Any,
        context: CadreContext,
    ) -> object:
        if await super().handle_update(update, application, check_result, context):
            return None
        context.matches = None  # our regex's match is no business of the next handler
        for handlers in application.handlers.values():
            if self in handlers:
                later = handlers[handlers.index(self) + 1 :]
                break
        else:
            return None
        for handler in later:
            check = handler.check_update(update)
            if check is None or check is False:
                continue
            return await handler.handle_update(update, application, check, context)
        return None


# -- wiring -------------------------------------------------------------------------------------


# The buttons whose data this module's handlers index after the codec admitted it.
_NUMBER = cb.Number(0, cb.INT_MAX)
AUDIENCE_PRESS = cb.AnyOf(
    cb.Button("tc", "a", "c"), cb.Button("tc", "a", "t", cb.ID), cb.Button("tc", "a", "p")
)
PICK_PRESS = cb.AnyOf(
    cb.Button("tc", "p", cb.ID), cb.Button("tc", "pp", cb.PAGE), cb.Button("tc", "pd")
)
SCORE_PRESS = cb.Button("tr", "sc", cb.ID)


# /trainings: an official's sessions, anyone else's invitations; /training: organizers.
COMMANDS: tuple[Command, ...] = (
    command("trainings"),
    command("training", *OFFICIAL_ROLES),
)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    """The creation/score conversation first, then the buttons, then the check-in code."""
    anything = ~filters.COMMAND & PRIVATE
    typed = filters.TEXT & anything
    stale = on(cb.AnyOf(cb.Prefix("tc"), cb.Prefix("tr:sc")), stale_in_flow)
    states: dict[object, list[BaseHandler[Update, CadreContext, Any]]] = {}
    for state, pattern, callback in (
        (KIND, cb.Button("tc", "k", cb.CODE), choose_option),
        (TOPIC, cb.Button("tc", "o", cb.CODE), choose_option),
        (DURATION, cb.Button("tc", "d", cb.CODE), choose_option),
        (AUDIENCE, AUDIENCE_PRESS, choose_audience),
        (PICK, PICK_PRESS, pick_person),
        (REVIEW, cb.Button("tc", "e", cb.CODE), edit_field),
    ):
        states[state] = [
            on(pattern, callback),
            stale,
            MessageHandler(typed, use_buttons),
            MessageHandler(anything, reprompt),
        ]
    states[REVIEW].insert(0, on(cb.Button("tc", "go"), save_training))
    for state in (TITLE, STARTS, PLACE):
        states[state] = [
            MessageHandler(typed, type_answer),
            stale,
            MessageHandler(anything, reprompt),
        ]
    states[SCORE] = [
        MessageHandler(typed, type_score),
        on(SCORE_PRESS, ask_score),
        MessageHandler(anything, reprompt),
    ]
    training = conversation(
        "training",
        [
            CommandHandler("training", begin_training, filters=PRIVATE),
            on(SCORE_PRESS, ask_score),
        ],
        states,
        cancel=cancel,
        busy=busy,
    )
    return [
        training,
        CommandHandler("trainings", list_sessions, filters=PRIVATE),
        on(cb.Button("tr", "l", cb.PAGE), list_sessions),
        on(cb.Button("tr", "v", cb.ID), show_session),
        on(cb.Button("tr", "c", cb.ID, cb.PAGE), show_checkin_list),
        on(cb.Button("tr", "t", cb.ID, cb.PAGE), toggle_attendance),
        on(cb.Button("tr", "s", cb.ID, cb.PAGE), show_scores),
        on(cb.Button("tr", "k", cb.ID), show_ranking),
        on(cb.Button("tr", "i", cb.ID), show_invitation),
        on(cb.Button("tr", "r", cb.ID, cb.choice("y", "n")), answer_invitation),
        CheckinCodeHandler(
            filters.TEXT
            & anything
            & filters.Regex(re.compile(trainings.CHECKIN_PATTERN, re.IGNORECASE)),
            check_in_with_code,
        ),
    ]
