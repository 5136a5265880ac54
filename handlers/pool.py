"""/pool (the reserve pool) and /dossier (one-person-one-file): list, filter, read, adjust out.

The current filter lives in user_data as short codes and ids, so the buttons carry only
"pl:<verb>[:<value>]". Every button re-checks the person's scope in the storage query:
a forged or outdated button gets common/forbidden or common/stale_button, never data.

The conversation only holds the few moments when text is expected (a name to search, the
reason for an adjustment, its confirmation). Every pool button and /pool or /dossier is an
entry point with re-entry allowed, so pressing something else abandons a half-typed reason.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
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
    cipher,
    conversation,
    deny,
    drop_buttons,
    edit_or_reply,
    inline_rows,
    keyboard,
    label,
    locale_of,
    now,
    reply,
    text,
)
from handlers.chat.tg import on
from handlers.oversight.export import SPOOL_BYTES, workbook_labels
from storage import (
    export,
    figures,
    geo,
    grades,
    mentoring,
    nominations,
    outcomes,
    people,
    posts,
    projects,
    trainings,
)
from storage.mentoring import opened_text
from storage.models import OFFICIAL_ROLES, Role
from storage.nominations import Dossier, NotAllowed, PoolFilter, QueueItem
from storage.people import Actor
from storage.rules.identity import RuleError, clean_text
from storage.rules.options import EDUCATIONS
from storage.rules.vetting import IllegalTransition, Status

PRIVATE = filters.ChatType.PRIVATE
POOL_KEY = "pool"
PAGE_SIZE = 10
NAME_MAX = 20
REASON_MIN = 2
REASON_MAX = 500
DIMENSIONS = ("t", "kg", "ed", "st")
FILTER_KEYS = (*DIMENSIONS, "q")
# Input-only keys: forgotten whenever the person does anything else.
INPUT_KEYS = ("adjust", "adjust_name", "reason", "waiting")
# Nine digits stay below 2**31: a forged huge id must not reach an INTEGER column.
ID_RE = re.compile(r"[0-9]{1,9}")

SEARCH_NAME, ADJUST_REASON, ADJUST_CONFIRM = range(3)
END = ConversationHandler.END


@dataclass(frozen=True, slots=True)
class Listing:
    items: list[QueueItem]
    total: int
    page: int
    townships: list[tuple[int, str]]


def _state(context: CadreContext) -> dict[str, Any]:
    assert context.user_data is not None
    state: dict[str, Any] = context.user_data.setdefault(POOL_KEY, {})
    return state


def _forget_input(context: CadreContext) -> None:
    # No setdefault here: a candidate reading their file should leave no pool state behind.
    state = context.user_data.get(POOL_KEY) if context.user_data is not None else None
    if state:
        for key in INPUT_KEYS:
            state.pop(key, None)


def _is_official(actor: Actor | None) -> TypeGuard[Actor]:
    return actor is not None and actor.has(*OFFICIAL_ROLES)


def _pool_filter(state: dict[str, Any]) -> PoolFilter:
    return PoolFilter(
        township_id=state.get("t"),
        key_group=state.get("kg"),
        education=state.get("ed"),
        status=state.get("st"),
        name=state.get("q"),
    )


def _when(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


async def _actor(session: AsyncSession, update: Update) -> Actor | None:
    user = update.effective_user
    assert user is not None
    return await people.load_actor(session, user.id)


async def _townships(session: AsyncSession, actor: Actor) -> list[tuple[int, str]]:
    """Townships the actor may filter by: all for county scope, else their own grants."""
    if actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL):
        return [(t.id, t.name) for t in await geo.list_townships(session)]
    own = {
        g.township_id: g.township_name or ""
        for g in actor.grants
        if g.role == Role.TOWNSHIP_OFFICIAL and g.township_id
    }
    return sorted(own.items())


async def _listing(session: AsyncSession, actor: Actor, state: dict[str, Any]) -> Listing:
    townships = await _townships(session, actor)
    if state.get("t") is not None and state["t"] not in dict(townships):
        # Chosen under a wider role than the person now holds.
        state.pop("t")
    page = max(0, int(state.get("page", 0)))
    flt = _pool_filter(state)
    items, total = await nominations.search_pool(
        session, actor, flt, offset=page * PAGE_SIZE, limit=PAGE_SIZE
    )
    if not items and page > 0:
        # The pool shrank since the buttons were drawn: show the last page there is.
        page = max(0, (total - 1) // PAGE_SIZE)
        items, total = await nominations.search_pool(
            session, actor, flt, offset=page * PAGE_SIZE, limit=PAGE_SIZE
        )
    state["page"] = page
    return Listing(items, total, page, townships)


async def _deny(update: Update, context: CadreContext) -> int:
    _forget_input(context)
    await deny(update, context)
    return END


async def _stale(update: Update, context: CadreContext) -> int:
    _forget_input(context)
    await reply(update, context, "common/stale_button")
    return END


async def _answer_query(update: Update) -> str:
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    return query.data


async def _show_listing(
    update: Update, context: CadreContext, listing: Listing, *, edit: bool
) -> int:
    state = _state(context)
    shown: list[dict[str, str]] = []
    names = dict(listing.townships)
    for key in FILTER_KEYS:
        value = state.get(key)
        if value is None or key == "st":
            continue
        if key == "t":
            text = names.get(int(value), str(value))
        elif key == "kg":
            text = label(update, context, f"key_group.{value}")
        elif key == "ed":
            text = label(update, context, f"education.{value}")
        else:
            text = str(value)
        shown.append({"kind": key, "value": text})
    status = state.get("st") or Status.IN_POOL.value
    pages = max(1, -(-listing.total // PAGE_SIZE))
    rows = [
        [
            InlineKeyboardButton(
                f"{item.full_name or item.id} · {item.township}", callback_data=f"pl:o:{item.id}"
            )
        ]
        for item in listing.items
    ]
    nav = []
    if listing.page > 0:
        nav.append(("prev", f"pl:p:{listing.page - 1}"))
    if (listing.page + 1) * PAGE_SIZE < listing.total:
        nav.append(("next", f"pl:p:{listing.page + 1}"))
    rows += inline_rows([(label(update, context, k), d) for k, d in nav], per_row=2)
    dims = [("by_key_group", "pl:f:kg"), ("by_education", "pl:f:ed"), ("by_status", "pl:f:st")]
    if len(listing.townships) > 1:
        dims.insert(0, ("by_township", "pl:f:t"))
    tools = [("search", "pl:s")]
    if shown or state.get("st"):
        tools.append(("clear", "pl:x"))
    rows += inline_rows([(label(update, context, f"pool.{k}"), d) for k, d in dims], per_row=4)
    rows += inline_rows([(label(update, context, f"pool.{k}"), d) for k, d in tools], per_row=2)
    values: dict[str, Any] = {
        "status": label(update, context, f"status.{status}"),
        "filters": shown,
        "items": listing.items,
        "total": listing.total,
        "page": listing.page + 1,
        "pages": pages,
        "offset": listing.page * PAGE_SIZE,
    }
    markup = InlineKeyboardMarkup(rows)
    if edit:
        await edit_or_reply(update, context, "pool/list", markup=markup, **values)
    else:
        await reply(update, context, "pool/list", markup=markup, **values)
    return END


# -- the list ----------------------------------------------------------------------------------


async def show_pool(update: Update, context: CadreContext) -> int:
    """List the reserve pool in the official's scope, with the current filter."""
    _forget_input(context)
    async with context.session() as session:
        actor = await _actor(session, update)
        listing = await _listing(session, actor, _state(context)) if _is_official(actor) else None
    if listing is None:
        return await _deny(update, context)
    return await _show_listing(update, context, listing, edit=False)


async def turn_page(update: Update, context: CadreContext) -> int:
    """Show another page of the list."""
    await _answer_query(update)
    _forget_input(context)
    state = _state(context)
    state["page"] = PAGE_PRESS.values(update)[0]
    async with context.session() as session:
        actor = await _actor(session, update)
        listing = await _listing(session, actor, state) if _is_official(actor) else None
    if listing is None:
        return await _deny(update, context)
    return await _show_listing(update, context, listing, edit=True)


def _choices(
    update: Update, context: CadreContext, dimension: str, townships: list[tuple[int, str]]
) -> list[tuple[str, str]]:
    """(label, value) pairs a filter dimension offers."""
    if dimension == "t":
        return [(name, str(tid)) for tid, name in townships]
    if dimension == "kg":
        codes: tuple[str, ...] = context.settings.key_group_codes
    elif dimension == "ed":
        codes = EDUCATIONS
    else:
        codes = tuple(s.value for s in Status)
    prefix = {"kg": "key_group", "ed": "education", "st": "status"}[dimension]
    return [(label(update, context, f"{prefix}.{code}"), code) for code in codes]


async def choose_filter(update: Update, context: CadreContext) -> int:
    """Offer the values of one filter dimension."""
    await _answer_query(update)
    _forget_input(context)
    (dimension,) = FILTER_PRESS.values(update)
    async with context.session() as session:
        actor = await _actor(session, update)
        townships = await _townships(session, actor) if _is_official(actor) else []
    # Township officials of one township get no township filter; nobody gets another's.
    if not _is_official(actor) or (dimension == "t" and len(townships) <= 1):
        return await _deny(update, context)
    buttons = [
        (text, f"pl:f:{dimension}:{value}")
        for text, value in _choices(update, context, dimension, townships)
    ]
    buttons.append((label(update, context, "pool.any"), f"pl:f:{dimension}:*"))
    buttons.append((label(update, context, "back"), f"pl:p:{_state(context).get('page', 0)}"))
    await edit_or_reply(
        update, context, "pool/choose", markup=keyboard(buttons, per_row=2), dimension=dimension
    )
    return END


async def set_filter(update: Update, context: CadreContext) -> int:
    """Apply one filter value (or "*" for any) and show the first page."""
    await _answer_query(update)
    _forget_input(context)
    dimension, value = FILTER_VALUE_PRESS.values(update)
    state = _state(context)
    listing: Listing | None = None
    known = True
    async with context.session() as session:
        actor = await _actor(session, update)
        if _is_official(actor):
            townships = await _townships(session, actor)
            offered = {v for _, v in _choices(update, context, dimension, townships)}
            known = value == "*" or value in offered
            if known:
                state[dimension] = (
                    None if value == "*" else int(value) if dimension == "t" else value
                )
                state["page"] = 0
                listing = await _listing(session, actor, state)
    if listing is None and (known or dimension == "t"):
        # Not an official, or a township outside their scope.
        return await _deny(update, context)
    if listing is None:
        # A code no longer offered (settings changed since the button was drawn).
        return await _stale(update, context)
    return await _show_listing(update, context, listing, edit=True)


async def clear_filters(update: Update, context: CadreContext) -> int:
    """Drop every filter and show the pool from the first page."""
    await _answer_query(update)
    _forget_input(context)
    state = _state(context)
    for key in FILTER_KEYS:
        state.pop(key, None)
    state["page"] = 0
    async with context.session() as session:
        actor = await _actor(session, update)
        listing = await _listing(session, actor, state) if _is_official(actor) else None
    if listing is None:
        return await _deny(update, context)
    return await _show_listing(update, context, listing, edit=True)


async def ask_name(update: Update, context: CadreContext) -> int:
    """Ask for a name fragment to search the pool by."""
    await _answer_query(update)
    _forget_input(context)
    async with context.session() as session:
        actor = await _actor(session, update)
    if not _is_official(actor):
        return await _deny(update, context)
    _state(context)["waiting"] = "name"
    await reply(update, context, "pool/ask_name", max_len=NAME_MAX)
    return SEARCH_NAME


async def take_name(update: Update, context: CadreContext) -> int:
    """Search by the name fragment typed; a bad one is asked again."""
    message = update.effective_message
    assert message is not None and message.text is not None
    try:
        fragment = clean_text(message.text, max_len=NAME_MAX)
    except RuleError as error:
        await reply(update, context, "form/invalid", code=error.code, params=error.params)
        await reply(update, context, "pool/ask_name", max_len=NAME_MAX)
        return SEARCH_NAME
    state = _state(context)
    state["q"] = fragment
    state["page"] = 0
    state.pop("waiting", None)
    async with context.session() as session:
        actor = await _actor(session, update)
        listing = await _listing(session, actor, state) if _is_official(actor) else None
    if listing is None:
        return await _deny(update, context)
    return await _show_listing(update, context, listing, edit=False)


# -- the file ----------------------------------------------------------------------------------


def _dossier_values(context: CadreContext, dossier: Dossier) -> dict[str, Any]:
    """What the file template shows. Reasons and notes only reach officials and reviewers."""
    n = dossier.nomination
    tz = context.settings.tz
    notes = dossier.show_reviews
    reasons = dossier.show_reasons
    person = {
        "id": n.id,
        "name": dossier.full_name,
        "status": n.status,
        "gender": n.gender,
        "birth_date": n.birth_date.isoformat() if n.birth_date else None,
        # Masked when stored; the full numbers are never decrypted for display.
        "id_masked": n.id_number_masked,
        "phone_masked": n.phone_masked,
        "ethnicity": n.ethnicity,
        "political_status": n.political_status,
        "education": n.education,
        "township": dossier.township,
        "village": dossier.village,
        "key_group": n.key_group,
        "channel": n.channel,
        "specialties": n.specialties,
        "work_history": n.work_history,
        "motivation": n.motivation,
        "reason": n.reason if reasons else None,
    }
    history = [
        {
            "at": _when(change.at, tz),
            # "submit:mass" → "submit": the channel is shown once, above.
            "event": change.event.split(":", 1)[0],
            "status": change.to_status,
            "reason": (
                opened_text(cipher(context), change.reason, change.reason_enc) if reasons else None
            ),
        }
        for change in dossier.history
    ]
    reviews = [
        {
            "department": review.department,
            "decision": review.decision,
            "at": _when(review.decided_at, tz) if review.decided_at else None,
            "note": opened_text(cipher(context), review.note, review.note_enc),
        }
        for review in (dossier.reviews if notes else [])
    ]
    return {"person": person, "history": history, "reviews": reviews, "show_notes": notes}


async def _show_dossier(update: Update, context: CadreContext, nomination_id: int | None) -> int:
    _forget_input(context)
    values: dict[str, Any] | None = None
    adjustable = False
    exportable = False
    instead = "common/forbidden"
    async with context.session() as session:
        actor = await _actor(session, update)
        if nomination_id is None:
            # No id: one's own file. Staff without one are shown how to ask for a file.
            own = await nominations.own_nominations(session, actor.person_id) if actor else []
            nomination_id = max((n.id for n in own), default=None)
            staff = actor is not None and (_is_official(actor) or bool(actor.departments()))
            instead = "dossier/usage" if staff else "dossier/none"
        if actor is not None and nomination_id is not None:
            try:
                dossier = await nominations.load_dossier(session, actor, nomination_id, now=now())
            except NotAllowed:
                dossier = None
                if await nominations.erased_in_scope(session, actor, nomination_id):
                    # Theirs to manage, erased on request: say so, it is no refusal.
                    instead = "dossier/erased"
            if dossier is not None:
                values = _dossier_values(context, dossier)
                values.update(await _sections(session, context, actor, nomination_id))
                # Staff who read the file may take it away as a workbook; a candidate reads
                # their own file on screen.
                exportable = dossier.show_reviews
                managed = await figures.managed_nomination(session, actor, nomination_id)
                adjustable = managed is not None and managed.status == Status.IN_POOL.value
    if values is None and instead == "common/forbidden":
        subject = ("nomination", nomination_id) if nomination_id is not None else None
        await deny(update, context, subject=subject)
        return END
    if values is None:
        await reply(update, context, instead, nomination_id=nomination_id)
        return END
    buttons = []
    if exportable:
        buttons.append((label(update, context, "dossier.export"), f"pl:e:{nomination_id}"))
    if adjustable:
        buttons.append((label(update, context, "dossier.adjust"), f"pl:a:{nomination_id}"))
    markup = keyboard(buttons, per_row=1) if buttons else None
    await reply(update, context, "dossier/show", markup=markup, **values)
    return END


async def _sections(
    session: AsyncSession, context: CadreContext, actor: Actor, nomination_id: int
) -> dict[str, Any]:
    """The cultivate/manage/use parts of the file; the dossier read above checked scope."""
    tz = context.settings.tz
    return {
        "mentoring": await mentoring.dossier_section(
            session, nomination_id, cipher=cipher(context), tz=tz
        ),
        "grade_section": await grades.dossier_section(
            session, actor, nomination_id, context.bot_data["grade_policy"]
        ),
        "post_section": await posts.dossier_section(
            session, actor, nomination_id, today=datetime.now(tz).date()
        ),
        "training_section": await trainings.dossier_section(session, nomination_id, tz=tz),
        "project_section": await projects.dossier_section(session, nomination_id),
        "outcome_section": await outcomes.dossier_section(session, nomination_id),
    }


async def show_dossier(update: Update, context: CadreContext) -> int:
    """Show one person's file: `/dossier ID`, or one's own file without an ID."""
    args = context.args or []
    if not args:
        return await _show_dossier(update, context, None)
    raw = unicodedata.normalize("NFKC", args[0]).lstrip("#")
    if len(args) > 1 or not ID_RE.fullmatch(raw):
        _forget_input(context)
        await reply(update, context, "dossier/usage")
        return END
    return await _show_dossier(update, context, int(raw))


async def open_dossier(update: Update, context: CadreContext) -> int:
    """Open the file behind a pool button."""
    await _answer_query(update)
    return await _show_dossier(update, context, OPEN_PRESS.values(update)[0])


async def export_dossier(update: Update, context: CadreContext) -> int:
    """Send one person's file as a workbook; the read re-checks scope and is audited."""
    await _answer_query(update)
    _forget_input(context)
    (nomination_id,) = EXPORT_PRESS.values(update)
    chat = update.effective_chat
    assert chat is not None
    locale = locale_of(update, context)
    tz = context.settings.tz
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
        try:
            async with context.session() as session:
                actor = await _actor(session, update)
                if actor is None:
                    raise NotAllowed
                written = await export.write_dossier_workbook(
                    session,
                    actor,
                    nomination_id,
                    buffer,
                    locale_labels=workbook_labels(context.jinja, locale),
                    tz=tz,
                    cipher=cipher(context),
                    grade_policy=context.bot_data.get("grade_policy"),
                )
        except NotAllowed:
            return await _deny(update, context)
        buffer.seek(0)
        # The read is audited and committed before the upload: no lock is held across it.
        await context.checkpoint()
        # As bytes: PTB trips over a spooled file's missing name.
        await context.bot.send_document(
            chat.id,
            document=buffer.read(),
            filename=f"dossier-{nomination_id}.xlsx",
            caption=text(
                update,
                context,
                "dossier/export_caption",
                full_name=written.full_name,
                nomination_id=nomination_id,
                day=now().astimezone(tz).date().isoformat(),
            ),
        )
    return END


# -- adjusting out of the pool -----------------------------------------------------------------


async def ask_reason(update: Update, context: CadreContext) -> int:
    """Ask why the person leaves the pool, if the official may still do it."""
    await _answer_query(update)
    _forget_input(context)
    (nomination_id,) = ADJUST_PRESS.values(update)
    async with context.session() as session:
        actor = await _actor(session, update)
        managed = (
            await figures.managed_nomination(session, actor, nomination_id) if actor else None
        )
    if managed is None:
        return await _deny(update, context)
    if managed.status != Status.IN_POOL.value:
        await reply(update, context, "dossier/not_in_pool", full_name=managed.full_name)
        return END
    state = _state(context)
    state.update(adjust=managed.id, adjust_name=managed.full_name, waiting="reason")
    await _ask_reason_again(update, context)
    return ADJUST_REASON


async def _ask_reason_again(update: Update, context: CadreContext) -> None:
    await reply(
        update,
        context,
        "dossier/ask_reason",
        full_name=_state(context).get("adjust_name", ""),
        min_len=REASON_MIN,
        max_len=REASON_MAX,
    )


async def _ask_confirm(update: Update, context: CadreContext) -> None:
    state = _state(context)
    buttons = [
        (label(update, context, "dossier.confirm_adjust"), f"pl:y:{state['adjust']}"),
        (label(update, context, "dossier.keep"), f"pl:n:{state['adjust']}"),
    ]
    await reply(
        update,
        context,
        "dossier/confirm_adjust",
        markup=keyboard(buttons, per_row=1),
        full_name=state.get("adjust_name", ""),
        reason=state["reason"],
    )


async def take_reason(update: Update, context: CadreContext) -> int:
    """Check the reason typed and ask for confirmation; a bad one is asked again."""
    message = update.effective_message
    assert message is not None and message.text is not None
    state = _state(context)
    if "adjust" not in state:
        return await _stale(update, context)
    try:
        state["reason"] = clean_text(message.text, min_len=REASON_MIN, max_len=REASON_MAX)
    except RuleError as error:
        await reply(update, context, "form/invalid", code=error.code, params=error.params)
        await _ask_reason_again(update, context)
        return ADJUST_REASON
    state["waiting"] = "confirm"
    await _ask_confirm(update, context)
    return ADJUST_CONFIRM


async def confirm_adjust(update: Update, context: CadreContext) -> int:
    """Take the person out of the pool with the reason given; the history keeps it."""
    await _answer_query(update)
    state = _state(context)
    (nomination_id,) = CONFIRM_PRESS.values(update)
    if state.get("adjust") != nomination_id or not state.get("reason"):
        return await _stale(update, context)
    name = state.get("adjust_name", "")
    try:
        async with context.session() as session:
            actor = await _actor(session, update)
            if actor is None:
                raise NotAllowed
            await nominations.adjust_out(
                session,
                actor,
                nomination_id,
                reason=state["reason"],
                now=now(),
                cipher=cipher(context),
            )
    except NotAllowed:
        return await _deny(update, context)
    except IllegalTransition:
        _forget_input(context)
        await reply(update, context, "dossier/not_in_pool", full_name=name)
        return END
    _forget_input(context)
    query = update.callback_query
    assert query is not None
    await drop_buttons(update)
    await reply(update, context, "dossier/adjusted", full_name=name)
    return END


async def keep_in_pool(update: Update, context: CadreContext) -> int:
    """Leave the person in the pool."""
    await _answer_query(update)
    _forget_input(context)
    await reply(update, context, "dossier/kept")
    return END


# -- leaving and wrong input ------------------------------------------------------------------


async def cancel_input(update: Update, context: CadreContext) -> int:
    """Leave the search or the adjustment; nothing changes."""
    adjusting = "adjust" in _state(context)
    _forget_input(context)
    await reply(update, context, "dossier/kept" if adjusting else "common/cancelled")
    return END


async def reprompt(update: Update, context: CadreContext) -> int | None:
    """A sticker, photo or button-less text where something else is expected: ask again."""
    waiting = _state(context).get("waiting")
    if waiting == "name":
        await reply(update, context, "common/wrong_input")
        await reply(update, context, "pool/ask_name", max_len=NAME_MAX)
    elif waiting == "reason":
        await reply(update, context, "common/wrong_input")
        await _ask_reason_again(update, context)
    elif waiting == "confirm" and "reason" in _state(context):
        await reply(update, context, "form/use_buttons")
        await _ask_confirm(update, context)
    else:
        return await _stale(update, context)
    return None


async def busy(update: Update, context: CadreContext) -> None:
    """Another command while a name or reason is expected: say how to go on or leave."""
    await reply(update, context, "pool/busy", waiting=_state(context).get("waiting", ""))


async def stray_button(update: Update, context: CadreContext) -> int:
    """A pool button this version does not know (forged or from an old message)."""
    await _answer_query(update)
    return await _stale(update, context)


_FILTER = cb.choice("t", "kg", "ed", "st")
PAGE_PRESS = cb.Button("pl", "p", cb.PAGE)
FILTER_PRESS = cb.Button("pl", "f", _FILTER)
FILTER_VALUE_PRESS = cb.Button("pl", "f", _FILTER, cb.CODE)
OPEN_PRESS = cb.Button("pl", "o", cb.ID)
ADJUST_PRESS = cb.Button("pl", "a", cb.ID)
EXPORT_PRESS = cb.Button("pl", "e", cb.ID)
CONFIRM_PRESS = cb.Button("pl", "y", cb.ID)


class _OtherThanConfirm(cb.Prefix):
    """``pl:…`` except the confirmation pair, which only the confirmation state answers."""

    def __init__(self) -> None:
        super().__init__("pl")

    def match(self, data: object) -> bool:
        confirm = isinstance(data, str) and data.startswith(("pl:y:", "pl:n:"))
        return super().match(data) and not confirm


# /dossier without an id is anyone's own file; with one, scope decides (no role refused).
COMMANDS: tuple[Command, ...] = (
    command("pool", *OFFICIAL_ROLES),
    command("dossier"),
)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    text = filters.TEXT & ~filters.COMMAND & PRIVATE
    other = ~filters.COMMAND & PRIVATE
    entry_points: list[BaseHandler[Update, CadreContext, Any]] = [
        CommandHandler("pool", show_pool, filters=PRIVATE),
        CommandHandler("dossier", show_dossier, filters=PRIVATE),
        on(PAGE_PRESS, turn_page),
        on(FILTER_PRESS, choose_filter),
        on(FILTER_VALUE_PRESS, set_filter),
        on(cb.Button("pl", "x"), clear_filters),
        on(cb.Button("pl", "s"), ask_name),
        on(OPEN_PRESS, open_dossier),
        on(ADJUST_PRESS, ask_reason),
        on(EXPORT_PRESS, export_dossier),
        # Anything else under our prefix, except the confirmation pair that only the
        # confirmation state answers (outside it they fall through to "stale button").
        on(_OtherThanConfirm(), stray_button),
    ]
    pool = conversation(
        "pool",
        entry_points,
        {
            SEARCH_NAME: [
                MessageHandler(text, take_name),
                MessageHandler(other, reprompt),
            ],
            ADJUST_REASON: [
                MessageHandler(text, take_reason),
                MessageHandler(other, reprompt),
            ],
            ADJUST_CONFIRM: [
                on(CONFIRM_PRESS, confirm_adjust),
                on(cb.Button("pl", "n", cb.ID), keep_in_pool),
                MessageHandler(other, reprompt),
            ],
        },
        cancel=cancel_input,
        busy=busy,
        allow_reentry=True,
    )
    return [pool]
