"""/project (an idle-asset revitalization project), /projects (the list) and /report
(a lead's progress report).

/project and /report are persistent conversations: the draft (plain JSON: ids, codes, yuan as
integers, ISO dates) lives in user_data, the position in the conversation state and in the
draft's "at", so a restart resumes the question. Nothing is written before the final
confirmation, and every press is re-checked against the person's current role and scope in
storage: a forged or outdated button gets common/stale_button, never another's data.
"""

from __future__ import annotations

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
    plan_notice,
    record_denial,
    reply,
    shanghai_today,
    typed_text,
)
from handlers.chat.tg import on
from storage import people, projects, reminders
from storage.models import OFFICIAL_ROLES
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.projects import PROJECT_STATUSES, LeadCandidate, Place, ProjectRow, format_wan
from storage.rules.identity import RuleError

PRIVATE = filters.ChatType.PRIVATE
END = ConversationHandler.END
PAGE_SIZE = 8
LIST_PAGE_SIZE = 10

PROJECT = "project"  # conversation name and user_data key
REPORT = "project_report"

# /project states.
P_TOWNSHIP = 20
P_VILLAGE = 21
P_NAME = 22
P_FUNDS = 23
P_STATUS = 24
P_LEADS = 25
P_REVIEW = 26
# The questions after the village, in order; editing one from the review goes back there.
P_ORDER = (P_NAME, P_FUNDS, P_STATUS, P_LEADS, P_REVIEW)
P_EDITABLE = {"name": P_NAME, "funds": P_FUNDS, "status": P_STATUS, "leads": P_LEADS}

# /report states.
R_PROJECT = 40
R_INCOME = 41
R_STATUS = 42
R_NOTE = 43
R_REVIEW = 44

KEEP = "keep"  # /report: the status stays as it is


# -- shared -----------------------------------------------------------------------------------


def _draft(context: CadreContext, key: str) -> dict[str, Any]:
    assert context.user_data is not None
    draft: dict[str, Any] = context.user_data.setdefault(key, {})
    return draft


def _forget(context: CadreContext, key: str) -> None:
    assert context.user_data is not None
    context.user_data.pop(key, None)


async def _actor(session: AsyncSession, update: Update) -> Actor | None:
    user = update.effective_user
    assert user is not None
    return await people.load_actor(session, user.id)


async def _official(session: AsyncSession, update: Update) -> Actor | None:
    """The acting official, or None: roles are re-read on every update (deny by default)."""
    actor = await _actor(session, update)
    return actor if actor is not None and actor.has(*OFFICIAL_ROLES) else None


def _nav(
    update: Update, context: CadreContext, prefix: str, page: int, total: int, size: int
) -> list[InlineKeyboardButton]:
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                label(update, context, "prev"), callback_data=f"{prefix}{page - 1}"
            )
        )
    if (page + 1) * size < total:
        nav.append(
            InlineKeyboardButton(
                label(update, context, "next"), callback_data=f"{prefix}{page + 1}"
            )
        )
    return nav


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


async def _forbidden(update: Update, context: CadreContext, key: str) -> int:
    _forget(context, key)
    await deny(update, context)
    return END


async def _invalid(update: Update, context: CadreContext, error: RuleError) -> None:
    await reply(update, context, "projects/invalid", code=error.code, params=error.params)


# -- /project: the village --------------------------------------------------------------------


async def begin_project(update: Update, context: CadreContext) -> int:
    """Start a new project: choose the township (skipped when there is one) and the village."""
    async with context.session() as session:
        actor = await _official(session, update)
        townships = await projects.townships_for(session, actor) if actor else []
    if actor is None:
        return await _forbidden(update, context, PROJECT)
    if not townships:
        _forget(context, PROJECT)
        await reply(update, context, "projects/no_villages")
        return END
    _forget(context, PROJECT)
    draft = _draft(context, PROJECT)
    if len(townships) == 1:
        draft.update(tid=townships[0].id, tname=townships[0].name)
        return await _ask_village(update, context, 0)
    return await _show_townships(update, context, townships)


async def _show_townships(update: Update, context: CadreContext, townships: list[Place]) -> int:
    _draft(context, PROJECT)["at"] = P_TOWNSHIP
    buttons = [InlineKeyboardButton(t.name, callback_data=f"prj:t:{t.id}") for t in townships]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    await reply(update, context, "projects/choose_township", markup=InlineKeyboardMarkup(rows))
    return P_TOWNSHIP


async def _ask_township(update: Update, context: CadreContext) -> int:
    async with context.session() as session:
        actor = await _official(session, update)
        townships = await projects.townships_for(session, actor) if actor else []
    if actor is None or not townships:
        return await _forbidden(update, context, PROJECT)
    return await _show_townships(update, context, townships)


async def choose_township(update: Update, context: CadreContext) -> int:
    """Take the township from its button (re-checked in scope)."""
    await answer_query(update)
    township_id = CHOOSE_TOWNSHIP_PRESS.values(update)[0]
    found: Place | None = None
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None and township_id is not None:
            try:
                found = await projects.township_in_scope(session, actor, township_id)
            except NotAllowed:
                await record_denial(update, context, session=session)
                found = None
    if actor is None:
        return await _forbidden(update, context, PROJECT)
    if found is None:
        return await _project_stale(update, context)
    draft = _draft(context, PROJECT)
    if draft.get("tid") != found.id:
        for key in ("vid", "vname", "leads"):
            draft.pop(key, None)
    draft.update(tid=found.id, tname=found.name)
    await drop_buttons(update)
    return await _ask_village(update, context, 0)


async def _ask_village(update: Update, context: CadreContext, page: int) -> int:
    draft = _draft(context, PROJECT)
    township_id = int(draft["tid"])
    async with context.session() as session:
        actor = await _official(session, update)
        villages: list[Place] = []
        total = cadres = 0
        if actor is not None:
            # A project needs a lead: say so before anything is typed, not at the end.
            cadres = (await projects.lead_candidates(session, actor, township_id, limit=1))[1]
            villages, total = await projects.villages_for(
                session, actor, township_id, offset=page * PAGE_SIZE, limit=PAGE_SIZE
            )
            if not villages and page > 0:
                page = 0
                villages, total = await projects.villages_for(
                    session, actor, township_id, limit=PAGE_SIZE
                )
    if actor is None:
        return await _forbidden(update, context, PROJECT)
    if total == 0:
        _forget(context, PROJECT)
        await reply(update, context, "projects/no_villages")
        return END
    if cadres == 0:
        _forget(context, PROJECT)
        await reply(update, context, "projects/no_cadres", township=draft["tname"])
        return END
    draft.update(at=P_VILLAGE, vpage=page)
    buttons = [InlineKeyboardButton(v.name, callback_data=f"prj:v:{v.id}") for v in villages]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    nav = _nav(update, context, "prj:vp:", page, total, PAGE_SIZE)
    if nav:
        rows.append(nav)
    await edit_or_reply(
        update,
        context,
        "projects/choose_village",
        markup=InlineKeyboardMarkup(rows),
        township=draft["tname"],
        page=page + 1,
        pages=_pages(total, PAGE_SIZE),
    )
    return P_VILLAGE


async def turn_village_page(update: Update, context: CadreContext) -> int:
    """Another page of villages."""
    await answer_query(update)
    page = TURN_VILLAGE_PAGE_PRESS.values(update)[0]
    if page is None or "tid" not in _draft(context, PROJECT):
        return await _project_stale(update, context)
    return await _ask_village(update, context, page)


async def choose_village(update: Update, context: CadreContext) -> int:
    """Take the village from its button (re-checked in scope and township)."""
    await answer_query(update)
    village_id = CHOOSE_VILLAGE_PRESS.values(update)[0]
    draft = _draft(context, PROJECT)
    found: projects.VillageRef | None = None
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None and village_id is not None:
            try:
                found = await projects.village_in_scope(session, actor, village_id)
            except NotAllowed:
                await record_denial(update, context, session=session)
                found = None
    if actor is None:
        return await _forbidden(update, context, PROJECT)
    if found is None or found.township_id != draft.get("tid"):
        return await _project_stale(update, context)
    draft.update(vid=found.id, vname=found.name)
    await drop_buttons(update)
    return await _ask_project_state(update, context, P_NAME)


# -- /project: name, funds, status ------------------------------------------------------------


async def _ask_name(update: Update, context: CadreContext) -> int:
    _draft(context, PROJECT)["at"] = P_NAME
    await reply(update, context, "projects/ask_name", min=projects.NAME_MIN, max=projects.NAME_MAX)
    return P_NAME


async def _next(update: Update, context: CadreContext, answered: int) -> int:
    """The question after `answered`, or the review when an answer was being edited."""
    draft = _draft(context, PROJECT)
    if draft.pop("editing", False):
        return await _ask_project_state(update, context, P_REVIEW)
    return await _ask_project_state(update, context, P_ORDER[P_ORDER.index(answered) + 1])


async def take_name(update: Update, context: CadreContext) -> int:
    """Take the project's name."""
    try:
        name = projects.clean_name(typed_text(update))
    except RuleError as error:
        await _invalid(update, context, error)
        return await _ask_name(update, context)
    _draft(context, PROJECT)["name"] = name
    return await _next(update, context, P_NAME)


async def _ask_funds(update: Update, context: CadreContext) -> int:
    _draft(context, PROJECT)["at"] = P_FUNDS
    await reply(update, context, "projects/ask_funds", max=format_wan(projects.MAX_YUAN))
    return P_FUNDS


async def take_funds(update: Update, context: CadreContext) -> int:
    """Take the funds in wan yuan (10,000 yuan), kept as whole yuan."""
    try:
        funds = projects.parse_wan(typed_text(update))
    except RuleError as error:
        await _invalid(update, context, error)
        return await _ask_funds(update, context)
    _draft(context, PROJECT)["funds"] = funds
    return await _next(update, context, P_FUNDS)


async def _ask_status(update: Update, context: CadreContext) -> int:
    _draft(context, PROJECT)["at"] = P_STATUS
    buttons = [
        InlineKeyboardButton(
            label(update, context, f"project_status.{s}"), callback_data=f"prj:s:{s}"
        )
        for s in PROJECT_STATUSES
    ]
    await reply(update, context, "projects/choose_status", markup=InlineKeyboardMarkup([buttons]))
    return P_STATUS


async def choose_status(update: Update, context: CadreContext) -> int:
    """Take the project's status."""
    await answer_query(update)
    code = CHOOSE_STATUS_PRESS.values(update)[0]
    if code not in PROJECT_STATUSES:
        return await _project_stale(update, context)
    _draft(context, PROJECT)["status"] = code
    await drop_buttons(update)
    return await _next(update, context, P_STATUS)


# -- /project: lead cadres --------------------------------------------------------------------


async def _ask_leads(update: Update, context: CadreContext, *, edit: bool = False) -> int:
    draft = _draft(context, PROJECT)
    township_id = int(draft["tid"])
    page = int(draft.get("lpage", 0))
    chosen_ids = [int(i) for i in draft.get("leads", [])]
    async with context.session() as session:
        actor = await _official(session, update)
        items: list[LeadCandidate] = []
        chosen: list[LeadCandidate] = []
        total = 0
        if actor is not None:
            items, total = await projects.lead_candidates(
                session, actor, township_id, offset=page * PAGE_SIZE, limit=PAGE_SIZE
            )
            if not items and page > 0:
                page = 0
                items, total = await projects.lead_candidates(
                    session, actor, township_id, limit=PAGE_SIZE
                )
            chosen = await projects.leads_named(session, actor, township_id, chosen_ids)
    if actor is None:
        return await _forbidden(update, context, PROJECT)
    if total == 0:
        _forget(context, PROJECT)
        await reply(update, context, "projects/no_cadres", township=draft["tname"])
        return END
    # Someone chosen earlier may have left the pool since: they are dropped here.
    draft.update(at=P_LEADS, lpage=page, leads=[c.nomination_id for c in chosen])
    on = {c.nomination_id for c in chosen}
    rows = [
        [
            InlineKeyboardButton(
                button_text(
                    update,
                    context,
                    "projects/lead_button",
                    on=c.nomination_id in on,
                    full_name=c.full_name,
                    village=c.village or "",
                ),
                callback_data=f"prj:l:{c.nomination_id}",
            )
        ]
        for c in items
    ]
    nav = _nav(update, context, "prj:lp:", page, total, PAGE_SIZE)
    if nav:
        rows.append(nav)
    rows.append(
        [
            InlineKeyboardButton(
                label(update, context, "project.leads_done"), callback_data="prj:ld"
            )
        ]
    )
    send = edit_or_reply if edit else reply
    await send(
        update,
        context,
        "projects/choose_leads",
        markup=InlineKeyboardMarkup(rows),
        township=draft["tname"],
        chosen=chosen,
        total=total,
        page=page + 1,
        pages=_pages(total, PAGE_SIZE),
    )
    return P_LEADS


async def toggle_lead(update: Update, context: CadreContext) -> int:
    """Add or remove one lead cadre (re-checked: in the pool of the project's township)."""
    await answer_query(update)
    nomination_id = TOGGLE_LEAD_PRESS.values(update)[0]
    draft = _draft(context, PROJECT)
    if nomination_id is None or "tid" not in draft:
        return await _project_stale(update, context)
    async with context.session() as session:
        actor = await _official(session, update)
        found = (
            await projects.leads_named(session, actor, int(draft["tid"]), [nomination_id])
            if actor is not None
            else []
        )
    if actor is None:
        return await _forbidden(update, context, PROJECT)
    if not found:
        return await _project_stale(update, context)
    chosen = [int(i) for i in draft.get("leads", [])]
    if nomination_id in chosen:
        chosen.remove(nomination_id)
    elif len(chosen) < projects.MAX_LEADS:
        chosen.append(nomination_id)
    draft["leads"] = chosen
    return await _ask_leads(update, context, edit=True)


async def turn_leads_page(update: Update, context: CadreContext) -> int:
    """Another page of reserve cadres."""
    await answer_query(update)
    page = TURN_LEADS_PAGE_PRESS.values(update)[0]
    if page is None or "tid" not in _draft(context, PROJECT):
        return await _project_stale(update, context)
    _draft(context, PROJECT)["lpage"] = page
    return await _ask_leads(update, context, edit=True)


async def leads_done(update: Update, context: CadreContext) -> int:
    """Leads chosen: at least one is needed, then the review."""
    await answer_query(update)
    draft = _draft(context, PROJECT)
    if not draft.get("leads"):
        await reply(update, context, "projects/invalid", code="project.no_leads", params={})
        return await _ask_leads(update, context)
    await drop_buttons(update)
    draft.pop("editing", None)
    return await _ask_project_state(update, context, P_REVIEW)


# -- /project: review and save ----------------------------------------------------------------


async def _review(update: Update, context: CadreContext) -> int:
    draft = _draft(context, PROJECT)
    async with context.session() as session:
        actor = await _official(session, update)
        chosen = (
            await projects.leads_named(
                session, actor, int(draft["tid"]), [int(i) for i in draft.get("leads", [])]
            )
            if actor is not None
            else []
        )
    if actor is None:
        return await _forbidden(update, context, PROJECT)
    draft["leads"] = [c.nomination_id for c in chosen]
    if not chosen:
        await reply(update, context, "projects/invalid", code="project.leads", params={})
        return await _ask_leads(update, context)
    draft["at"] = P_REVIEW
    edits = [
        InlineKeyboardButton(
            label(update, context, f"project.edit.{field}"), callback_data=f"prj:e:{field}"
        )
        for field in P_EDITABLE
    ]
    markup = InlineKeyboardMarkup(
        [
            edits[:2],
            edits[2:],
            [
                InlineKeyboardButton(label(update, context, "submit"), callback_data="prj:ok"),
                InlineKeyboardButton(label(update, context, "cancel"), callback_data="prj:no"),
            ],
        ]
    )
    await reply(
        update,
        context,
        "projects/review",
        markup=markup,
        township=draft["tname"],
        village=draft["vname"],
        project=draft["name"],
        funds_wan=format_wan(int(draft["funds"])),
        status=draft["status"],
        leads=chosen,
    )
    return P_REVIEW


async def edit_field(update: Update, context: CadreContext) -> int:
    """Change one answer from the review, then come back to it."""
    await answer_query(update)
    field = EDIT_FIELD_PRESS.values(update)[0]
    if field not in P_EDITABLE or "status" not in _draft(context, PROJECT):
        return await _project_stale(update, context)
    await drop_buttons(update)
    _draft(context, PROJECT)["editing"] = True
    return await _ask_project_state(update, context, P_EDITABLE[field])


async def save_project(update: Update, context: CadreContext) -> int:
    """Store the project (scope, village and leads re-checked) and show it."""
    await answer_query(update)
    draft = _draft(context, PROJECT)
    if not {"vid", "name", "funds", "status", "leads"} <= draft.keys():
        return await _project_stale(update, context)
    error: RuleError | None = None
    saved = False
    rows: list[ProjectRow] = []
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None:
            try:
                project = await projects.create_project(
                    session,
                    actor,
                    village_id=int(draft["vid"]),
                    name=str(draft["name"]),
                    funds_yuan=int(draft["funds"]),
                    status=str(draft["status"]),
                    lead_ids=[int(i) for i in draft["leads"]],
                    now=now(),
                )
                saved = True
                rows = [await projects.project_row(session, actor, project.id)]
            except NotAllowed:
                await record_denial(update, context, session=session)
                saved = False
            except RuleError as exc:
                error = exc
    if actor is None:
        return await _forbidden(update, context, PROJECT)
    await drop_buttons(update)
    if error is not None:
        await _invalid(update, context, error)
        state = P_LEADS if error.code in ("project.leads", "project.no_leads") else P_REVIEW
        return await _ask_project_state(update, context, state)
    _forget(context, PROJECT)
    if not saved:
        await reply(update, context, "common/stale_button")
        return END
    await reply(update, context, "projects/saved", project=rows[0])
    return END


async def drop_project(update: Update, context: CadreContext) -> int:
    """The cancel button on the review: nothing stored."""
    await answer_query(update)
    await drop_buttons(update)
    return await cancel_project(update, context)


async def cancel_project(update: Update, context: CadreContext) -> int:
    """Leave /project; nothing is stored."""
    _forget(context, PROJECT)
    await reply(update, context, "common/cancelled")
    return END


async def _ask_project_state(update: Update, context: CadreContext, state: int) -> int:
    draft = _draft(context, PROJECT)
    if state == P_TOWNSHIP or "tid" not in draft:
        return await _ask_township(update, context)
    if state == P_VILLAGE or "vid" not in draft:
        return await _ask_village(update, context, int(draft.get("vpage", 0)))
    if state == P_NAME:
        return await _ask_name(update, context)
    if state == P_FUNDS:
        return await _ask_funds(update, context)
    if state == P_STATUS:
        return await _ask_status(update, context)
    if state == P_LEADS:
        return await _ask_leads(update, context)
    missing = [key for key in ("name", "funds", "status") if key not in draft]
    if missing:
        return await _ask_project_state(update, context, P_EDITABLE[missing[0]])
    return await _review(update, context)


def _project_at(context: CadreContext) -> int:
    return int(_draft(context, PROJECT).get("at", P_TOWNSHIP))


async def _project_stale(update: Update, context: CadreContext) -> int:
    await reply(update, context, "common/stale_button")
    return await _ask_project_state(update, context, _project_at(context))


async def project_stale(update: Update, context: CadreContext) -> int:
    """A button of this flow that does not belong to the current question."""
    await answer_query(update)
    return await _project_stale(update, context)


async def project_use_buttons(update: Update, context: CadreContext) -> int:
    """Text, a sticker, a photo… where a button is expected: say so and ask again."""
    await reply(update, context, "projects/use_buttons")
    return await _ask_project_state(update, context, _project_at(context))


async def project_wrong_input(update: Update, context: CadreContext) -> int:
    """A sticker, photo, file… where text is expected: ask again."""
    await reply(update, context, "common/wrong_input")
    return await _ask_project_state(update, context, _project_at(context))


async def project_busy(update: Update, context: CadreContext) -> int:
    """Another command in the middle of /project: say how to go on or leave."""
    await reply(update, context, "projects/busy", flow="project")
    return await _ask_project_state(update, context, _project_at(context))


# -- /projects --------------------------------------------------------------------------------


async def _show_list(update: Update, context: CadreContext, page: int, *, edit: bool) -> None:
    async with context.session() as session:
        actor = await _actor(session, update)
        items: list[ProjectRow] = []
        total = 0
        if actor is not None:
            items, total = await projects.list_projects(
                session, actor, offset=page * LIST_PAGE_SIZE, limit=LIST_PAGE_SIZE
            )
            if not items and page > 0:
                page = 0
                items, total = await projects.list_projects(session, actor, limit=LIST_PAGE_SIZE)
    official = actor is not None and actor.has(*OFFICIAL_ROLES)
    if not official and total == 0:
        # Neither an official nor a lead: deny by default, like every other list.
        await deny(update, context)
        return
    nav = _nav(update, context, "prjs:p:", page, total, LIST_PAGE_SIZE)
    markup = InlineKeyboardMarkup([nav]) if nav else None
    values: dict[str, Any] = {
        "items": items,
        "total": total,
        "page": page + 1,
        "pages": _pages(total, LIST_PAGE_SIZE),
        "official": official,
    }
    if edit:
        await edit_or_reply(update, context, "projects/list", markup=markup, **values)
    else:
        await reply(update, context, "projects/list", markup=markup, **values)


async def list_projects(update: Update, context: CadreContext) -> None:
    """List the projects in the official's scope (or those the cadre leads)."""
    await _show_list(update, context, 0, edit=False)


async def turn_list_page(update: Update, context: CadreContext) -> None:
    """Another page of the list (scope re-checked)."""
    await answer_query(update)
    page = TURN_LIST_PAGE_PRESS.values(update)[0]
    if page is None:
        await reply(update, context, "common/stale_button")
        return
    await _show_list(update, context, page, edit=True)


# -- /report ----------------------------------------------------------------------------------


async def begin_report(update: Update, context: CadreContext) -> int:
    """Start a progress report: choose the project one leads."""
    _forget(context, REPORT)
    return await _ask_report_project(update, context)


async def _ask_report_project(update: Update, context: CadreContext) -> int:
    async with context.session() as session:
        actor = await _actor(session, update)
        led = await projects.led_projects(session, actor) if actor is not None else []
    if not led:
        _forget(context, REPORT)
        await reply(update, context, "projects/report_none")
        return END
    _draft(context, REPORT)["at"] = R_PROJECT
    rows = [[InlineKeyboardButton(p.name, callback_data=f"rpt:p:{p.id}")] for p in led]
    await reply(
        update, context, "projects/report_choose", markup=InlineKeyboardMarkup(rows), items=led
    )
    return R_PROJECT


async def report_project(update: Update, context: CadreContext) -> int:
    """Take the project (re-checked: the person leads it) and ask the income."""
    await answer_query(update)
    project_id = REPORT_PROJECT_PRESS.values(update)[0]
    found: ProjectRow | None = None
    async with context.session() as session:
        actor = await _actor(session, update)
        if actor is not None and project_id is not None:
            try:
                found = await projects.led_project(session, actor, project_id)
            except NotAllowed:
                await record_denial(update, context, session=session)
                found = None
    if found is None:
        return await _report_stale(update, context)
    _forget(context, REPORT)
    _draft(context, REPORT).update(pid=found.id, pname=found.name, current=found.status)
    await drop_buttons(update)
    return await _ask_income(update, context)


async def _ask_income(update: Update, context: CadreContext) -> int:
    draft = _draft(context, REPORT)
    draft["at"] = R_INCOME
    await reply(
        update,
        context,
        "projects/ask_income",
        project=draft["pname"],
        max=format_wan(projects.MAX_YUAN),
    )
    return R_INCOME


async def take_income(update: Update, context: CadreContext) -> int:
    """Take the income gained since the last report, in wan yuan (0 allowed)."""
    try:
        income = projects.parse_wan(typed_text(update))
    except RuleError as error:
        await _invalid(update, context, error)
        return await _ask_income(update, context)
    _draft(context, REPORT)["income"] = income
    return await _ask_report_status(update, context)


async def _ask_report_status(update: Update, context: CadreContext) -> int:
    draft = _draft(context, REPORT)
    draft["at"] = R_STATUS
    buttons = [
        InlineKeyboardButton(
            label(update, context, f"project_status.{s}"), callback_data=f"rpt:s:{s}"
        )
        for s in PROJECT_STATUSES
        if s != draft["current"]
    ]
    keep = InlineKeyboardButton(
        label(update, context, "project.keep_status"), callback_data=f"rpt:s:{KEEP}"
    )
    await reply(
        update,
        context,
        "projects/report_status",
        markup=InlineKeyboardMarkup([buttons, [keep]]),
        current=draft["current"],
    )
    return R_STATUS


async def report_status(update: Update, context: CadreContext) -> int:
    """Take the new status, or none."""
    await answer_query(update)
    code = REPORT_STATUS_PRESS.values(update)[0]
    draft = _draft(context, REPORT)
    if (code != KEEP and code not in PROJECT_STATUSES) or "income" not in draft:
        return await _report_stale(update, context)
    draft["status"] = None if code == KEEP else code
    await drop_buttons(update)
    return await _ask_note(update, context)


async def _ask_note(update: Update, context: CadreContext) -> int:
    _draft(context, REPORT)["at"] = R_NOTE
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    label(update, context, "project.skip_note"), callback_data="rpt:skip"
                )
            ]
        ]
    )
    await reply(update, context, "projects/ask_note", markup=markup, max=projects.NOTE_MAX)
    return R_NOTE


async def take_note(update: Update, context: CadreContext) -> int:
    """Take the note (typed) or none (the skip button)."""
    draft = _draft(context, REPORT)
    if "status" not in draft:
        return await _report_stale(update, context)
    if update.callback_query is not None:
        await answer_query(update)
        await drop_buttons(update)
        draft["note"] = None
    else:
        try:
            draft["note"] = projects.clean_note(typed_text(update))
        except RuleError as error:
            await _invalid(update, context, error)
            return await _ask_note(update, context)
    return await _report_review(update, context)


async def _report_review(update: Update, context: CadreContext) -> int:
    draft = _draft(context, REPORT)
    draft["at"] = R_REVIEW
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label(update, context, "submit"), callback_data="rpt:ok"),
                InlineKeyboardButton(label(update, context, "cancel"), callback_data="rpt:no"),
            ]
        ]
    )
    await reply(
        update,
        context,
        "projects/report_review",
        markup=markup,
        project=draft["pname"],
        income_wan=format_wan(int(draft["income"])),
        current=draft["current"],
        status=draft.get("status") or "",
        note=draft.get("note") or "",
    )
    return R_REVIEW


async def save_report(update: Update, context: CadreContext) -> int:
    """Store the report (lead re-checked) and tell the township's officials, in one go."""
    await answer_query(update)
    draft = _draft(context, REPORT)
    if not {"pid", "income", "status", "note"} <= draft.keys():
        return await _report_stale(update, context)
    error: RuleError | None = None
    saved: projects.ReportSaved | None = None
    async with context.session() as session:
        actor = await _actor(session, update)
        if actor is not None:
            try:
                saved = await projects.add_report(
                    session,
                    actor,
                    int(draft["pid"]),
                    income_yuan=int(draft["income"]),
                    status=draft["status"],
                    note=draft["note"],
                    report_date=shanghai_today(context),
                    now=now(),
                )
            except NotAllowed:
                await record_denial(update, context, session=session)
                saved = None
            except RuleError as exc:
                error = exc
        if saved is not None:
            # In the report's transaction: the notice goes out if and only if it is stored.
            officials = await reminders.township_official_recipients(session, saved.township_id)
            await plan_notice(
                session,
                context,
                officials,
                "projects/notice_report",
                key=f"project-report:{saved.report_id}",
                report=saved,
            )
    await drop_buttons(update)
    if error is not None:
        await _invalid(update, context, error)
        return await _report_review(update, context)
    _forget(context, REPORT)
    if saved is None:
        await reply(update, context, "common/stale_button")
        return END
    await reply(update, context, "projects/report_saved", report=saved)
    return END


async def drop_report(update: Update, context: CadreContext) -> int:
    """The cancel button on the review: nothing stored."""
    await answer_query(update)
    await drop_buttons(update)
    return await cancel_report(update, context)


async def cancel_report(update: Update, context: CadreContext) -> int:
    """Leave /report; nothing is stored."""
    _forget(context, REPORT)
    await reply(update, context, "common/cancelled")
    return END


async def _ask_report_state(update: Update, context: CadreContext) -> int:
    draft = _draft(context, REPORT)
    if "pid" not in draft:
        return await _ask_report_project(update, context)
    if "income" not in draft:
        return await _ask_income(update, context)
    if "status" not in draft:
        return await _ask_report_status(update, context)
    if "note" not in draft:
        return await _ask_note(update, context)
    return await _report_review(update, context)


async def _report_stale(update: Update, context: CadreContext) -> int:
    await reply(update, context, "common/stale_button")
    return await _ask_report_state(update, context)


async def report_stale(update: Update, context: CadreContext) -> int:
    """A button of this flow that does not belong to the current question."""
    await answer_query(update)
    return await _report_stale(update, context)


async def report_use_buttons(update: Update, context: CadreContext) -> int:
    """Text, a sticker… where a button is expected: say so and ask again."""
    await reply(update, context, "projects/use_buttons")
    return await _ask_report_state(update, context)


async def report_wrong_input(update: Update, context: CadreContext) -> int:
    """A sticker, photo, file… where text is expected: ask again."""
    await reply(update, context, "common/wrong_input")
    return await _ask_report_state(update, context)


async def report_busy(update: Update, context: CadreContext) -> int:
    """Another command in the middle of /report: say how to go on or leave."""
    await reply(update, context, "projects/busy", flow="report")
    return await _ask_report_state(update, context)


# -- wiring -----------------------------------------------------------------------------------

Handlers = list[BaseHandler[Update, CadreContext, Any]]


# Every button this module answers, decoded by the one codec (handlers/chat/codec.py).
CHOOSE_TOWNSHIP_PRESS = cb.Button("prj", "t", cb.ID)
CHOOSE_VILLAGE_PRESS = cb.Button("prj", "v", cb.ID)
TURN_VILLAGE_PAGE_PRESS = cb.Button("prj", "vp", cb.PAGE)
CHOOSE_STATUS_PRESS = cb.Button("prj", "s", cb.CODE)
TOGGLE_LEAD_PRESS = cb.Button("prj", "l", cb.ID)
TURN_LEADS_PAGE_PRESS = cb.Button("prj", "lp", cb.PAGE)
LEADS_DONE_PRESS = cb.Button("prj", "ld")
SAVE_PROJECT_PRESS = cb.Button("prj", "ok")
DROP_PROJECT_PRESS = cb.Button("prj", "no")
EDIT_FIELD_PRESS = cb.Button("prj", "e", cb.CODE)
REPORT_PROJECT_PRESS = cb.Button("rpt", "p", cb.ID)
REPORT_STATUS_PRESS = cb.Button("rpt", "s", cb.CODE)
TAKE_NOTE_PRESS = cb.Button("rpt", "skip")
SAVE_REPORT_PRESS = cb.Button("rpt", "ok")
DROP_REPORT_PRESS = cb.Button("rpt", "no")
TURN_LIST_PAGE_PRESS = cb.Button("prjs", "p", cb.PAGE)


def _project_conversation() -> ConversationHandler[CadreContext]:
    text_in = filters.TEXT & ~filters.COMMAND & PRIVATE
    anything = ~filters.COMMAND & PRIVATE
    stale = on(cb.Prefix("prj"), project_stale)
    button_tail: Handlers = [stale, MessageHandler(anything, project_use_buttons)]
    text_tail: Handlers = [stale, MessageHandler(anything, project_wrong_input)]
    states: dict[object, Handlers] = {
        P_TOWNSHIP: [
            on(CHOOSE_TOWNSHIP_PRESS, choose_township),
            *button_tail,
        ],
        P_VILLAGE: [
            on(CHOOSE_VILLAGE_PRESS, choose_village),
            on(TURN_VILLAGE_PAGE_PRESS, turn_village_page),
            *button_tail,
        ],
        P_NAME: [MessageHandler(text_in, take_name), *text_tail],
        P_FUNDS: [MessageHandler(text_in, take_funds), *text_tail],
        P_STATUS: [
            on(CHOOSE_STATUS_PRESS, choose_status),
            *button_tail,
        ],
        P_LEADS: [
            on(TOGGLE_LEAD_PRESS, toggle_lead),
            on(TURN_LEADS_PAGE_PRESS, turn_leads_page),
            on(LEADS_DONE_PRESS, leads_done),
            *button_tail,
        ],
        P_REVIEW: [
            on(SAVE_PROJECT_PRESS, save_project),
            on(DROP_PROJECT_PRESS, drop_project),
            on(EDIT_FIELD_PRESS, edit_field),
            *button_tail,
        ],
    }
    return conversation(
        PROJECT,
        [CommandHandler("project", begin_project, filters=PRIVATE)],
        states,
        cancel=cancel_project,
        busy=project_busy,
    )


def _report_conversation() -> ConversationHandler[CadreContext]:
    text_in = filters.TEXT & ~filters.COMMAND & PRIVATE
    anything = ~filters.COMMAND & PRIVATE
    stale = on(cb.Prefix("rpt"), report_stale)
    button_tail: Handlers = [stale, MessageHandler(anything, report_use_buttons)]
    text_tail: Handlers = [stale, MessageHandler(anything, report_wrong_input)]
    states: dict[object, Handlers] = {
        R_PROJECT: [
            on(REPORT_PROJECT_PRESS, report_project),
            *button_tail,
        ],
        R_INCOME: [MessageHandler(text_in, take_income), *text_tail],
        R_STATUS: [
            on(REPORT_STATUS_PRESS, report_status),
            *button_tail,
        ],
        R_NOTE: [
            on(TAKE_NOTE_PRESS, take_note),
            MessageHandler(text_in, take_note),
            *text_tail,
        ],
        R_REVIEW: [
            on(SAVE_REPORT_PRESS, save_report),
            on(DROP_REPORT_PRESS, drop_report),
            *button_tail,
        ],
    }
    return conversation(
        REPORT,
        [CommandHandler("report", begin_report, filters=PRIVATE)],
        states,
        cancel=cancel_report,
        busy=report_busy,
    )


# /report is for the cadre who leads a project (no role); /projects also lists a lead's own.
COMMANDS: tuple[Command, ...] = (
    command("report"),
    command("projects", *OFFICIAL_ROLES),
    command("project", *OFFICIAL_ROLES),
)


def build_handlers() -> Handlers:
    """The two conversations first (their busy answer covers /projects mid-flow), then the
    list and its page buttons."""
    return [
        _project_conversation(),
        _report_conversation(),
        CommandHandler("projects", list_projects, filters=PRIVATE),
        on(TURN_LIST_PAGE_PRESS, turn_list_page),
    ]
