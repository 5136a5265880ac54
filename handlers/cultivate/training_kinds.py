"""The questions of /training that the common kinds do not cover: a choice under its own
short tag (``tc:k:<kind>``, the data the buttons carried before the flow engine), the
audience within the official's scope, and the chosen people of the pool, paged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import CODE, ID, PAGE, Button
from handlers.chat.flow import STALE, Answer, Outcome, Question, Reask, Run
from handlers.chat.screen import Btn, Screen, rows_of
from handlers.cultivate.training_values import PAGER
from storage import trainings
from storage.people import Actor


def creating(run: Run) -> bool:
    """Asked only while creating a session (the same conversation also takes a score)."""
    return "invite_id" not in run.answers


@dataclass(slots=True)
class Option(Question):
    """One of a few codes as ``<prefix>:<tag>:<code>``, labelled ``training.<key>.<code>``."""

    key: str
    tag: str
    codes: Sequence[str]
    when: Callable[[Run], bool] | None = creating

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, self.tag, CODE),)

    async def ask(self, run: Run, page: int) -> Screen:
        buttons = [
            Btn(run.label(f"training.{self.key}.{code}"), f"{run.prefix}:{self.tag}:{code}")
            for code in self.codes
        ]
        values = {"editing": bool(run.draft.get("editing"))}
        return Screen(f"trainings/ask_{self.key}", values, rows_of(buttons, 2))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        code = str(values[0])
        return Answer(code) if code in self.codes else STALE


async def _organizer(run: Run) -> Actor:
    """The official (the engine checked their role before this question ran)."""
    actor = await run.actor()
    assert actor is not None
    return actor


@dataclass(slots=True)
class Audience(Question):
    """The county (county officials), one township of their scope, or chosen people:
    ``tc:a:c``, ``tc:a:t:<township>``, ``tc:a:p``. Storage checks the scope again on save."""

    key: str = "audience"
    when: Callable[[Run], bool] | None = creating

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "a", "c"), Button(prefix, "a", "t", ID), Button(prefix, "a", "p"))

    async def ask(self, run: Run, page: int) -> Screen:
        actor = await _organizer(run)
        county = trainings.is_county_level(actor)
        buttons: list[Btn] = []
        if county:
            buttons.append(Btn(run.label("training.audience.county"), f"{run.prefix}:a:c"))
        async with run.session() as session:
            for township in await trainings.audience_townships(session, actor):
                buttons.append(Btn(township.name, f"{run.prefix}:a:t:{township.id}"))
        buttons.append(Btn(run.label("training.audience.people"), f"{run.prefix}:a:p"))
        return Screen("trainings/ask_audience", {"county": county}, rows_of(buttons, 2))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        actor = await _organizer(run)
        which = button.parts[2]
        if which == "c" and trainings.is_county_level(actor):
            run.answers.update(township_id=None, township_name="")
            return Answer("county")
        if which == "t":
            async with run.session() as session:
                allowed = {
                    t.id: t.name for t in await trainings.audience_townships(session, actor)
                }
            township_id = int(values[0])
            if township_id in allowed:
                run.answers.update(township_id=township_id, township_name=allowed[township_id])
                return Answer("township")
        elif which == "p":
            run.answers.update(township_id=None, township_name="")
            # Chosen again: the people are asked again, from the first page, picks kept.
            run.answers.pop("people", None)
            run.draft["page"] = 0
            return Answer("people")
        # Outside the official's scope (a forged button): refused, audited, asked again.
        await run.chat.deny()
        return Reask()

    def shown(self, run: Run) -> str | None:
        return None


async def valid_picks(session: AsyncSession, actor: Actor, run: Run) -> list[trainings.PoolPick]:
    """The chosen people, dropping any who left the pool (or the scope) since being picked."""
    picked = [int(n) for n in run.draft.get("picked", [])]
    picks = await trainings.picked_pool(session, actor, picked)
    valid = {p.nomination_id for p in picks}
    run.draft["picked"] = [n for n in picked if n in valid]
    return picks


def choosing_people(run: Run) -> bool:
    return creating(run) and run.answers.get("audience") == "people"


@dataclass(slots=True)
class People(Question):
    """Reserve cadres of the official's pool, toggled one by one: ``tc:p:<nomination>``,
    pages ``tc:pp:<page>``, done ``tc:pd``. The picks and the page stay in the draft
    (``picked``, ``page``), so a restart keeps them; the answer only marks "done"."""

    key: str = "people"
    editable: bool = False  # changed through the audience, as before
    when: Callable[[Run], bool] | None = choosing_people

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "p", ID), Button(prefix, "pp", PAGE), Button(prefix, "pd"))

    async def ask(self, run: Run, page: int) -> Screen:
        actor = await _organizer(run)
        number = int(run.draft.get("page", 0))
        async with run.session() as session:
            picks, total = await trainings.pickable_pool(
                session, actor, offset=PAGER.offset(number), limit=PAGER.per_page
            )
            picked = {p.nomination_id for p in await valid_picks(session, actor, run)}
        on, off = run.label("training.mark_on"), run.label("training.mark_off")
        rows: list[tuple[Btn, ...]] = [
            (
                Btn(
                    f"{on if p.nomination_id in picked else off} {p.full_name} · {p.township}",
                    f"{run.prefix}:p:{p.nomination_id}",
                ),
            )
            for p in picks
        ]
        nav = PAGER.nav(
            number,
            total,
            Button(run.prefix, "pp", PAGE),
            prev=run.label("prev"),
            next=run.label("next"),
        )
        if nav:
            rows.append(nav)
        rows.append((Btn(run.label("training.pick_done"), f"{run.prefix}:pd"),))
        values = {
            "picked": len(picked),
            "total": total,
            "page": number + 1,
            "pages": PAGER.pages(total),
        }
        return Screen("trainings/ask_people", values, tuple(rows))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        picked = [int(n) for n in run.draft.get("picked", [])]
        which = button.parts[1]
        if which == "pd":
            if not picked:
                return Reask(say="trainings/pick_none")
            return Answer(len(picked))
        number = int(values[0])
        if which == "pp":
            run.draft["page"] = number
            return Reask(edit=True)
        actor = await _organizer(run)
        async with run.session() as session:
            allowed = await trainings.picked_pool(session, actor, [number])
        if not allowed:
            # Not in this official's pool (a forged button): refused, the page shown again.
            await run.chat.deny()
            return Reask()
        run.draft["picked"] = [n for n in picked if n != number] + (
            [] if number in picked else [number]
        )
        return Reask(edit=True)

    def shown(self, run: Run) -> str | None:
        return None
