"""/grade (the ladder), /results (annual results, by buttons or CSV) and /post (practice posts).

/results and /post are persistent conversations: the draft (plain JSON: ids, codes, ISO
dates) lives in user_data, the position in the conversation state, so a restart resumes the
question. Nothing is written before the final confirmation, and every press is re-checked
against the person's current role and scope in storage.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Document, InlineKeyboardButton, InlineKeyboardMarkup, Update
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
)
from handlers.chat.tg import on
from storage import grades, people, posts
from storage.grades import Candidate, CsvFileError, GradeError, ImportReport
from storage.models import Role
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.rules.identity import RuleError
from storage.rules.ladder import (
    EARLIEST_YEAR,
    LadderPolicy,
    Result,
    apply_result,
    load_policy,
)

PRIVATE = filters.ChatType.PRIVATE
PAGE_SIZE = 8
OFFICIALS = (Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN)

# /results states.
RESULT_YEAR = 0
RESULT_PERSON = 1
RESULT_PICK = 2
RESULT_CONFIRM = 3
# /post states.
POST_PERSON = 10
POST_KIND = 11
POST_TITLE = 12
POST_START = 13
POST_END = 14
POST_REVIEW = 15

RESULTS = "grade_results"  # conversation name and user_data key
POSTS = "practice_post"
CSV_MIME_TYPES = frozenset({"text/csv", "text/comma-separated-values", "application/csv"})
CSV_DOCUMENT = filters.Document.FileExtension("csv") | filters.Document.MimeType("text/csv")


# -- shared -----------------------------------------------------------------------------------


def _policy(context: CadreContext) -> LadderPolicy:
    """The ladder policy, read once per process (a test or the app may put one in first)."""
    policy = context.bot_data.get("grade_policy")
    if policy is None:
        policy = context.bot_data["grade_policy"] = load_policy()
    return policy


def _draft(context: CadreContext, key: str) -> dict[str, Any]:
    assert context.user_data is not None
    draft: dict[str, Any] = context.user_data.setdefault(key, {})
    return draft


def _forget(context: CadreContext, key: str) -> None:
    assert context.user_data is not None
    context.user_data.pop(key, None)


def _is_official(actor: Actor | None) -> bool:
    return actor is not None and actor.has(*OFFICIALS)


async def _official(session: AsyncSession, update: Update) -> Actor | None:
    """The acting official, or None: roles are re-read on every update (deny by default)."""
    user = update.effective_user
    assert user is not None
    actor = await people.load_actor(session, user.id)
    return actor if _is_official(actor) else None


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def _nav(
    update: Update, context: CadreContext, prefix: str, page: int, total: int
) -> list[InlineKeyboardButton]:
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(
                label(update, context, "prev"), callback_data=f"{prefix}{page - 1}"
            )
        )
    if (page + 1) * PAGE_SIZE < total:
        nav.append(
            InlineKeyboardButton(
                label(update, context, "next"), callback_data=f"{prefix}{page + 1}"
            )
        )
    return nav


async def _end_forbidden(update: Update, context: CadreContext, key: str) -> int:
    _forget(context, key)
    await deny(update, context)
    return ConversationHandler.END


# -- /grade -----------------------------------------------------------------------------------


async def show_grade(update: Update, context: CadreContext) -> None:
    """Show a cadre their grade, years, subsidy and next step; officials name a nomination id."""
    user = update.effective_user
    assert user is not None
    policy = _policy(context)
    args = context.args or []
    wanted = parse_id(args[0]) if len(args) == 1 else None
    view: grades.GradeView | None = None
    outcome = "show"
    async with context.session() as session:
        actor = await people.load_actor(session, user.id)
        if args:
            if wanted is None:
                outcome = "usage"
            elif actor is None:
                outcome = "not_found"
            else:
                try:
                    view = await grades.grade_for(session, actor, wanted, policy)
                except NotAllowed:
                    await record_denial(
                        update, context, session=session, subject=("nomination", wanted)
                    )
                    outcome = "not_found"
        elif actor is not None:
            view = await grades.grade_of(session, actor.person_id, policy)
    if outcome == "usage":
        await reply(update, context, "grades/usage")
    elif outcome == "not_found":
        await reply(update, context, "grades/not_found", nomination_id=wanted or "")
    elif view is None:
        await reply(update, context, "grades/not_on_ladder", official=_is_official(actor))
    else:
        await reply(
            update,
            context,
            "grades/show",
            view=view,
            own=actor is not None and not args,
            bonus_yuan=policy.excellent_bonus_yuan,
        )


# -- /results: guided -------------------------------------------------------------------------


def _years(context: CadreContext) -> tuple[int, int]:
    this_year = shanghai_today(context).year
    return this_year - 1, this_year


async def begin_results(update: Update, context: CadreContext) -> int:
    """Start recording annual assessment results: choose the year."""
    async with context.session() as session:
        actor = await _official(session, update)
    if actor is None:
        return await _end_forbidden(update, context, RESULTS)
    _forget(context, RESULTS)
    _draft(context, RESULTS)
    return await _ask_year(update, context)


async def _ask_year(update: Update, context: CadreContext) -> int:
    buttons = [
        InlineKeyboardButton(
            button_text(update, context, "grades/year_button", year=year),
            callback_data=f"grd:y:{year}",
        )
        for year in _years(context)
    ]
    await reply(
        update,
        context,
        "grades/choose_year",
        markup=InlineKeyboardMarkup([buttons]),
        max_kb=grades.MAX_CSV_BYTES // 1024,
        max_rows=grades.MAX_CSV_ROWS,
    )
    return RESULT_YEAR


async def _show_people(
    update: Update,
    context: CadreContext,
    year: int,
    page: int,
    items: list[Candidate],
    total: int,
    *,
    below: bool = False,
) -> int:
    """The page of cadres still without a result for the year, or the end of the round.

    `below`: a new message under the last outcome instead of editing the pressed one.
    """
    if total == 0:
        _forget(context, RESULTS)
        await reply(update, context, "grades/none_pending", year=year)
        return ConversationHandler.END
    rows = [
        [
            InlineKeyboardButton(
                button_text(
                    update,
                    context,
                    "grades/person_button",
                    full_name=c.full_name,
                    id=c.nomination_id,
                ),
                callback_data=f"grd:p:{c.nomination_id}",
            )
            for c in items[i : i + 2]
        ]
        for i in range(0, len(items), 2)
    ]
    nav = _nav(update, context, "grd:pg:", page, total)
    if nav:
        rows.append(nav)
    rows.append(
        [InlineKeyboardButton(label(update, context, "grades.done"), callback_data="grd:x")]
    )
    send = reply if below else edit_or_reply
    await send(
        update,
        context,
        "grades/choose_person",
        markup=InlineKeyboardMarkup(rows),
        year=year,
        people=items,
        total=total,
        page=page + 1,
        pages=_pages(total),
    )
    return RESULT_PERSON


async def _load_people(
    session: AsyncSession, actor: Actor, year: int, page: int
) -> tuple[int, list[Candidate], int]:
    items, total = await grades.pending_for_year(
        session, actor, year, offset=page * PAGE_SIZE, limit=PAGE_SIZE
    )
    if not items and page > 0:  # the page emptied under us: back to the first
        page = 0
        items, total = await grades.pending_for_year(session, actor, year, limit=PAGE_SIZE)
    return page, items, total


async def choose_year(update: Update, context: CadreContext) -> int:
    """Take the year from its button and list the cadres still to assess."""
    await answer_query(update)
    year = CHOOSE_YEAR_PRESS.values(update)[0]
    if year not in _years(context):
        return await _stale(update, context, RESULT_YEAR)
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None:
            page, items, total = await _load_people(session, actor, year, 0)
    if actor is None:
        return await _end_forbidden(update, context, RESULTS)
    draft = _draft(context, RESULTS)
    draft.clear()
    draft.update(year=year, page=page)
    return await _show_people(update, context, year, page, items, total)


async def turn_people_page(update: Update, context: CadreContext) -> int:
    """Another page of the cadres to assess."""
    await answer_query(update)
    page = TURN_PEOPLE_PAGE_PRESS.values(update)[0]
    draft = _draft(context, RESULTS)
    if page is None or "year" not in draft:
        return await _stale(update, context, RESULT_PERSON)
    return await _reload_people(update, context, page)


async def _reload_people(update: Update, context: CadreContext, page: int) -> int:
    draft = _draft(context, RESULTS)
    year = int(draft["year"])
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None:
            page, items, total = await _load_people(session, actor, year, page)
    if actor is None:
        return await _end_forbidden(update, context, RESULTS)
    draft["page"] = page
    return await _show_people(update, context, year, page, items, total)


async def choose_person(update: Update, context: CadreContext) -> int:
    """Take the cadre from their button (re-checked in scope) and offer the four results."""
    await answer_query(update)
    nomination_id = CHOOSE_PERSON_PRESS.values(update)[0]
    draft = _draft(context, RESULTS)
    if nomination_id is None or "year" not in draft:
        return await _stale(update, context, RESULT_PERSON)
    async with context.session() as session:
        actor = await _official(session, update)
        found: Candidate | None = None
        if actor is not None:
            try:
                found = await grades.candidate(session, actor, nomination_id)
            except NotAllowed:
                await record_denial(update, context, session=session)
                found = None
    if actor is None:
        return await _end_forbidden(update, context, RESULTS)
    if found is None:
        return await _stale(update, context, RESULT_PERSON)
    draft.update(nid=found.nomination_id, name=found.full_name, grade=found.grade)
    draft.update(years=found.years_in_grade, township=found.township)
    draft.pop("result", None)
    return await _ask_result(update, context)


def _state_of(draft: dict[str, Any]) -> Candidate:
    return Candidate(
        int(draft["nid"]),
        str(draft["name"]),
        str(draft["township"]),
        int(draft["grade"]),
        int(draft["years"]),
    )


async def _ask_result(update: Update, context: CadreContext) -> int:
    draft = _draft(context, RESULTS)
    cadre = _state_of(draft)
    policy = _policy(context)
    previews = [apply_result(cadre.state, result, policy) for result in Result]
    buttons = [
        InlineKeyboardButton(
            label(update, context, f"result.{r.value}"), callback_data=f"grd:r:{r}"
        )
        for r in Result
    ]
    markup = InlineKeyboardMarkup(
        [
            buttons[:2],
            buttons[2:],
            [InlineKeyboardButton(label(update, context, "back"), callback_data="grd:b")],
        ]
    )
    await edit_or_reply(
        update,
        context,
        "grades/choose_result",
        markup=markup,
        year=draft["year"],
        cadre=cadre,
        previews=previews,
        period=policy.subsidy_period,
    )
    return RESULT_PICK


async def choose_result(update: Update, context: CadreContext) -> int:
    """Take the result and show the move it would make, to confirm."""
    await answer_query(update)
    code = CHOOSE_RESULT_PRESS.values(update)[0]
    draft = _draft(context, RESULTS)
    if code not in {r.value for r in Result} or "nid" not in draft:
        return await _stale(update, context, RESULT_PICK)
    draft["result"] = code
    return await _ask_confirm(update, context)


async def _ask_confirm(update: Update, context: CadreContext) -> int:
    draft = _draft(context, RESULTS)
    cadre = _state_of(draft)
    policy = _policy(context)
    move = apply_result(cadre.state, Result(draft["result"]), policy)
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label(update, context, "submit"), callback_data="grd:ok"),
                InlineKeyboardButton(label(update, context, "back"), callback_data="grd:rb"),
            ]
        ]
    )
    await edit_or_reply(
        update,
        context,
        "grades/confirm",
        markup=markup,
        year=draft["year"],
        cadre=cadre,
        move=move,
        period=policy.subsidy_period,
    )
    return RESULT_CONFIRM


async def back_to_people(update: Update, context: CadreContext) -> int:
    """From the result buttons back to the list of cadres."""
    await answer_query(update)
    draft = _draft(context, RESULTS)
    if "year" not in draft:
        return await _stale(update, context, RESULT_PICK)
    return await _reload_people(update, context, int(draft.get("page", 0)))


async def back_to_results(update: Update, context: CadreContext) -> int:
    """From the confirmation back to the four results."""
    await answer_query(update)
    if "nid" not in _draft(context, RESULTS):
        return await _stale(update, context, RESULT_CONFIRM)
    return await _ask_result(update, context)


async def confirm_result(update: Update, context: CadreContext) -> int:
    """Record the result (scope, year and duplicates re-checked), show the move, go on."""
    await answer_query(update)
    draft = _draft(context, RESULTS)
    if not {"year", "nid", "result"} <= draft.keys():
        return await _stale(update, context, RESULT_CONFIRM)
    policy = _policy(context)
    year = int(draft["year"])
    error: GradeError | None = None
    applied: grades.Applied | None = None
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None:
            try:
                applied = await grades.record_result(
                    session,
                    actor,
                    int(draft["nid"]),
                    year,
                    Result(draft["result"]),
                    policy,
                    this_year=shanghai_today(context).year,
                    now=now(),
                )
            except NotAllowed:
                await record_denial(update, context, session=session)
                applied = None
            except GradeError as exc:
                error = exc
            page, items, total = await _load_people(session, actor, year, int(draft["page"]))
    if actor is None:
        return await _end_forbidden(update, context, RESULTS)
    query = update.callback_query
    if query is not None and query.message is not None:
        await drop_buttons(update)
    if error is not None:
        await reply(update, context, "grades/error", code=error.code, params=error.params)
    elif applied is None:
        await reply(update, context, "common/stale_button")
    else:
        await reply(
            update,
            context,
            "grades/applied",
            year=year,
            full_name=draft["name"],
            move=applied.move,
            period=policy.subsidy_period,
        )
    for key in ("nid", "name", "township", "grade", "years", "result"):
        draft.pop(key, None)
    draft["page"] = page
    return await _show_people(update, context, year, page, items, total, below=True)


async def finish_results(update: Update, context: CadreContext) -> int:
    """Leave the round of results."""
    await answer_query(update)
    _forget(context, RESULTS)
    await edit_or_reply(update, context, "grades/results_done")
    return ConversationHandler.END


async def _ask_results_state(update: Update, context: CadreContext, state: int) -> int:
    draft = _draft(context, RESULTS)
    if state == RESULT_PICK and "nid" in draft:
        return await _ask_result(update, context)
    if state == RESULT_CONFIRM and "result" in draft:
        return await _ask_confirm(update, context)
    if state in (RESULT_PERSON, RESULT_PICK, RESULT_CONFIRM) and "year" in draft:
        return await _reload_people(update, context, int(draft.get("page", 0)))
    return await _ask_year(update, context)


def _results_state(context: CadreContext) -> int:
    draft = _draft(context, RESULTS)
    if "result" in draft:
        return RESULT_CONFIRM
    if "nid" in draft:
        return RESULT_PICK
    return RESULT_PERSON if "year" in draft else RESULT_YEAR


async def _stale(update: Update, context: CadreContext, state: int) -> int:
    await reply(update, context, "common/stale_button")
    return await _ask_results_state(update, context, state)


async def results_stale(update: Update, context: CadreContext) -> int:
    """A button of this flow that does not belong to the current question."""
    await answer_query(update)
    return await _stale(update, context, _results_state(context))


async def results_use_buttons(update: Update, context: CadreContext) -> int:
    """Text, a sticker, a photo… where a button is expected: say so and ask again."""
    await reply(update, context, "grades/use_buttons")
    return await _ask_results_state(update, context, _results_state(context))


async def results_busy(update: Update, context: CadreContext) -> int:
    """Another command in the middle of /results: say how to go on or leave."""
    await reply(update, context, "grades/busy", flow="results")
    return await _ask_results_state(update, context, _results_state(context))


async def cancel_results(update: Update, context: CadreContext) -> int:
    """Leave /results; nothing that was not confirmed is stored."""
    _forget(context, RESULTS)
    await reply(update, context, "common/cancelled")
    return ConversationHandler.END


# -- /results: CSV upload ---------------------------------------------------------------------


async def _download(context: CadreContext, file_id: str) -> bytes:
    """The bytes of an uploaded file (a seam for tests: the transport fake has no files)."""
    return bytes(await (await context.bot.get_file(file_id)).download_as_bytearray())


def _looks_like_csv(document: Document) -> bool:
    name = (document.file_name or "").lower()
    return name.endswith(".csv") or (document.mime_type or "").lower() in CSV_MIME_TYPES


def _groups(report: ImportReport) -> list[dict[str, Any]]:
    """Bad rows grouped by reason, in the order of their first line."""
    groups: dict[str, dict[str, Any]] = {}
    for error in report.errors:
        group = groups.setdefault(error.code, {"code": error.code, "items": []})
        group["items"].append({"line": error.line, "other": error.other_line})
    for group in groups.values():
        group["count"] = len(group["items"])
    return list(groups.values())


async def upload_results(update: Update, context: CadreContext) -> int:
    """Import annual results from a CSV file: every row checked, then all applied or none."""
    message = update.effective_message
    assert message is not None and message.document is not None
    document = message.document
    _forget(context, RESULTS)
    policy = _policy(context)
    this_year = shanghai_today(context).year
    is_csv = _looks_like_csv(document)
    too_big = (document.file_size or 0) > grades.MAX_CSV_BYTES
    data: bytes | None = None
    if is_csv and not too_big:
        # Fetched before the transaction opens: no lock is held over the network.
        data = await _download(context, document.file_id)
    outcome = "ok"
    file_error: CsvFileError | None = None
    report: ImportReport | None = None
    try:
        async with context.session() as session:
            actor = await _official(session, update)
            if actor is None:
                outcome = "forbidden"
            elif not is_csv:
                file_error = CsvFileError("csv.not_csv")
            elif data is None:
                file_error = CsvFileError("csv.too_big", max_kb=grades.MAX_CSV_BYTES // 1024)
            else:
                try:
                    parsed = grades.parse_results_csv(data, this_year=this_year)
                except CsvFileError as exc:
                    file_error = exc
                else:
                    report = await grades.import_results(
                        session, actor, parsed, policy, this_year=this_year, now=now()
                    )
    except GradeError as exc:
        # A result recorded by someone else while this file was applied: nothing was kept.
        await reply(update, context, "grades/error", code=exc.code, params=exc.params)
        return ConversationHandler.END
    if outcome == "forbidden":
        await deny(update, context)
    elif file_error is not None:
        await reply(
            update,
            context,
            "grades/csv_file_error",
            code=file_error.code,
            params=file_error.params,
            max_kb=grades.MAX_CSV_BYTES // 1024,
            max_rows=grades.MAX_CSV_ROWS,
        )
    elif report is not None and not report.ok:
        await reply(
            update,
            context,
            "grades/csv_rejected",
            groups=_groups(report),
            bad=report.bad_lines,
            earliest=EARLIEST_YEAR,
            latest=this_year,
        )
    elif report is not None:
        moves = [a.move for a in report.applied]
        await reply(
            update,
            context,
            "grades/csv_applied",
            applied=len(moves),
            promoted=sum(1 for m in moves if m.kind == "promoted"),
            demoted=sum(1 for m in moves if m.kind == "demoted"),
            stayed=sum(1 for m in moves if m.kind == "stayed"),
            by_result=[(r.value, sum(1 for m in moves if m.result == r)) for r in Result],
            bonus_yuan=sum(m.bonus_yuan for m in moves),
        )
    return ConversationHandler.END


# -- /post: practice posts --------------------------------------------------------------------


async def begin_post(update: Update, context: CadreContext) -> int:
    """Start assigning a practice post: choose the reserve cadre."""
    _forget(context, POSTS)
    return await _post_people(update, context, 0)


async def _post_people(update: Update, context: CadreContext, page: int) -> int:
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None:
            items, total = await posts.assignable(
                session, actor, offset=page * PAGE_SIZE, limit=PAGE_SIZE
            )
            if not items and page > 0:
                page = 0
                items, total = await posts.assignable(session, actor, limit=PAGE_SIZE)
    if actor is None:
        return await _end_forbidden(update, context, POSTS)
    if total == 0:
        _forget(context, POSTS)
        await reply(update, context, "posts/none")
        return ConversationHandler.END
    _draft(context, POSTS)["page"] = page
    rows = [
        [
            InlineKeyboardButton(
                button_text(
                    update,
                    context,
                    "grades/person_button",
                    full_name=a.full_name,
                    id=a.nomination_id,
                ),
                callback_data=f"pst:p:{a.nomination_id}",
            )
            for a in items[i : i + 2]
        ]
        for i in range(0, len(items), 2)
    ]
    nav = _nav(update, context, "pst:pg:", page, total)
    if nav:
        rows.append(nav)
    await edit_or_reply(
        update,
        context,
        "posts/choose_person",
        markup=InlineKeyboardMarkup(rows),
        people=items,
        total=total,
        page=page + 1,
        pages=_pages(total),
    )
    return POST_PERSON


async def turn_post_page(update: Update, context: CadreContext) -> int:
    """Another page of reserve cadres."""
    await answer_query(update)
    page = TURN_POST_PAGE_PRESS.values(update)[0]
    if page is None:
        return await _post_stale(update, context)
    return await _post_people(update, context, page)


async def post_person(update: Update, context: CadreContext) -> int:
    """Take the cadre from their button (re-checked in scope) and ask the kind of post."""
    await answer_query(update)
    nomination_id = POST_PERSON_PRESS.values(update)[0]
    if nomination_id is None:
        return await _post_stale(update, context)
    found: posts.Assignee | None = None
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None:
            try:
                found = await posts.assignee(session, actor, nomination_id)
            except NotAllowed:
                await record_denial(update, context, session=session)
                found = None
    if actor is None:
        return await _end_forbidden(update, context, POSTS)
    if found is None:
        return await _post_stale(update, context)
    draft = _draft(context, POSTS)
    draft.update(nid=found.nomination_id, name=found.full_name, township=found.township)
    for key in ("kind", "title", "start", "end", "end_set"):
        draft.pop(key, None)
    return await _ask_kind(update, context)


async def _ask_kind(update: Update, context: CadreContext) -> int:
    draft = _draft(context, POSTS)
    buttons = [
        InlineKeyboardButton(label(update, context, f"post_kind.{k}"), callback_data=f"pst:k:{k}")
        for k in posts.POST_KINDS
    ]
    await edit_or_reply(
        update,
        context,
        "posts/choose_kind",
        markup=InlineKeyboardMarkup([[b] for b in buttons]),
        full_name=draft["name"],
        township=draft["township"],
    )
    return POST_KIND


async def post_kind(update: Update, context: CadreContext) -> int:
    """Take the kind; a hard post needs its name next, the others go on to the dates."""
    await answer_query(update)
    kind = POST_KIND_PRESS.values(update)[0]
    draft = _draft(context, POSTS)
    if kind not in posts.POST_KINDS or "nid" not in draft:
        return await _post_stale(update, context)
    draft["kind"] = kind
    query = update.callback_query
    if query is not None and query.message is not None:
        await drop_buttons(update)
    if kind == "hard_post":
        return await _ask_title(update, context)
    draft.pop("title", None)
    return await _ask_start(update, context)


async def _ask_title(update: Update, context: CadreContext) -> int:
    await reply(update, context, "posts/ask_title", max=posts.TITLE_MAX)
    return POST_TITLE


async def post_title(update: Update, context: CadreContext) -> int:
    """Take the hard post's name."""
    message = update.effective_message
    assert message is not None and message.text is not None
    try:
        title = posts.clean_title(message.text)
    except RuleError as error:
        await reply(update, context, "posts/invalid", code=error.code, params=error.params)
        return await _ask_title(update, context)
    _draft(context, POSTS)["title"] = title
    return await _ask_start(update, context)


async def _ask_start(update: Update, context: CadreContext) -> int:
    markup = InlineKeyboardMarkup(
        [[InlineKeyboardButton(label(update, context, "posts.today"), callback_data="pst:today")]]
    )
    await reply(update, context, "posts/ask_start", markup=markup, today=shanghai_today(context))
    return POST_START


async def post_start(update: Update, context: CadreContext) -> int:
    """Take the start date, typed or today's."""
    today = shanghai_today(context)
    if update.callback_query is not None:
        await answer_query(update)
        start = today
    else:
        message = update.effective_message
        assert message is not None and message.text is not None
        try:
            start = posts.parse_date(message.text, today=today)
        except RuleError as error:
            await reply(update, context, "posts/invalid", code=error.code, params=error.params)
            return await _ask_start(update, context)
    draft = _draft(context, POSTS)
    draft["start"] = start.isoformat()
    draft.pop("end", None)
    return await _ask_end(update, context)


async def _ask_end(update: Update, context: CadreContext) -> int:
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    label(update, context, "posts.no_end_date"), callback_data="pst:skip"
                )
            ]
        ]
    )
    await reply(
        update, context, "posts/ask_end", markup=markup, start=_draft(context, POSTS)["start"]
    )
    return POST_END


async def post_end(update: Update, context: CadreContext) -> int:
    """Take the end date (on or after the start), or none: the post is open-ended."""
    draft = _draft(context, POSTS)
    if "start" not in draft:
        return await _post_stale(update, context)
    end: date | None = None
    if update.callback_query is not None:
        await answer_query(update)
    else:
        message = update.effective_message
        assert message is not None and message.text is not None
        try:
            end = posts.parse_date(message.text, today=shanghai_today(context))
            posts.check_dates(date.fromisoformat(draft["start"]), end)
        except RuleError as error:
            await reply(update, context, "posts/invalid", code=error.code, params=error.params)
            return await _ask_end(update, context)
    draft["end"] = end.isoformat() if end else None
    return await _post_review(update, context)


async def _post_review(update: Update, context: CadreContext) -> int:
    draft = _draft(context, POSTS)
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label(update, context, "submit"), callback_data="pst:ok"),
                InlineKeyboardButton(label(update, context, "cancel"), callback_data="pst:no"),
            ]
        ]
    )
    await reply(
        update,
        context,
        "posts/review",
        markup=markup,
        full_name=draft["name"],
        township=draft["township"],
        kind=draft["kind"],
        title=draft.get("title") or "",
        start=draft["start"],
        end=draft.get("end") or "",
    )
    return POST_REVIEW


async def save_post(update: Update, context: CadreContext) -> int:
    """Store the post (scope re-checked) and show the cadre's posts."""
    await answer_query(update)
    draft = _draft(context, POSTS)
    if not {"nid", "kind", "start", "end"} <= draft.keys():
        return await _post_stale(update, context)
    today = shanghai_today(context)
    error: RuleError | None = None
    saved = False
    history: list[posts.PostRow] = []
    async with context.session() as session:
        actor = await _official(session, update)
        if actor is not None:
            try:
                await posts.assign_post(
                    session,
                    actor,
                    int(draft["nid"]),
                    kind=str(draft["kind"]),
                    title=draft.get("title"),
                    start_date=date.fromisoformat(draft["start"]),
                    end_date=date.fromisoformat(draft["end"]) if draft["end"] else None,
                    now=now(),
                )
                saved = True
            except NotAllowed:
                await record_denial(update, context, session=session)
                saved = False
            except RuleError as exc:
                error = exc
            if saved:
                history = await posts.posts_of(session, int(draft["nid"]), today=today)
    if actor is None:
        return await _end_forbidden(update, context, POSTS)
    query = update.callback_query
    if query is not None and query.message is not None:
        await drop_buttons(update)
    name = draft["name"]
    _forget(context, POSTS)
    if error is not None:
        await reply(update, context, "posts/invalid", code=error.code, params=error.params)
    elif not saved:
        await reply(update, context, "common/stale_button")
    else:
        await reply(update, context, "posts/saved", full_name=name, posts=history)
    return ConversationHandler.END


async def drop_post(update: Update, context: CadreContext) -> int:
    """The cancel button on the review: nothing stored."""
    await answer_query(update)
    query = update.callback_query
    if query is not None and query.message is not None:
        await drop_buttons(update)
    return await cancel_post(update, context)


def _post_state(context: CadreContext) -> int:
    draft = _draft(context, POSTS)
    if "end" in draft:
        return POST_REVIEW
    if "start" in draft:
        return POST_END
    if draft.get("kind") == "hard_post" and "title" not in draft:
        return POST_TITLE
    if "kind" in draft:
        return POST_START
    return POST_KIND if "nid" in draft else POST_PERSON


async def _ask_post_state(update: Update, context: CadreContext) -> int:
    state = _post_state(context)
    if state == POST_PERSON:
        return await _post_people(update, context, int(_draft(context, POSTS).get("page", 0)))
    if state == POST_KIND:
        return await _ask_kind(update, context)
    if state == POST_TITLE:
        return await _ask_title(update, context)
    if state == POST_START:
        return await _ask_start(update, context)
    if state == POST_END:
        return await _ask_end(update, context)
    return await _post_review(update, context)


async def _post_stale(update: Update, context: CadreContext) -> int:
    await reply(update, context, "common/stale_button")
    return await _ask_post_state(update, context)


async def post_stale(update: Update, context: CadreContext) -> int:
    """A button of this flow that does not belong to the current question."""
    await answer_query(update)
    return await _post_stale(update, context)


async def post_use_buttons(update: Update, context: CadreContext) -> int:
    """Typed text where a button is expected: say so and ask again."""
    await reply(update, context, "grades/use_buttons")
    return await _ask_post_state(update, context)


async def post_wrong_input(update: Update, context: CadreContext) -> int:
    """A sticker, photo, file… where text is expected: ask again."""
    await reply(update, context, "common/wrong_input")
    return await _ask_post_state(update, context)


async def post_busy(update: Update, context: CadreContext) -> int:
    """Another command in the middle of /post: say how to go on or leave."""
    await reply(update, context, "grades/busy", flow="post")
    return await _ask_post_state(update, context)


async def cancel_post(update: Update, context: CadreContext) -> int:
    """Leave /post; nothing is stored."""
    _forget(context, POSTS)
    await reply(update, context, "common/cancelled")
    return ConversationHandler.END


# -- wiring -----------------------------------------------------------------------------------


# Every button this module answers, decoded by the one codec (handlers/chat/codec.py).
CHOOSE_YEAR_PRESS = cb.Button("grd", "y", cb.YEAR)
CHOOSE_PERSON_PRESS = cb.Button("grd", "p", cb.ID)
TURN_PEOPLE_PAGE_PRESS = cb.Button("grd", "pg", cb.PAGE)
FINISH_RESULTS_PRESS = cb.Button("grd", "x")
CHOOSE_RESULT_PRESS = cb.Button("grd", "r", cb.CODE)
BACK_TO_PEOPLE_PRESS = cb.Button("grd", "b")
CONFIRM_RESULT_PRESS = cb.Button("grd", "ok")
BACK_TO_RESULTS_PRESS = cb.Button("grd", "rb")
POST_PERSON_PRESS = cb.Button("pst", "p", cb.ID)
TURN_POST_PAGE_PRESS = cb.Button("pst", "pg", cb.PAGE)
POST_KIND_PRESS = cb.Button("pst", "k", cb.CODE)
POST_START_PRESS = cb.Button("pst", "today")
POST_END_PRESS = cb.Button("pst", "skip")
SAVE_POST_PRESS = cb.Button("pst", "ok")
DROP_POST_PRESS = cb.Button("pst", "no")


def _results_conversation() -> ConversationHandler[CadreContext]:
    anything = ~filters.COMMAND & PRIVATE
    document = filters.Document.ALL & PRIVATE
    stale = on(cb.Prefix("grd"), results_stale)
    tail: list[BaseHandler[Update, CadreContext, Any]] = [
        MessageHandler(document, upload_results),
        stale,
        MessageHandler(anything, results_use_buttons),
    ]
    states: dict[object, list[BaseHandler[Update, CadreContext, Any]]] = {
        RESULT_YEAR: [on(CHOOSE_YEAR_PRESS, choose_year), *tail],
        RESULT_PERSON: [
            on(CHOOSE_PERSON_PRESS, choose_person),
            on(TURN_PEOPLE_PAGE_PRESS, turn_people_page),
            on(FINISH_RESULTS_PRESS, finish_results),
            *tail,
        ],
        RESULT_PICK: [
            on(CHOOSE_RESULT_PRESS, choose_result),
            on(BACK_TO_PEOPLE_PRESS, back_to_people),
            *tail,
        ],
        RESULT_CONFIRM: [
            on(CONFIRM_RESULT_PRESS, confirm_result),
            on(BACK_TO_RESULTS_PRESS, back_to_results),
            *tail,
        ],
    }
    return conversation(
        RESULTS,
        [CommandHandler("results", begin_results, filters=PRIVATE)],
        states,
        cancel=cancel_results,
        busy=results_busy,
    )


def _post_conversation() -> ConversationHandler[CadreContext]:
    text_in = filters.TEXT & ~filters.COMMAND & PRIVATE
    anything = ~filters.COMMAND & PRIVATE
    stale = on(cb.Prefix("pst"), post_stale)
    button_tail: list[BaseHandler[Update, CadreContext, Any]] = [
        stale,
        MessageHandler(anything, post_use_buttons),
    ]
    text_tail: list[BaseHandler[Update, CadreContext, Any]] = [
        stale,
        MessageHandler(anything, post_wrong_input),
    ]
    states: dict[object, list[BaseHandler[Update, CadreContext, Any]]] = {
        POST_PERSON: [
            on(POST_PERSON_PRESS, post_person),
            on(TURN_POST_PAGE_PRESS, turn_post_page),
            *button_tail,
        ],
        POST_KIND: [
            on(POST_KIND_PRESS, post_kind),
            *button_tail,
        ],
        POST_TITLE: [MessageHandler(text_in, post_title), *text_tail],
        POST_START: [
            on(POST_START_PRESS, post_start),
            MessageHandler(text_in, post_start),
            *text_tail,
        ],
        POST_END: [
            on(POST_END_PRESS, post_end),
            MessageHandler(text_in, post_end),
            *text_tail,
        ],
        POST_REVIEW: [
            on(SAVE_POST_PRESS, save_post),
            on(DROP_POST_PRESS, drop_post),
            *button_tail,
        ],
    }
    return conversation(
        POSTS,
        [CommandHandler("post", begin_post, filters=PRIVATE)],
        states,
        cancel=cancel_post,
        busy=post_busy,
    )


# /grade is a cadre's own grade (an official's with an id): it refuses nobody.
COMMANDS: tuple[Command, ...] = (
    command("grade"),
    command("results", *OFFICIALS),
    command("post", *OFFICIALS),
)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    """The two conversations first (so that their busy answer covers /grade mid-flow), then
    /grade, then a CSV sent outside any flow."""
    return [
        _results_conversation(),
        _post_conversation(),
        CommandHandler("grade", show_grade, filters=PRIVATE),
        # Outside /results only CSV files are taken: other documents stay for other flows.
        MessageHandler(CSV_DOCUMENT & PRIVATE, upload_results),
    ]
