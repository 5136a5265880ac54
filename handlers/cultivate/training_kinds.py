"""The questions of /training that the common kinds do not cover: a choice under its own
short tag (``tc:k:<kind>``, the data the buttons carried before the flow engine), the
audience within the official's scope, and the chosen people of the pool, paged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import acting
from handlers.chat.codec import ID, Button
from handlers.chat.flow import Answer, Outcome, Question, Reask, Run
from handlers.chat.kinds import Choice
from handlers.chat.paged import Toggled
from handlers.chat.screen import Btn, Screen, rows_of
from storage import trainings
from storage.people import Actor


def creating(run: Run) -> bool:
    """Asked only while creating a session (the same conversation also takes a score)."""
    return "invite_id" not in run.answers


def _editing(run: Run) -> dict[str, Any]:
    return {"editing": bool(run.draft.get("editing"))}


# Named as the class it was, so that /training's declaration reads as before.
def Option(key: str, tag: str, codes: Sequence[str]) -> Choice:
    """One of a few codes as ``<prefix>:<tag>:<code>``, labelled ``training.<key>.<code>``."""
    return Choice(
        key,
        codes,
        template=f"trainings/ask_{key}",
        when=creating,
        tag=tag,
        labels=f"training.{key}",
        values=_editing,
    )


@dataclass(slots=True)
class Audience(Question):
    """The county (county officials), one township of their scope, or chosen people:
    ``tc:a:c``, ``tc:a:t:<township>``, ``tc:a:p``. Storage checks the scope again on save."""

    key: str = "audience"
    when: Callable[[Run], bool] | None = creating

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "a", "c"), Button(prefix, "a", "t", ID), Button(prefix, "a", "p"))

    async def ask(self, run: Run, page: int) -> Screen:
        actor = await acting(run)
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
        actor = await acting(run)
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
class People(Toggled):
    """Reserve cadres of the official's pool, toggled one by one: ``tc:p:<nomination>``,
    pages ``tc:pp:<page>``, done ``tc:pd``. The picks and the page stay in the draft
    (``picked``, ``page``), so a restart keeps them; the answer only marks "done"."""

    key: str = "people"
    template: str = "trainings/ask_people"
    done_label: str = "training.pick_done"
    page_key: str = "page"
    chosen_key: str = "picked"
    editable: bool = False  # changed through the audience, as before
    when: Callable[[Run], bool] | None = choosing_people

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        async with run.session() as session:
            return await trainings.pickable_pool(
                session, await acting(run), offset=offset, limit=limit
            )

    async def still(self, run: Run, ids: Sequence[int]) -> Sequence[Any]:
        async with run.session() as session:
            return await trainings.picked_pool(session, await acting(run), ids)

    def label(self, run: Run, item: Any) -> str:
        mark = run.label("training.mark_on" if self.on(run, item) else "training.mark_off")
        return f"{mark} {item.full_name} · {item.township}"

    async def refused(self, run: Run) -> Outcome:
        # Not in this official's pool (a forged button): refused, the page shown again.
        await run.chat.deny()
        return Reask()

    async def close(self, run: Run) -> Outcome:
        picked = self.chosen(run)
        return Answer(len(picked)) if picked else Reask(say="trainings/pick_none")

    def shown(self, run: Run) -> str | None:
        return None
