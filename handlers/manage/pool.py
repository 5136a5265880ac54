"""/pool (the reserve pool): the list in an official's scope, its filters and pages, and the
pool's conversation (a name to search by; the adjustment of handlers/manage/adjust.py).

The filter lives in user_data["pool_filter"] as short codes and ids (persisted, so it survives a
restart), so the buttons carry only ``pl:<verb>[:<value>]``. Every button re-checks the
person's scope in the storage query: a forged or outdated one gets "not allowed" or "this
button has expired", never data.

The conversation "pool" only holds the moments when text is expected. Inside it, any other
pool button leaves it and does what it says (a half-typed reason is abandoned, not kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import acting
from handlers.chat.codec import CODE, PAGE, AnyOf, Button, choice
from handlers.chat.commands import command
from handlers.chat.flow import (
    Chat,
    Entry,
    Finish,
    Flow,
    Goto,
    InChat,
    Outcome,
    Question,
    Run,
    Texts,
)
from handlers.chat.kinds import Text
from handlers.chat.paged import Pages
from handlers.chat.screen import Btn, Pager, Screen, rows_of
from handlers.chat.screens import Act, Expired, Menu, Refused, screen, show
from handlers.manage import adjust
from handlers.manage.adjust import ADJUST, ConfirmAdjust, adjusting, start_adjust
from handlers.manage.dossier import EXPORT, OPEN, export_dossier, open_dossier
from storage import cadres, geo
from storage.cadres import PoolFilter
from storage.models import OFFICIAL_ROLES, Role
from storage.people import Actor
from storage.rules.identity import clean_text
from storage.rules.options import EDUCATIONS
from storage.rules.vetting import Status

COMMAND = command("pool", *OFFICIAL_ROLES)
FILTER_KEY = "pool_filter"
PAGER = Pager(10)
NAME_MAX = 20
# The filter's dimensions, by the names their labels use (``pool.by_<name>``, ``<name>.<code>``).
NAMES = {"t": "township", "kg": "key_group", "ed": "education", "st": "status"}
DIMENSIONS = tuple(NAMES)
FILTER_KEYS = (*DIMENSIONS, "q")
SEARCH_MODE = "search"
Towns = list[tuple[int, str]]  # (id, name)

_DIMENSION = choice(*DIMENSIONS)
TURN = Button("pl", "p", PAGE)
FILTER = Button("pl", "f", _DIMENSION)
FILTER_VALUE = Button("pl", "f", _DIMENSION, CODE)
CLEAR = Button("pl", "x")
SEARCH = Button("pl", "s")
PAGES = Pages("pool/list", PAGER, TURN)


# -- the list --------------------------------------------------------------------------------


def filter_state(chat: Chat) -> dict[str, Any]:
    """The person's filter and page. Before the port it sat in user_data["pool"] (now the
    conversation's draft; `upgrade` keeps it there under "filter"): taken over once."""
    state = chat.user_data.get(FILTER_KEY)
    if not isinstance(state, dict):
        old = chat.user_data.get("pool")
        legacy = old if isinstance(old, dict) else {}
        if "v" in legacy:
            legacy = legacy.get("filter") or {}
        state = {k: legacy[k] for k in (*FILTER_KEYS, "page") if k in legacy}
        chat.user_data[FILTER_KEY] = state
    return state


async def townships(session: AsyncSession, actor: Actor) -> Towns:
    """Townships the actor may filter by: all for county scope, else their own grants."""
    if actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL):
        return [(t.id, t.name) for t in await geo.list_townships(session)]
    own = {
        g.township_id: g.township_name or ""
        for g in actor.grants
        if g.role == Role.TOWNSHIP_OFFICIAL and g.township_id
    }
    return sorted(own.items())


def _pool_filter(state: dict[str, Any]) -> PoolFilter:
    return PoolFilter(
        township_id=state.get("t"),
        key_group=state.get("kg"),
        education=state.get("ed"),
        status=state.get("st"),
        name=state.get("q"),
    )


def _shown(chat: Chat, towns: dict[int, str], key: str, value: Any) -> str:
    """A filter's value as the list's heading names it."""
    if key == "t":
        return towns.get(int(value), str(value))
    return chat.label(f"{NAMES[key]}.{value}") if key in ("kg", "ed") else str(value)


async def listing(at: InChat, actor: Actor, *, edit: bool) -> Screen:
    """One page of the pool under the current filter, with the filter's buttons."""
    chat = at.chat
    state = filter_state(chat)
    async with chat.session() as session:
        towns = dict(await townships(session, actor))
        if state.get("t") is not None and state["t"] not in towns:
            state.pop("t")  # chosen under a wider role than the person now holds
        page = max(0, int(state.get("page", 0)))
        where = cadres.pool_conditions(actor, _pool_filter(state))
        read = partial(cadres.page, session, where, limit=PAGER.per_page, by_name=True)
        items, total = await read(offset=PAGER.offset(page))
        if not items and page > 0:
            # The pool shrank since the buttons were drawn: show the last page there is.
            page = PAGER.clamp(page, total)
            items, total = await read(offset=PAGER.offset(page))
    state["page"] = page
    shown = [
        {"kind": key, "value": _shown(chat, towns, key, state[key])}
        for key in FILTER_KEYS
        if state.get(key) is not None and key != "st"
    ]
    people = [
        Btn(
            f"{item.full_name or item.nomination_id} · {item.township}",
            OPEN.data(item.nomination_id),
        )
        for item in items
    ]
    # Township officials of one township get no township filter.
    dims = [d for d in DIMENSIONS if d != "t" or len(towns) > 1]
    tools = [Btn(chat.label("pool.search"), SEARCH.data())]
    if shown or state.get("st"):
        tools.append(Btn(chat.label("pool.clear"), CLEAR.data()))
    filters = [Btn(chat.label(f"pool.by_{NAMES[d]}"), FILTER.data(d)) for d in dims]
    return PAGES.screen(
        at,
        rows_of(people, 1),
        page,
        total,
        after=(*rows_of(filters, 4), *rows_of(tools, 2)),
        edit=edit,
        status=chat.label(f"status.{state.get('st') or Status.IN_POOL.value}"),
        filters=shown,
        items=items,
        offset=PAGER.offset(page),
    )


async def _offered(act: Act, dimension: str) -> tuple[Towns, list[tuple[str, str]]]:
    """The townships the person may filter by, and the (label, value) pairs `dimension`
    offers."""
    async with act.session() as session:
        towns = await townships(session, act.actor)
    if dimension == "t":
        return towns, [(name, str(tid)) for tid, name in towns]
    if dimension == "kg":
        codes: Sequence[str] = act.chat.settings.key_group_codes
    elif dimension == "ed":
        codes = EDUCATIONS
    else:
        codes = tuple(s.value for s in Status)
    return towns, [(act.label(f"{NAMES[dimension]}.{code}"), code) for code in codes]


@screen(button=FILTER, needs=COMMAND.needs)
async def choose_filter(act: Act) -> Screen:
    """Offer the values of one filter dimension."""
    (dimension,) = act.values
    towns, offered = await _offered(act, dimension)
    # Township officials of one township get no township filter; nobody gets another's.
    if dimension == "t" and len(towns) <= 1:
        raise Refused
    buttons = [Btn(text, FILTER_VALUE.data(dimension, value)) for text, value in offered]
    buttons.append(Btn(act.label("pool.any"), FILTER_VALUE.data(dimension, "*")))
    back = TURN.data(filter_state(act.chat).get("page", 0))
    buttons.append(Btn(act.label("back"), back))
    return Screen("pool/choose", {"dimension": dimension}, rows_of(buttons, 2), edit=True)


@screen(button=AnyOf(TURN, FILTER_VALUE, CLEAR), needs=COMMAND.needs)
async def relist(act: Act) -> Screen:
    """The list again: another page, or from the first page with one filter set to a value
    ("*": any) or with every filter dropped."""
    state = filter_state(act.chat)
    if act.button == FILTER_VALUE:
        dimension, value = act.values
        _, offered = await _offered(act, dimension)
        if value != "*" and value not in {v for _, v in offered}:
            if dimension == "t":
                raise Refused  # a township outside their scope
            raise Expired  # a code no longer offered (settings changed since it was drawn)
        state[dimension] = None if value == "*" else int(value) if dimension == "t" else value
    elif act.button == CLEAR:
        for key in FILTER_KEYS:
            state.pop(key, None)
    state["page"] = act.values[0] if act.button == TURN else 0
    return await listing(act, act.actor, edit=True)


# -- the conversation: a name to search by, an adjustment ------------------------------------


async def start_pool(run: Run, args: str) -> dict[str, Any] | None:
    """/pool: show the list; the conversation itself opens only from its buttons."""
    await run.chat.show(await listing(run, await acting(run), edit=False))
    return None


async def start_search(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
    return {"mode": SEARCH_MODE}


def searching(run: Run) -> bool:
    return run.answers.get("mode") == SEARCH_MODE


def _name(run: Run, raw: str) -> str:
    return clean_text(raw, max_len=NAME_MAX)


# Pool buttons that leave the conversation and do what they say.
LEAVING: dict[Button, Menu] = {
    TURN: relist,
    FILTER: choose_filter,
    FILTER_VALUE: relist,
    CLEAR: relist,
    OPEN: open_dossier,
    EXPORT: export_dossier,
}
# Pool buttons that start the conversation, and start it over when pressed inside it.
ENTRIES = (Entry(SEARCH, start_search), Entry(ADJUST, start_adjust))


class Leaves(Question):
    """A question of the pool's conversation: another pool button pressed while it is open
    leaves it (as before the port, a pool button always meant what it said)."""

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (*super().shapes(prefix), *LEAVING, *(entry.button for entry in ENTRIES))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        filter_state(run.chat)  # an old draft's filter, taken over before the draft goes
        menu = LEAVING.get(button)
        if menu is not None:
            await show(menu, run.chat, values=values, button=button)
            return Finish()
        for entry in ENTRIES:
            if entry.button == button:
                initial = await entry.start(run, values)
                if initial is None:
                    return Finish()  # refused or no longer possible: it has said why
                run.answers.clear()
                run.answers.update(initial)
                # The first question its mode asks: the name to search by, or the reason.
                return Goto(next(q.key for q in run.flow.questions if q.when and q.when(run)))
        return await super().on_button(run, button, values)


@dataclass(slots=True)
class PoolText(Leaves, Text):
    pass


class PoolConfirm(Leaves, ConfirmAdjust):
    pass


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """A search: the list narrowed by the name. An adjustment: done (adjust.py)."""
    state = filter_state(run.chat)  # first: an old draft's filter goes with the draft
    if adjusting(run):
        return await adjust.adjust_out(run, answers)
    state["q"] = answers["name"]
    state["page"] = 0
    return Finish((await listing(run, await acting(run), edit=False),))


def upgrade(old: dict[str, Any], state: int | None) -> dict[str, Any]:
    """The pre-engine draft (user_data["pool"]: `waiting`, `adjust`, `adjust_name`, `reason`
    beside the filter) and its state (0 name, 1 reason, 2 confirmation: the same positions
    as the questions below) → this flow's draft; the filter is kept for `filter_state`."""
    kept = {"filter": {k: old[k] for k in (*FILTER_KEYS, "page") if k in old}}
    if "adjust" in old:
        answers = {"mode": adjust.MODE, "adjust": old["adjust"]}
        answers["adjust_name"] = old.get("adjust_name", "")
        if state == 2 and old.get("reason"):
            answers["reason"] = old["reason"]
            return {"answers": answers, "at": "confirm", **kept}
        return {"answers": answers, "at": "reason", **kept}
    # Searching, or a position without its input (nothing else was ever stored): the name.
    return {"answers": {"mode": SEARCH_MODE}, "at": "name", **kept}


POOL = Flow(
    name="pool",
    command=COMMAND,
    prefix="pl",
    questions=(
        PoolText(
            "name",
            _name,
            template="pool/ask_name",
            when=searching,
            editable=False,
            values=lambda run: {"max_len": NAME_MAX},
        ),
        adjust.reason_question(PoolText),
        PoolConfirm(),
    ),
    submit=submit,
    start=start_pool,
    entries=ENTRIES,
    texts=Texts(busy="pool/busy", cancelled="pool/cancelled"),
    version=2,
    upgrade=upgrade,
)

MENUS = (relist, choose_filter)
