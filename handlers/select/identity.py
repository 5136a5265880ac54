"""The questions /nominate and /recommend share: name, ID number, phone, township, village.

Duplicate checks (an ID number or phone already on file) are rationed per account with the
invite codes' budget: whether a number is registered is a secret of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.chat.flow import Answer, Flow, Goto, Outcome, Question, Reask, Run, Turn
from handlers.chat.kinds import Pick, Rule, Text, checked, invalid
from handlers.chat.screen import Screen
from storage import geo, nominations, people, rounds
from storage.models import Township, Village
from storage.rules.identity import (
    RuleError,
    clean_text,
    cross_check,
    mask_id,
    mask_phone,
    normalize_name,
    normalize_phone,
    parse_id_number,
)

VILLAGES_PER_PAGE = 8


async def duplicate(run: Run, *, id_number: str | None = None, phone: str | None = None) -> bool:
    """True when the number is on file or checks are used up (said to the person)."""
    settings = run.settings
    window = settings.invite_failure_window_minutes
    async with run.session() as session:
        allowed = await people.spend_guess(
            session,
            run.chat.user_id,
            now=datetime.now(UTC),
            max_failures=settings.invite_max_failures,
            window=timedelta(minutes=window),
        )
        # Checked against the round the form would join (storage/rounds.py).
        state = await rounds.on(session, run.today())
        found = allowed and await nominations.is_duplicate(
            session,
            run.chat.service("cipher"),
            id_number=id_number,
            phone=phone,
            round_id=state.round_id,
        )
    if not allowed:
        # The draft keeps every answer given so far; the question is asked again.
        await run.chat.show(Screen("form/duplicate_throttled", {"minutes": window}))
        return True
    if found:
        await run.chat.show(Screen("form/duplicate", {"what": "id" if id_number else "phone"}))
    return found


def name(key: str = "full_name") -> Text:
    return Text(key, lambda _run, raw: normalize_name(raw))


def free_text(key: str, max_len: int) -> Text:
    return Text(key, lambda _run, raw: clean_text(raw, max_len=max_len))


@dataclass(slots=True)
class IdNumber(Question):
    """The 18-digit ID number: checked, cross-checked with the gender chosen, never kept in
    the chat (the engine deletes the message, `secret`), shown masked."""

    key: str = "id_number"
    secret: bool = True

    async def ask(self, run: Run, page: int) -> Screen:
        return Screen("form/ask_id_number", run.values())

    async def on_text(self, run: Run, text: str) -> Outcome:
        settings = run.settings
        try:
            info = parse_id_number(
                text, today=run.today(), min_age=settings.min_age, max_age=settings.max_age
            )
            cross_check(info, gender=run.answers.get("gender"), birth_date=None)
        except RuleError as error:
            if error.code == "id.gender_mismatch" and not run.draft.get("editing"):
                # The gender tapped earlier may be the mistake: ask it again, then the ID.
                return Goto("gender", "form/invalid", {"code": "id.gender_reask", "params": {}})
            return invalid("form/invalid", error)
        if await duplicate(run, id_number=info.number):
            return Reask()
        run.answers["birth_date"] = info.birth_date.isoformat()
        return Answer(info.number)

    def shown(self, run: Run) -> str | None:
        value = run.answers.get(self.key)
        return mask_id(str(value)) if value else None


async def gender_fits_id(run: Run, code: str) -> Outcome | None:
    """A gender chosen again after the ID number was given must agree with its digit."""
    number = run.answers.get("id_number")
    if not number:
        return None
    try:
        # The number was valid when typed; only its gender digit matters here.
        info = parse_id_number(number, today=run.today(), min_age=0, max_age=200)
        cross_check(info, gender=code, birth_date=None)
    except RuleError as error:
        return invalid("form/invalid", error)
    return None


async def phone_rule(run: Run, raw: str) -> str | None:
    phone = normalize_phone(raw)
    if await duplicate(run, phone=phone):
        return None
    await run.chat.show(Screen("form/phone_ok", clear_keyboard=True))
    return phone


@dataclass(slots=True)
class Phone(Text):
    """A mainland mobile number, typed or shared with the contact button; `own`: a shared
    contact must be the person's own (self-nomination). Optional: a skip button instead."""

    key: str = "phone"
    rule: Rule = phone_rule
    own: bool = False

    async def ask(self, run: Run, page: int) -> Screen:
        if self.optional:
            return await Text.ask(self, run, page)
        # Sharing the contact proves the number is the person's own Telegram number.
        return Screen("form/ask_phone", run.values(), contact=run.label("share_phone"))

    async def on_contact(self, run: Run, turn: Turn) -> Outcome:
        if self.own and not turn.own_contact:
            return Reask(say="form/invalid", values={"code": "phone.not_own", "params": {}})
        return await checked(self.rule, run, turn.phone, self.invalid)

    def shown(self, run: Run) -> str | None:
        value = run.answers.get(self.key)
        return mask_phone(str(value)) if value else None


async def _townships(run: Run, offset: int, limit: int) -> tuple[list[tuple[int, str]], int]:
    async with run.session() as session:
        townships = await geo.list_townships(session)
    return [(t.id, t.name) for t in townships], len(townships)


async def _take_township(run: Run, township_id: int) -> dict[str, Any] | None:
    async with run.session() as session:
        township = await session.get(Township, township_id)
    if township is None:
        return None
    if run.answers.get("township_id") != township.id:
        # Another township: the village chosen before is no longer one of its villages.
        run.answers.pop("village_id", None)
        run.answers.pop("village_name", None)
    return {"township_id": township.id, "township_name": township.name}


async def _villages(run: Run, offset: int, limit: int) -> tuple[list[tuple[int, str]], int]:
    async with run.session() as session:
        villages, total = await geo.list_villages(
            session, int(run.answers["township_id"]), offset=offset, limit=limit
        )
    return [(v.id, v.name) for v in villages], total


async def _take_village(run: Run, village_id: int) -> dict[str, Any] | None:
    async with run.session() as session:
        village = await session.get(Village, village_id)
    if village is None or village.township_id != run.answers.get("township_id"):
        return None
    return {"village_id": village.id, "village_name": village.name}


# The townships a person may choose from: None for every one (the public, county staff).
Within = Callable[[Run], Awaitable[frozenset[int] | None]]


def township(within: Within | None = None) -> Pick:
    """The township, from every one in the county, or only those `within` allows (a button
    for another, forged or from before, is stale)."""
    if within is None:
        return Pick("township_id", _townships, _take_township, tag="t", shows="township_name")
    scope = within

    async def load(run: Run, offset: int, limit: int) -> tuple[list[tuple[int, str]], int]:
        items, total = await _townships(run, offset, limit)
        allowed = await scope(run)
        if allowed is None:
            return items, total
        kept = [item for item in items if item[0] in allowed]
        return kept, len(kept)

    async def take(run: Run, township_id: int) -> dict[str, Any] | None:
        allowed = await scope(run)
        if allowed is not None and township_id not in allowed:
            return None
        return await _take_township(run, township_id)

    return Pick("township_id", load, take, tag="t", shows="township_name")


def village() -> Pick:
    return Pick(
        "village_id",
        _villages,
        _take_village,
        tag="v",
        page_tag="vp",
        per_page=VILLAGES_PER_PAGE,
        shows="village_name",
    )


def key_groups(run: Run) -> Sequence[str]:
    return run.settings.key_group_codes


def old_positions(
    steps: Sequence[str], more: dict[int, str], *, consent: bool = False
) -> Callable[..., dict[str, Any]]:
    """Upgrade a draft of the form engine before the flow engine (kept at deploy): its "at"
    was a step index or 100 (review), its consents a flag beside the answers."""

    at = {**dict(enumerate(steps)), 100: "review", **more}

    def upgrade(draft: dict[str, Any], state: int | None) -> dict[str, Any]:
        answers = dict(draft.get("answers") or {})
        position = Flow.old_position(draft, state, at)
        if consent and position in ("consent_id", *steps, "review"):
            # Past the first consent: the old form asked it before the first question.
            answers.setdefault("consent", True)
        if consent and draft.get("consent"):
            answers.setdefault("consent_id", True)
        return {"answers": answers, "at": position, "editing": bool(draft.get("editing"))}

    return upgrade
