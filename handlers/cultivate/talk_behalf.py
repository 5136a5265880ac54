"""/pasttalk: an official records a talk on a mentor's behalf (补录), for a talk older than a
mentor may log (/talk takes the last 30 days): which pairing (a cadre and one of their
mentors, in the official's scope), which day (any day from the pairing's first to today),
then /talk's own questions: how, the four must-talk topics, the difficulties raised.

The talk is stored for the pairing's mentor and marked with the official who recorded it;
the dossier shows "recorded on the mentor's behalf" beside it (storage/behalf.py).
Callback data: ``tb:p:<pairing>``/``tb:pg:<page>``, ``tb:m:<mode>``, ``tb:dd``, ``tb:x:<i>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from handlers.chat.acting import REFUSALS, acting, as_actor, refusal
from handlers.chat.commands import command
from handlers.chat.flow import Answer, Finish, Flow, Goto, Outcome, Reask, ReviewScreen, Run, Texts
from handlers.chat.kinds import Text
from handlers.chat.paged import Paged
from handlers.chat.screen import Screen
from handlers.cultivate.kinds import MODE, Difficulties, Topic, talk_of
from storage import behalf
from storage.mentoring import Stale
from storage.models import OFFICIAL_ROLES
from storage.rules.cadence import TALK_TOPICS, check_talk_date, parse_talk_date
from storage.rules.identity import RuleError

COMMAND = command("pasttalk", *OFFICIAL_ROLES)
DATE_INVALID = "mentoring/behalf_date_invalid"


@dataclass(slots=True)
class PickPairing(Paged):
    """A cadre and one of their mentors, paged; a forged or foreign pairing is refused in
    SQL. Kept under /talk's keys ("mentee", "mentee_name") so that its questions read it."""

    key: str = "mentee"
    template: str = "mentoring/behalf_pick"
    empty: str = "mentoring/behalf_none"
    items_as: str = "pairings"

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        tz = run.settings.tz
        return await as_actor(
            run,
            lambda s, a: behalf.recordable_pairings(s, a, tz=tz, offset=offset, limit=limit),
        )

    def ident(self, item: Any) -> int:
        return int(item.pairing_id)

    def label(self, run: Run, item: Any) -> str:
        return f"{item.full_name} · {item.mentor_name}"

    async def choose(self, run: Run, ident: int) -> Outcome:
        tz = run.settings.tz
        try:
            pairing = await as_actor(
                run, lambda s, a: behalf.recordable_pairing(s, a, ident, tz=tz)
            )
        except REFUSALS as error:
            await refusal(run, error)
            return Reask()
        run.answers.update(
            mentee=pairing.pairing_id,
            mentee_name=pairing.full_name,
            mentor_name=pairing.mentor_name,
            paired_on=pairing.paired_on.isoformat(),
        )
        chosen = run.answers.get("date")
        if chosen and date.fromisoformat(chosen) < pairing.paired_on:
            # The other pairing began after the day already chosen: asked again.
            run.answers.pop("date")
        return Answer(pairing.pairing_id)

    def shown(self, run: Run) -> str | None:
        if not run.answers.get(self.key):
            return None
        return f"{run.answers.get('mentee_name', '')} · {run.answers.get('mentor_name', '')}"


def _date(run: Run, raw: str) -> str:
    """Any day from the pairing's first to today: no 30-day window for an official."""
    today = run.today()
    value = parse_talk_date(raw, today=today)
    paired_on = date.fromisoformat(run.answers["paired_on"])
    return check_talk_date(value, today=today, back_days=None, not_before=paired_on).isoformat()


def _date_values(run: Run) -> dict[str, Any]:
    return {
        "mentee": run.answers.get("mentee_name", ""),
        "mentor": run.answers.get("mentor_name", ""),
        "paired_on": run.answers.get("paired_on", ""),
        "today": run.today(),
    }


async def save(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the talk for the pairing's mentor, marked as recorded by this official."""
    talk = talk_of(answers)
    try:
        actor = await acting(run)
        async with run.session() as session:
            await behalf.record_talk(
                session,
                actor,
                int(answers["mentee"]),
                talk,
                cipher=run.chat.service("cipher"),
                now=datetime.now(UTC),
                tz=run.settings.tz,
            )
    except Stale:
        return Finish((Screen("mentoring/behalf_ended", {"mentee": answers["mentee_name"]}),))
    except RuleError as error:
        # A draft kept past midnight cannot move a date into the future; anything else the
        # date question refused already.
        run.answers.pop("date", None)
        run.draft["editing"] = True
        return Goto("date", say=DATE_INVALID, values={"code": error.code, "params": error.params})
    saved = {
        "mentee": answers["mentee_name"],
        "mentor": answers["mentor_name"],
        "talk_date": talk.talk_date,
        "difficulties": len(talk.difficulties),
    }
    return Finish((Screen("mentoring/behalf_saved", saved),))


TALK_BEHALF = Flow(
    name="talk_behalf",
    command=COMMAND,
    prefix="tb",
    questions=(
        PickPairing(),
        Text(
            "date",
            _date,
            template="mentoring/behalf_ask_date",
            invalid=DATE_INVALID,
            values=_date_values,
        ),
        MODE,
        *(Topic(code) for code in TALK_TOPICS),
        Difficulties(),
    ),
    review=ReviewScreen.labelled("mentoring/behalf_review", "talk"),
    submit=save,
    texts=Texts(
        busy="mentoring/behalf_busy",
        use_buttons="mentoring/use_buttons",
        wrong_input="mentoring/use_buttons",
    ),
)
