"""The question kinds of /talk (handlers/cultivate/talk.py): which mentee, on which day, how,
the four must-talk topics (text or a voice message) and the difficulties raised.

Their callback data is today's: ``tk:p:<id>``/``tk:pg:<page>`` (mentee), ``tk:d:0|1|x``
(date), ``tk:m:<mode>``, ``tk:dd`` (difficulties done), ``tk:x:<i>`` (delete one, confirmed
with ``tk:xy:<i>`` / ``tk:xn``). Nothing here imports `telegram`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from handlers.chat.acting import REFUSALS, as_actor, refusal
from handlers.chat.codec import Button, choice
from handlers.chat.flow import Answer, Outcome, Question, Reask, Run, Turn
from handlers.chat.kinds import Choice, ListOf, Rule, invalid
from handlers.chat.paged import Paged
from handlers.chat.screen import Btn, Screen, rows_of
from handlers.cultivate.mentees import mentee_list
from storage import mentoring
from storage.rules.cadence import (
    BACK_DAYS,
    DIFFICULTY_MAX_LEN,
    DIFFICULTY_MIN_LEN,
    MAX_DIFFICULTIES,
    TALK_MODES,
    TALK_TOPICS,
    TOPIC_MAX_LEN,
    TOPIC_MIN_LEN,
    check_talk_date,
    parse_talk_date,
)
from storage.rules.identity import RuleError, clean_text


def mentee_name(run: Run) -> str:
    return str(run.answers.get("mentee_name", ""))


def rule_broken(error: RuleError) -> Reask:
    return invalid("mentoring/invalid", error)


def kind_wrong(code: str) -> Reask:
    """A sticker, a photo, a file… where this question wants something else: say what."""
    return rule_broken(RuleError(code))


async def own_mentee(run: Run, pairing_id: int) -> mentoring.Mentee:
    """The mentor's own active pairing, checked in SQL: NotAllowed for anyone else's, Stale
    for one that ended."""
    now, tz = datetime.now(UTC), run.settings.tz
    return await as_actor(run, lambda s, a: mentoring.own_mentee(s, a, pairing_id, now=now, tz=tz))


def took(mentee: mentoring.Mentee) -> dict[str, Any]:
    """What choosing `mentee` stores: the pairing, the name shown, the day pairing began."""
    return {
        "mentee": mentee.pairing_id,
        "mentee_name": mentee.full_name,
        "paired_on": mentee.paired_on.isoformat(),
    }


def check_date(run: Run, value: date) -> None:
    """RuleError unless a talk with the chosen mentee may be logged for `value` today."""
    paired_on = run.answers.get("paired_on")
    not_before = date.fromisoformat(paired_on) if paired_on else None
    check_talk_date(value, today=run.today(), not_before=not_before)


def date_invalid(error: RuleError) -> Screen:
    values = {"code": error.code, "params": error.params or {}, "back_days": BACK_DAYS}
    return Screen("mentoring/talk_date_invalid", values)


@dataclass(slots=True)
class PickMentee(Paged):
    """One of the mentor's mentees, paged; a forged or foreign pairing is refused in SQL."""

    key: str = "mentee"
    template: str = "mentoring/talk_pick"
    # Every pairing ended while the draft waited.
    empty: str = "mentoring/no_mentees"
    items_as: str = "mentees"

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        actor = await run.actor()
        mentees = []
        if actor is not None:
            async with run.session() as session:
                mentees = await mentee_list(session, actor, run.settings)
        return mentees[offset : offset + limit], len(mentees)

    def ident(self, item: Any) -> int:
        return int(item.pairing_id)

    async def choose(self, run: Run, ident: int) -> Outcome:
        try:
            mentee = await own_mentee(run, ident)
        except REFUSALS as error:
            await refusal(run, error)
            return Reask()
        run.answers.update(took(mentee))
        chosen = run.answers.get("date")
        if chosen:
            # Another mentee may have been paired later than the date already chosen: the
            # engine then asks for the date again (it is the first unanswered question).
            try:
                check_date(run, date.fromisoformat(chosen))
            except RuleError as error:
                run.answers.pop("date")
                await run.chat.show(date_invalid(error))
        return Answer(mentee.pairing_id)

    def shown(self, run: Run) -> str | None:
        return mentee_name(run) if run.answers.get(self.key) else None


# The date's buttons: today, yesterday (days back), another date (typed).
_DAYS = (("talk.today", "0"), ("talk.yesterday", "1"), ("talk.other_date", "x"))


@dataclass(slots=True)
class TalkDate(Question):
    """Today, yesterday (buttons) or another date (typed: YYYY-MM-DD or M-D), within the
    window and not before the pairing began. ``draft["typing"]``: "another date" was chosen."""

    key: str = "date"

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "d", choice(*(code for _, code in _DAYS))),)

    async def ask(self, run: Run, page: int) -> Screen:
        today = run.today()
        if run.draft.get("typing"):
            return Screen("mentoring/talk_type_date", {"today": today, "back_days": BACK_DAYS})
        buttons = [Btn(run.label(label), f"{run.prefix}:d:{code}") for label, code in _DAYS]
        values = {"mentee": mentee_name(run), "today": today}
        return Screen("mentoring/talk_ask_date", values, rows_of(buttons, 3))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        if values[0] == "x":
            run.draft["typing"] = True
            await run.chat.drop_buttons()
            return Reask()
        return self._take(run, run.today() - timedelta(days=int(values[0])))

    async def on_text(self, run: Run, text: str) -> Outcome:
        try:
            value = parse_talk_date(text, today=run.today())
        except RuleError as error:
            return self._refuse(run, error)
        return self._take(run, value)

    def _take(self, run: Run, value: date) -> Outcome:
        try:
            check_date(run, value)
        except RuleError as error:
            return self._refuse(run, error)
        run.draft.pop("typing", None)
        return Answer(value.isoformat())

    def _refuse(self, run: Run, error: RuleError) -> Outcome:
        run.draft["typing"] = True
        screen = date_invalid(error)
        return Reask(say=screen.template, values=screen.values)

    def on_other(self, run: Run) -> Outcome:
        return kind_wrong("date.kind")


def _mode_values(run: Run) -> dict[str, Any]:
    chosen = run.answers.get("date")
    return {"mentee": mentee_name(run), "talk_date": date.fromisoformat(chosen) if chosen else ""}


# Face to face, by phone or a home visit: ``tk:m:<mode>``.
MODE = Choice(
    "mode",
    TALK_MODES,
    template="mentoring/talk_ask_mode",
    per_row=3,
    tag="m",
    labels="talk_mode",
    values=_mode_values,
)


@dataclass(slots=True)
class Topic(Question):
    """One of the four must-talk topics: text (2–1000 characters) or a voice message."""

    key: str

    async def ask(self, run: Run, page: int) -> Screen:
        values = {
            "mentee": mentee_name(run),
            "topic": self.key,
            "step": TALK_TOPICS.index(self.key) + 1,
            "steps": len(TALK_TOPICS),
            "min_len": TOPIC_MIN_LEN,
            "max_len": TOPIC_MAX_LEN,
        }
        return Screen("mentoring/talk_ask_topic", values, clear_keyboard=True)

    async def on_text(self, run: Run, text: str) -> Outcome:
        try:
            return Answer({"text": clean_text(text, min_len=TOPIC_MIN_LEN, max_len=TOPIC_MAX_LEN)})
        except RuleError as error:
            return rule_broken(error)

    async def on_voice(self, run: Run, turn: Turn) -> Outcome:
        return Answer({"voice": str(turn.file)})

    def on_other(self, run: Run) -> Outcome:
        return kind_wrong("topic.kind")

    def shown(self, run: Run) -> str | None:
        answer = run.answers.get(self.key)
        if not isinstance(answer, dict):
            return None
        text = answer.get("text")
        return str(text) if text else run.label("talk.voice") if answer.get("voice") else None


def _difficulty(run: Run, raw: str) -> str:
    return clean_text(raw, min_len=DIFFICULTY_MIN_LEN, max_len=DIFFICULTY_MAX_LEN)


@dataclass(slots=True)
class Difficulties(ListOf):
    """The practical difficulties raised, one per message; "done" (``tk:dd``) stays first
    and every delete (``tk:x:<i>``) asks to confirm (ListOf)."""

    key: str = "difficulties"
    rule: Rule = _difficulty
    template: str = "mentoring/talk_ask_difficulties"
    most: int = MAX_DIFFICULTIES
    done_tag: str = "dd"
    drop_tag: str = "x"
    invalid: str = "mentoring/invalid"

    async def ask(self, run: Run, page: int) -> Screen:
        # ListOf.ask by name: zero-argument super() does not work in a slots dataclass.
        screen = await ListOf.ask(self, run, page)
        values = {**screen.values, "mentee": mentee_name(run), "max_len": DIFFICULTY_MAX_LEN}
        return Screen(screen.template, values, screen.rows, edit=screen.edit)

    def on_other(self, run: Run) -> Outcome:
        return kind_wrong("difficulty.kind")

    def shown(self, run: Run) -> str | None:
        # The review lists them numbered, one a line.
        return "\n".join(f"{i}. {item}" for i, item in enumerate(self.items(run), start=1))


def talk_of(answers: dict[str, Any]) -> mentoring.TalkInput:
    """A talk as /talk and /pasttalk both store it, from the same questions' answers."""
    return mentoring.TalkInput(
        talk_date=date.fromisoformat(answers["date"]),
        mode=answers["mode"],
        topics={code: answers[code] for code in TALK_TOPICS},
        difficulties=list(answers.get("difficulties") or []),
    )
