"""/outcome: record what became of a reserve cadre (the "use" stage).

An official picks a cadre in scope (in the pool or elected), then the kind:
- elected into the two committees: position, date (moves the nomination to ELECTED);
- an award or an exemplary-cadre recognition: title, date;
- a publicity record: outlet, title, date (county officials may record one naming nobody);
- performance pay linked to an annual assessment: the year (a recorded result), the pay.
Then a review and save. A persistent conversation: the draft (plain JSON) lives in user_data
and its "at" mirrors the state, so a restart resumes the question; every press is re-checked
in storage against the person's current role and scope.
"""

from __future__ import annotations

from datetime import date
from typing import Any

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
    answer_query,
    button_text,
    conversation,
    deny,
    drop_buttons,
    edit_or_reply,
    label,
    now,
    parse_id,
    record_denial,
    reply,
    shanghai_today,
    typed_text,
)
from handlers.chat.tg import on
from storage import outcomes, people, posts
from storage.models import OFFICIAL_ROLES
from storage.nominations import NotAllowed
from storage.outcomes import OUTCOME_KINDS, Cadre, YearResult
from storage.people import Actor
from storage.rules.identity import RuleError

PRIVATE = filters.ChatType.PRIVATE
END = ConversationHandler.END
PAGE_SIZE = 8
OUTCOME = "outcome"  # conversation name and user_data key

O_PERSON = 60
O_KIND = 61
O_POSITION = 62
O_OUTLET = 63
O_TITLE = 64
O_DATE = 65
O_YEAR = 66
O_PAY = 67
O_REVIEW = 68

# What each kind asks, in order, before the review.
STEPS: dict[str, tuple[str, ...]] = {
    "elected": ("position", "date"),
    "award": ("title", "date"),
    "exemplary": ("title", "date"),
    "publicity": ("outlet", "title", "date"),
    "pay": ("year", "pay"),
}
STATE_OF = {
    "position": O_POSITION,
    "outlet": O_OUTLET,
    "title": O_TITLE,
    "date": O_DATE,
    "year": O_YEAR,
    "pay": O_PAY,
}
ANSWERS = ("position", "outlet", "title", "date", "year", "pay")


# -- shared -----------------------------------------------------------------------------------


def _draft(context: CadreContext) -> dict[str, Any]:
    assert context.user_data is not None
    draft: dict[str, Any] = context.user_data.setdefault(OUTCOME, {})
    return draft


def _forget(context: CadreContext) -> None:
    assert context.user_data is not None
    context.user_data.pop(OUTCOME, None)


async def _official(session: AsyncSession, update: Update) -> Actor | None:
    """The acting official, or None: roles are re-read on every update (deny by default)."""
    user = update.effective_user
    assert user is not None
    actor = await people.load_actor(session, user.id)
    return actor if actor is not None and actor.has(*OFFICIAL_ROLES) else None


async def _forbidden(update: Update, context: CadreContext) -> int:
    _forget(context)
    await deny(update, context)
    return END


async def _invalid(update: Update, context: CadreContext, error: RuleError) -> None:
    await reply(update, context, "outcomes/invalid", code=error.code, params=error.params)


# -- the cadre --------------------------------------------------------------------------------


async def begin_outcome(update: Update, context: CadreContext) -> int:
    """Start recording an outcome: choose the reserve cadre."""
    _forget(context)
    return await _ask_person(update, context, 0)


async def _ask_person(update: Update, context: CadreContext, page: int) -> int:
    async with context.session() as session:
        actor = await _official(session, update)
        items: list[Cadre] = []
        total = 0
        if actor is not None:
            items, total = await outcomes.cadres(
                session, actor, offset=page * PAGE_SIZE, limit=PAGE_SIZE
            )
            if not items and page > 0:
                page = 0
                items, total = await outcomes.cadres(session, actor, limit=PAGE_SIZE)
    if actor is None:
        return await _forbidden(update, context)
    county = outcomes.may_record_county_publicity(actor)
    if total == 0 and not county:
        _forget(context)
        await reply(update, context, "outcomes/none")
        return END
    draft = _draft(context)
    draft.update(at=O_PERSON, page=page)
    rows = [
        [
            InlineKeyboardButton(
                button_text(
                    update,
                    context,
                    "outcomes/person_button",
                    full_name=c.full_name,
                    id=c.nomination_id,
                    status=c.status,
                ),
                callback_data=f"out:p:{c.nomination_id}",
            )
        ]
        for c in items
    ]
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                label(update, context, "prev"), callback_data=f"out:pg:{page - 1}"
            )
        )
    if (page + 1) * PAGE_SIZE < total:
        nav.append(
            InlineKeyboardButton(
                label(update, context, "next"), callback_data=f"out:pg:{page + 1}"
            )
        )
    if nav:
        rows.append(nav)
    if county:
        rows.append(
            [
                InlineKeyboardButton(
                    label(update, context, "outcome.county_publicity"), callback_data="out:np"
                )
            ]
        )
    await edit_or_reply(
        update,
        context,
        "outcomes/choose_person",
        markup=InlineKeyboardMarkup(rows),
        people=items,
        total=total,
        page=page + 1,
        pages=max(1, -(-total // PAGE_SIZE)),
    )
    return O_PERSON


async def turn_page(update: Update, context: CadreContext) -> int:
    """Another page of reserve cadres."""
    await answer_query(update)
    page = TURN_PAGE_PRESS.values(update)[0]
    if page is None:
        return await _stale(update, context)
    return await _ask_person(update, context, page)


async def choose_person(update: Update, context: CadreContext) -> int:
    """Take the cadre from their button (re-checked in scope) and ask the kind."""
    await answer_query(update)
    nomination_id = CHOOSE_PERSON_PRESS.values(update)[0]
    found: Cadre | None = None
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None and nomination_id is not None:
            try:
                found = await outcomes.cadre(session, actor, nomination_id)
            except NotAllowed:
                await record_denial(update, context, session=session)
                found = None
    if actor is None:
        return await _forbidden(update, context)
    if found is None:
        return await _stale(update, context)
    draft = _draft(context)
    for key in ("kind", *ANSWERS):
        draft.pop(key, None)
    draft.update(
        nid=found.nomination_id, name=found.full_name, township=found.township, status=found.status
    )
    await drop_buttons(update)
    return await _ask_kind(update, context)


async def choose_nobody(update: Update, context: CadreContext) -> int:
    """A county-level publicity record naming no cadre (county officials and admins only)."""
    await answer_query(update)
    async with context.session() as session:
        actor = await _official(session, update)
    if actor is None:
        return await _forbidden(update, context)
    if not outcomes.may_record_county_publicity(actor):
        return await _stale(update, context)
    draft = _draft(context)
    for key in ANSWERS:
        draft.pop(key, None)
    draft.update(nid=None, name="", township="", status="", kind="publicity")
    await drop_buttons(update)
    return await _ask_next(update, context)


# -- the kind ---------------------------------------------------------------------------------


async def _ask_kind(update: Update, context: CadreContext) -> int:
    draft = _draft(context)
    draft["at"] = O_KIND
    buttons = [
        [
            InlineKeyboardButton(
                label(update, context, f"outcome_kind.{k}"), callback_data=f"out:k:{k}"
            )
        ]
        for k in OUTCOME_KINDS
    ]
    buttons.append([InlineKeyboardButton(label(update, context, "back"), callback_data="out:b")])
    await reply(
        update,
        context,
        "outcomes/choose_kind",
        markup=InlineKeyboardMarkup(buttons),
        full_name=draft["name"],
        township=draft["township"],
        status=draft["status"],
    )
    return O_KIND


async def choose_kind(update: Update, context: CadreContext) -> int:
    """Take the kind of outcome; pay needs a recorded assessment year first."""
    await answer_query(update)
    kind = CHOOSE_KIND_PRESS.values(update)[0]
    draft = _draft(context)
    if kind not in OUTCOME_KINDS or draft.get("nid") is None:
        return await _stale(update, context)
    if kind == "pay":
        years = await _years(update, context)
        if years is None:
            return await _forbidden(update, context)
        if not years:
            await reply(update, context, "outcomes/invalid", code="pay.no_results", params={})
            return await _ask_kind(update, context)
    for key in ANSWERS:
        draft.pop(key, None)
    draft["kind"] = kind
    await drop_buttons(update)
    return await _ask_next(update, context)


async def back_to_people(update: Update, context: CadreContext) -> int:
    """From the kinds back to the list of cadres."""
    await answer_query(update)
    await drop_buttons(update)
    return await _ask_person(update, context, int(_draft(context).get("page", 0)))


# -- the answers ------------------------------------------------------------------------------


def _pending(draft: dict[str, Any]) -> str | None:
    """The first answer the kind still needs, or None when the review is next."""
    return next((s for s in STEPS[draft["kind"]] if s not in draft), None)


async def _ask_next(update: Update, context: CadreContext) -> int:
    draft = _draft(context)
    step = _pending(draft)
    if step is None:
        return await _review(update, context)
    draft["at"] = STATE_OF[step]
    kind = draft["kind"]
    if step == "year":
        return await _ask_year(update, context)
    if step == "date":
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        label(update, context, "outcome.today"), callback_data="out:today"
                    )
                ]
            ]
        )
        await reply(
            update,
            context,
            "outcomes/ask_date",
            markup=markup,
            kind=kind,
            today=shanghai_today(context),
        )
        return O_DATE
    limits = {
        "position": (outcomes.POSITION_MIN, outcomes.POSITION_MAX),
        "outlet": (outcomes.OUTLET_MIN, outcomes.OUTLET_MAX),
        "title": (
            (outcomes.PUBLICITY_TITLE_MIN, outcomes.PUBLICITY_TITLE_MAX)
            if kind == "publicity"
            else (outcomes.AWARD_TITLE_MIN, outcomes.AWARD_TITLE_MAX)
        ),
        "pay": (0, outcomes.PAY_MAX_YUAN),
    }
    low, high = limits[step]
    await reply(
        update,
        context,
        f"outcomes/ask_{step}",
        kind=kind,
        full_name=draft["name"],
        min=low,
        max=high,
    )
    return STATE_OF[step]


def _clean(step: str, kind: str, raw: str) -> str | int:
    if step == "position":
        return outcomes.clean_position(raw)
    if step == "outlet":
        return outcomes.clean_outlet(raw)
    if step == "title":
        if kind == "publicity":
            return outcomes.clean_publicity_title(raw)
        return outcomes.clean_award_title(raw)
    if step == "pay":
        return outcomes.parse_pay(raw)
    raise AssertionError(step)


async def take_text(update: Update, context: CadreContext) -> int:
    """A typed answer: position, outlet, title or pay (whichever is being asked)."""
    draft = _draft(context)
    step = _pending(draft) if "kind" in draft else None
    if step not in ("position", "outlet", "title", "pay"):
        return await _stale(update, context)
    try:
        draft[step] = _clean(step, draft["kind"], typed_text(update))
    except RuleError as error:
        await _invalid(update, context, error)
    return await _ask_next(update, context)


async def take_date(update: Update, context: CadreContext) -> int:
    """The date it happened: typed, or today's button; not in the future."""
    draft = _draft(context)
    if "kind" not in draft or _pending(draft) != "date":
        if update.callback_query is not None:
            await answer_query(update)
        return await _stale(update, context)
    today = shanghai_today(context)
    if update.callback_query is not None:
        await answer_query(update)
        await drop_buttons(update)
        day = today
    else:
        try:
            day = outcomes.check_past(posts.parse_date(typed_text(update), today=today), today)
        except RuleError as error:
            await _invalid(update, context, error)
            return await _ask_next(update, context)
    draft["date"] = day.isoformat()
    return await _ask_next(update, context)


async def _years(update: Update, context: CadreContext) -> list[YearResult] | None:
    """The cadre's recorded assessment years, or None when the person may not act."""
    nomination_id = _draft(context).get("nid")
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is None or nomination_id is None:
            return None
        try:
            return await outcomes.assessment_years(session, actor, int(nomination_id))
        except NotAllowed:
            await record_denial(update, context, session=session)
            return None


async def _ask_year(update: Update, context: CadreContext) -> int:
    years = await _years(update, context)
    if years is None:
        return await _forbidden(update, context)
    draft = _draft(context)
    if not years:
        await reply(update, context, "outcomes/invalid", code="pay.no_results", params={})
        draft.pop("kind", None)
        return await _ask_kind(update, context)
    draft["at"] = O_YEAR
    buttons = [
        [
            InlineKeyboardButton(
                button_text(update, context, "outcomes/year_button", year=y.year, result=y.result),
                callback_data=f"out:y:{y.year}",
            )
        ]
        for y in years
    ]
    await reply(
        update,
        context,
        "outcomes/choose_year",
        markup=InlineKeyboardMarkup(buttons),
        full_name=draft["name"],
        years=years,
    )
    return O_YEAR


async def take_year(update: Update, context: CadreContext) -> int:
    """The assessment year: a button or typed; it must have a recorded result."""
    draft = _draft(context)
    if update.callback_query is not None:
        await answer_query(update)
        raw = str(TAKE_YEAR_PRESS.values(update)[0])
    else:
        raw = typed_text(update).strip()
    if "kind" not in draft or _pending(draft) != "year":
        return await _stale(update, context)
    year = parse_id(raw, digits=4)
    years = await _years(update, context)
    if years is None:
        return await _forbidden(update, context)
    if year is None or year not in {y.year for y in years}:
        params = {"year": year} if year is not None else {}
        await reply(update, context, "outcomes/invalid", code="pay.no_result", params=params)
        return await _ask_year(update, context)
    await drop_buttons(update)
    draft["year"] = year
    return await _ask_next(update, context)


# -- review and save --------------------------------------------------------------------------


async def _review(update: Update, context: CadreContext) -> int:
    draft = _draft(context)
    draft["at"] = O_REVIEW
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label(update, context, "submit"), callback_data="out:ok"),
                InlineKeyboardButton(label(update, context, "cancel"), callback_data="out:no"),
            ]
        ]
    )
    await reply(update, context, "outcomes/review", markup=markup, **_shown(draft))
    return O_REVIEW


def _shown(draft: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": draft["kind"],
        "full_name": draft["name"],
        "township": draft["township"],
        "position": draft.get("position") or "",
        "outlet": draft.get("outlet") or "",
        "title": draft.get("title") or "",
        "day": draft.get("date") or "",
        "year": draft.get("year") or "",
        "pay": draft.get("pay", ""),
    }


async def save_outcome(update: Update, context: CadreContext) -> int:
    """Store the outcome (scope and rules re-checked) and say what changed."""
    await answer_query(update)
    draft = _draft(context)
    if "kind" not in draft or _pending(draft) is not None:
        return await _stale(update, context)
    kind = str(draft["kind"])
    nid = int(draft["nid"]) if draft.get("nid") is not None else None
    today = shanghai_today(context)
    day = date.fromisoformat(draft["date"]) if draft.get("date") else today
    error: RuleError | None = None
    saved = False
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None:
            try:
                if kind == "elected" and nid is not None:
                    await outcomes.record_election(
                        session,
                        actor,
                        nid,
                        position=draft["position"],
                        elected_on=day,
                        today=today,
                        now=now(),
                    )
                elif kind in outcomes.AWARD_KINDS and nid is not None:
                    await outcomes.record_award(
                        session,
                        actor,
                        nid,
                        kind=kind,
                        title=draft["title"],
                        awarded_on=day,
                        today=today,
                    )
                elif kind == "publicity":
                    await outcomes.record_publicity(
                        session,
                        actor,
                        nid,
                        outlet=draft["outlet"],
                        title=draft["title"],
                        published_on=day,
                        today=today,
                    )
                elif kind == "pay" and nid is not None:
                    await outcomes.link_pay(
                        session, actor, nid, year=int(draft["year"]), pay_yuan=int(draft["pay"])
                    )
                else:
                    raise NotAllowed
                saved = True
            except NotAllowed:
                await record_denial(update, context, session=session)
                saved = False
            except RuleError as exc:
                error = exc
    if actor is None:
        return await _forbidden(update, context)
    await drop_buttons(update)
    if error is not None:
        await _invalid(update, context, error)
        # Ask again what the rule refused; the rest of the draft stays.
        step = {"pay.no_result": "year", "date.past": "date"}.get(error.code)
        if step is not None:
            draft.pop(step, None)
            return await _ask_next(update, context)
        return await _review(update, context)
    shown = _shown(draft)
    _forget(context)
    if not saved:
        await reply(update, context, "common/stale_button")
        return END
    await reply(update, context, "outcomes/saved", **shown)
    return END


async def drop_outcome(update: Update, context: CadreContext) -> int:
    """The cancel button on the review: nothing stored."""
    await answer_query(update)
    await drop_buttons(update)
    return await cancel_outcome(update, context)


async def cancel_outcome(update: Update, context: CadreContext) -> int:
    """Leave /outcome; nothing is stored."""
    _forget(context)
    await reply(update, context, "common/cancelled")
    return END


# -- off the path -----------------------------------------------------------------------------


async def _ask_state(update: Update, context: CadreContext) -> int:
    draft = _draft(context)
    if "nid" not in draft:
        return await _ask_person(update, context, int(draft.get("page", 0)))
    if "kind" not in draft:
        return await _ask_kind(update, context)
    return await _ask_next(update, context)


async def _stale(update: Update, context: CadreContext) -> int:
    await reply(update, context, "common/stale_button")
    return await _ask_state(update, context)


async def outcome_stale(update: Update, context: CadreContext) -> int:
    """A button of this flow that does not belong to the current question."""
    await answer_query(update)
    return await _stale(update, context)


async def outcome_use_buttons(update: Update, context: CadreContext) -> int:
    """Text, a sticker, a photo… where a button is expected: say so and ask again."""
    await reply(update, context, "outcomes/use_buttons")
    return await _ask_state(update, context)


async def outcome_wrong_input(update: Update, context: CadreContext) -> int:
    """A sticker, photo, file… where text is expected: ask again."""
    await reply(update, context, "common/wrong_input")
    return await _ask_state(update, context)


async def outcome_busy(update: Update, context: CadreContext) -> int:
    """Another command in the middle of /outcome: say how to go on or leave."""
    await reply(update, context, "outcomes/busy")
    return await _ask_state(update, context)


# -- wiring -----------------------------------------------------------------------------------

Handlers = list[BaseHandler[Update, CadreContext, Any]]


# Every button this module answers, decoded by the one codec (handlers/chat/codec.py).
CHOOSE_PERSON_PRESS = cb.Button("out", "p", cb.ID)
TURN_PAGE_PRESS = cb.Button("out", "pg", cb.PAGE)
CHOOSE_NOBODY_PRESS = cb.Button("out", "np")
CHOOSE_KIND_PRESS = cb.Button("out", "k", cb.CODE)
BACK_TO_PEOPLE_PRESS = cb.Button("out", "b")
TAKE_DATE_PRESS = cb.Button("out", "today")
TAKE_YEAR_PRESS = cb.Button("out", "y", cb.YEAR)
SAVE_OUTCOME_PRESS = cb.Button("out", "ok")
DROP_OUTCOME_PRESS = cb.Button("out", "no")


def _conversation() -> ConversationHandler[CadreContext]:
    text_in = filters.TEXT & ~filters.COMMAND & PRIVATE
    anything = ~filters.COMMAND & PRIVATE
    stale = on(cb.Prefix("out"), outcome_stale)
    button_tail: Handlers = [stale, MessageHandler(anything, outcome_use_buttons)]
    text_tail: Handlers = [stale, MessageHandler(anything, outcome_wrong_input)]
    typed: Handlers = [MessageHandler(text_in, take_text), *text_tail]
    states: dict[object, Handlers] = {
        O_PERSON: [
            on(CHOOSE_PERSON_PRESS, choose_person),
            on(TURN_PAGE_PRESS, turn_page),
            on(CHOOSE_NOBODY_PRESS, choose_nobody),
            *button_tail,
        ],
        O_KIND: [
            on(CHOOSE_KIND_PRESS, choose_kind),
            on(BACK_TO_PEOPLE_PRESS, back_to_people),
            *button_tail,
        ],
        O_POSITION: typed,
        O_OUTLET: typed,
        O_TITLE: typed,
        O_PAY: typed,
        O_DATE: [
            on(TAKE_DATE_PRESS, take_date),
            MessageHandler(text_in, take_date),
            *text_tail,
        ],
        O_YEAR: [
            on(TAKE_YEAR_PRESS, take_year),
            MessageHandler(text_in, take_year),
            *text_tail,
        ],
        O_REVIEW: [
            on(SAVE_OUTCOME_PRESS, save_outcome),
            on(DROP_OUTCOME_PRESS, drop_outcome),
            *button_tail,
        ],
    }
    return conversation(
        OUTCOME,
        [CommandHandler("outcome", begin_outcome, filters=PRIVATE)],
        states,
        cancel=cancel_outcome,
        busy=outcome_busy,
    )


COMMANDS: tuple[Command, ...] = (command("outcome", *OFFICIAL_ROLES),)


def build_handlers() -> Handlers:
    return [_conversation()]
