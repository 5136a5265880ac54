"""A chat form declared as data: one question at a time, validation, a review screen.

`/nominate` and `/recommend` are two `FormFlow`s over the same engine. The draft lives in
user_data (persisted, encrypted), the position in the ConversationHandler state (persisted),
so a restart resumes at the question the person was answering. Nothing reaches the domain
tables before the person presses submit on the review screen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import (
    BaseHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers.chat.codec import CODE, ID, PAGE, AnyOf, Button, choice
from handlers.chat.context import CadreContext
from handlers.chat.reply import conversation, drop_buttons, keyboard, label, now, reply
from handlers.chat.tg import on
from storage import geo, nominations, people
from storage.crypto import DataCipher
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

StepKind = Literal["name", "text", "choice", "id", "phone", "township", "village"]
PRIVATE = filters.ChatType.PRIVATE
VILLAGES_PER_PAGE = 8

# States beyond the step indexes.
REVIEW = 100
CONSENT = 101
CONSENT_ID = 102


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    kind: StepKind
    optional: bool = False
    max_len: int = 0
    # Codes to offer as buttons; a callable when they come from settings.
    choices: Callable[[CadreContext], Sequence[str]] | None = None


Submit = Callable[[Update, CadreContext, dict[str, Any]], Awaitable[None]]
Guard = Callable[[Update, CadreContext], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class FormFlow:
    name: str  # conversation name and user_data key
    command: str
    prefix: str  # callback_data prefix, short: the 64-byte limit
    steps: tuple[Step, ...]
    submit: Submit
    consent: bool = False
    # Runs before the first question; returns False to refuse (it has replied itself).
    guard: Guard | None = None

    def index(self, key: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.key == key)


def shanghai_today(context: CadreContext) -> date:
    """Today in the county's time zone, not the server's: midnight is Beijing time."""
    return datetime.now(context.settings.tz).date()


def cipher(context: CadreContext) -> DataCipher:
    return context.bot_data["cipher"]  # type: ignore[no-any-return]


class FormEngine:
    """Builds the ConversationHandler of one flow and answers every update in it."""

    def __init__(self, flow: FormFlow) -> None:
        self.flow = flow
        p = flow.prefix
        # The buttons of a question: a choice (step key, code), a township, a village, a page
        # of villages, skip. Data that does not decode never reaches on_button.
        self.choice = Button(p, "c", CODE, CODE)
        self.township = Button(p, "t", ID)
        self.village = Button(p, "v", ID)
        self.village_page = Button(p, "vp", PAGE)
        self.skip = Button(p, "skip")
        self.consent = Button(p, "ok", choice("0", "1"))
        self.consent_id = Button(p, "id", choice("0", "1"))
        self.edit = Button(p, "e", CODE)
        self.submit = Button(p, "go")

    # -- draft -----------------------------------------------------------------------------

    def draft(self, context: CadreContext) -> dict[str, Any]:
        assert context.user_data is not None
        stored: dict[str, Any] = context.user_data.setdefault(
            self.flow.name, {"answers": {}, "editing": False}
        )
        return stored

    def answers(self, context: CadreContext) -> dict[str, Any]:
        return self.draft(context)["answers"]  # type: ignore[no-any-return]

    def forget(self, context: CadreContext) -> None:
        assert context.user_data is not None
        context.user_data.pop(self.flow.name, None)

    # -- asking ----------------------------------------------------------------------------

    def _values(self, update: Update, context: CadreContext) -> dict[str, Any]:
        return {"flow": self.flow.name, "answers": self.display(update, context)}

    async def ask(self, update: Update, context: CadreContext, index: int, page: int = 0) -> int:
        """Ask the question of step `index` and return that step's state."""
        step = self.flow.steps[index]
        self.draft(context)["at"] = index
        markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
        extra: dict[str, Any] = {}
        p = self.flow.prefix
        if step.kind == "choice":
            assert step.choices is not None
            buttons = [
                (label(update, context, f"{step.key}.{code}"), f"{p}:c:{step.key}:{code}")
                for code in step.choices(context)
            ]
            markup = keyboard(buttons, per_row=2)
        elif step.kind == "township":
            async with context.session() as session:
                townships = await geo.list_townships(session)
            markup = keyboard([(t.name, f"{p}:t:{t.id}") for t in townships], per_row=2)
        elif step.kind == "village":
            markup, extra = await self._village_page(update, context, page)
        elif step.kind == "phone" and not step.optional:
            # Sharing the contact proves the number is the person's own Telegram number.
            markup = ReplyKeyboardMarkup(
                [[KeyboardButton(label(update, context, "share_phone"), request_contact=True)]],
                one_time_keyboard=True,
                resize_keyboard=True,
            )
        if step.optional and step.kind != "choice" and markup is None:
            markup = keyboard([(label(update, context, "skip"), f"{p}:skip")])
        await reply(
            update,
            context,
            f"form/ask_{step.key}",
            markup=markup,
            step=index + 1,
            steps=len(self.flow.steps),
            **self._values(update, context),
            **extra,
        )
        return index

    async def _village_page(
        self, update: Update, context: CadreContext, page: int
    ) -> tuple[InlineKeyboardMarkup, dict[str, Any]]:
        township_id = int(self.answers(context)["township_id"])
        async with context.session() as session:
            villages, total = await geo.list_villages(
                session, township_id, offset=page * VILLAGES_PER_PAGE, limit=VILLAGES_PER_PAGE
            )
        p = self.flow.prefix
        rows = [
            [
                InlineKeyboardButton(v.name, callback_data=f"{p}:v:{v.id}")
                for v in villages[i : i + 2]
            ]
            for i in range(0, len(villages), 2)
        ]
        nav = []
        if page > 0:
            nav.append(
                InlineKeyboardButton(
                    label(update, context, "prev"), callback_data=f"{p}:vp:{page - 1}"
                )
            )
        if (page + 1) * VILLAGES_PER_PAGE < total:
            nav.append(
                InlineKeyboardButton(
                    label(update, context, "next"), callback_data=f"{p}:vp:{page + 1}"
                )
            )
        if nav:
            rows.append(nav)
        pages = max(1, -(-total // VILLAGES_PER_PAGE))
        return InlineKeyboardMarkup(rows), {"page": page + 1, "pages": pages}

    async def advance(self, update: Update, context: CadreContext, index: int) -> int:
        """After step `index` was answered: the next question, or back to review if editing."""
        draft = self.draft(context)
        if draft.get("editing"):
            # Choosing another township invalidates the village: ask it before reviewing.
            if self.flow.steps[index].kind == "township" and "village_id" not in self.answers(
                context
            ):
                return await self.ask(update, context, self.flow.index("village_id"))
            draft["editing"] = False
            return await self.show_review(update, context)
        if index + 1 < len(self.flow.steps):
            return await self.ask(update, context, index + 1)
        return await self.show_review(update, context)

    # -- display ---------------------------------------------------------------------------

    def display(self, update: Update, context: CadreContext) -> dict[str, str]:
        """Answers as a person reads them: labels for codes, masked ID and phone."""
        answers = self.answers(context)
        shown: dict[str, str] = {}
        for step in self.flow.steps:
            if step.kind in ("township", "village"):
                value = answers.get(f"{step.kind}_name")
            else:
                value = answers.get(step.key)
            if value is None:
                continue
            if step.kind == "choice":
                value = label(update, context, f"{step.key}.{value}")
            elif step.kind == "id":
                value = mask_id(str(value))
            elif step.kind == "phone":
                value = mask_phone(str(value))
            shown[step.key] = str(value)
        return shown

    async def show_review(self, update: Update, context: CadreContext) -> int:
        p = self.flow.prefix
        buttons = [
            (label(update, context, f"edit.{s.key}"), f"{p}:e:{s.key}") for s in self.flow.steps
        ]
        rows = keyboard(buttons, per_row=2).inline_keyboard
        submit = [InlineKeyboardButton(label(update, context, "submit"), callback_data=f"{p}:go")]
        markup = InlineKeyboardMarkup([*rows, submit])
        self.draft(context)["at"] = REVIEW
        await reply(update, context, "form/review", markup=markup, **self._values(update, context))
        return REVIEW

    # -- callbacks -------------------------------------------------------------------------

    async def begin(self, update: Update, context: CadreContext) -> int:
        """Start the form (or resume the draft if one is open)."""
        if self.flow.guard is not None and not await self.flow.guard(update, context):
            return ConversationHandler.END
        self.forget(context)
        if self.flow.consent:
            return await self._ask_consent(update, context)
        self.draft(context)
        return await self.ask(update, context, 0)

    async def _ask_consent(self, update: Update, context: CadreContext) -> int:
        p = self.flow.prefix
        markup = keyboard(
            [
                (label(update, context, "consent.yes"), f"{p}:ok:1"),
                (label(update, context, "consent.no"), f"{p}:ok:0"),
            ]
        )
        self.draft(context)["at"] = CONSENT
        settings = context.settings
        await reply(
            update,
            context,
            "form/consent",
            markup=markup,
            flow=self.flow.name,
            # The periods the daily purge applies (storage/retention.py), from the settings.
            file_years=settings.retain_file_years,
            rejected_days=settings.retain_rejected_days,
            draft_days=settings.retain_draft_days,
        )
        return CONSENT

    async def on_consent(self, update: Update, context: CadreContext) -> int:
        """General consent, then the separate consent for the ID number (sensitive data)."""
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer()
        await drop_buttons(update)
        if self.consent.values(update) != ("1",):
            self.forget(context)
            await reply(update, context, "form/declined")
            return ConversationHandler.END
        return await self._ask_consent_id(update, context)

    async def _ask_consent_id(self, update: Update, context: CadreContext) -> int:
        p = self.flow.prefix
        markup = keyboard(
            [
                (label(update, context, "consent.yes"), f"{p}:id:1"),
                (label(update, context, "consent.no"), f"{p}:id:0"),
            ]
        )
        self.draft(context)["at"] = CONSENT_ID
        await reply(update, context, "form/consent_id", markup=markup)
        return CONSENT_ID

    async def on_consent_id(self, update: Update, context: CadreContext) -> int:
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer()
        await drop_buttons(update)
        if self.consent_id.values(update) != ("1",):
            self.forget(context)
            await reply(update, context, "form/declined")
            return ConversationHandler.END
        self.draft(context)["consent"] = True
        # A draft that already holds answers (consent asked again before submit) goes on
        # where it stands; a new one starts at the first question.
        missing = self._missing(context)
        if not missing:
            return await self.show_review(update, context)
        return await self.ask(update, context, self.flow.index(missing[0]))

    def _missing(self, context: CadreContext) -> list[str]:
        answers = self.answers(context)
        return [
            s.key for s in self.flow.steps if not s.optional and answers.get(s.key) in (None, "")
        ]

    async def on_text(self, update: Update, context: CadreContext) -> int:
        """A typed answer to the current text question."""
        index = self._step_at(update, context)
        step = self.flow.steps[index]
        message = update.effective_message
        assert message is not None and message.text is not None
        raw = message.text
        if step.kind in ("choice", "township", "village"):
            await reply(update, context, "form/use_buttons")
            return await self.ask(update, context, index)
        try:
            value = await self._validate(update, context, step, raw)
        except RuleError as error:
            if error.code == "id.gender_mismatch" and not self.draft(context).get("editing"):
                # The gender tapped earlier may be the mistake: ask it again, then the ID.
                await reply(update, context, "form/invalid", code="id.gender_reask", params={})
                return await self.ask(update, context, self.flow.index("gender"))
            await reply(
                update, context, "form/invalid", code=error.code, params=error.params or {}
            )
            return await self.ask(update, context, index)
        if value is None:  # refused with its own message (a duplicate, or checks rationed)
            return await self.ask(update, context, index)
        self.answers(context)[step.key] = value
        if step.kind == "phone":
            await reply(update, context, "form/phone_ok", markup=ReplyKeyboardRemove())
        return await self.advance(update, context, index)

    async def on_contact(self, update: Update, context: CadreContext) -> int:
        """The share-contact button: accepted only for the person's own number."""
        index = self._step_at(update, context)
        message = update.effective_message
        assert message is not None and message.contact is not None
        user = update.effective_user
        step = self.flow.steps[index]
        if self.flow.name == "nomination" and (user is None or message.contact.user_id != user.id):
            await reply(update, context, "form/invalid", code="phone.not_own", params={})
            return await self.ask(update, context, index)
        try:
            value = await self._validate(update, context, step, message.contact.phone_number)
        except RuleError as error:
            await reply(
                update, context, "form/invalid", code=error.code, params=error.params or {}
            )
            return await self.ask(update, context, index)
        if value is None:
            return await self.ask(update, context, index)
        self.answers(context)[step.key] = value
        await reply(update, context, "form/phone_ok", markup=ReplyKeyboardRemove())
        return await self.advance(update, context, index)

    async def _validate(
        self, update: Update, context: CadreContext, step: Step, raw: str
    ) -> str | None:
        answers = self.answers(context)
        if step.kind == "name":
            return normalize_name(raw)
        if step.kind == "text":
            return clean_text(raw, max_len=step.max_len)
        if step.kind == "id":
            info = parse_id_number(
                raw,
                today=shanghai_today(context),
                min_age=context.settings.min_age,
                max_age=context.settings.max_age,
            )
            cross_check(info, gender=answers.get("gender"), birth_date=None)
            if await self._duplicate(update, context, id_number=info.number):
                return None
            answers["birth_date"] = info.birth_date.isoformat()
            return info.number
        if step.kind == "phone":
            phone = normalize_phone(raw)
            if await self._duplicate(update, context, phone=phone):
                return None
            return phone
        raise AssertionError(step.kind)

    async def _duplicate(
        self,
        update: Update,
        context: CadreContext,
        *,
        id_number: str | None = None,
        phone: str | None = None,
    ) -> bool:
        user = update.effective_user
        assert user is not None
        settings = context.settings
        window = settings.invite_failure_window_minutes
        async with context.session() as session:
            # Whether a number is registered is a secret of its own: checks are rationed per
            # account with the invite codes' budget, so nobody can go through a list of them.
            allowed = await people.spend_guess(
                session,
                user.id,
                now=now(),
                max_failures=settings.invite_max_failures,
                window=timedelta(minutes=window),
            )
            duplicate = allowed and await nominations.is_duplicate(
                session, cipher(context), id_number=id_number, phone=phone
            )
        if not allowed:
            # The draft keeps every answer given so far; the question is asked again.
            await reply(update, context, "form/duplicate_throttled", minutes=window)
            return True
        if duplicate:
            await reply(update, context, "form/duplicate", what="id" if id_number else "phone")
        return duplicate

    async def on_button(self, update: Update, context: CadreContext) -> int:
        """A choice, township, village, page or skip button of the current question."""
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer()
        index = self._step_at(update, context)
        step = self.flow.steps[index]
        button, values = AnyOf(
            self.choice, self.township, self.village, self.village_page, self.skip
        ).which(update)
        answers = self.answers(context)
        if button is self.choice and step.kind == "choice" and values[0] == step.key:
            assert step.choices is not None
            if values[1] not in step.choices(context):
                return await self._stale(update, context, index)
            if step.key == "gender" and "id_number" in answers:
                try:
                    # The number was valid when typed; only its gender digit matters here.
                    info = parse_id_number(
                        answers["id_number"], today=shanghai_today(context), min_age=0, max_age=200
                    )
                    cross_check(info, gender=values[1], birth_date=None)
                except RuleError as error:
                    await reply(update, context, "form/invalid", code=error.code, params={})
                    return await self.ask(update, context, index)
            answers[step.key] = values[1]
        elif button is self.township and step.kind == "township":
            async with context.session() as session:
                township = await session.get(Township, values[0])
            if township is None:
                return await self._stale(update, context, index)
            if answers.get("township_id") != township.id:
                answers.pop("village_id", None)
                answers.pop("village_name", None)
            answers["township_id"] = township.id
            answers["township_name"] = township.name
        elif button is self.village and step.kind == "village":
            async with context.session() as session:
                village = await session.get(Village, values[0])
            if village is None or village.township_id != answers.get("township_id"):
                return await self._stale(update, context, index)
            answers["village_id"] = village.id
            answers["village_name"] = village.name
        elif button is self.village_page and step.kind == "village":
            return await self.ask(update, context, index, page=values[0])
        elif button is self.skip and step.optional:
            answers.pop(step.key, None)
            answers[step.key] = None
        else:
            return await self._stale(update, context, index)
        await drop_buttons(update)
        return await self.advance(update, context, index)

    async def _stale(self, update: Update, context: CadreContext, index: int) -> int:
        await reply(update, context, "common/stale_button")
        return await self.ask(update, context, index)

    async def on_review(self, update: Update, context: CadreContext) -> int:
        """Edit one answer, or submit."""
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer()
        button, values = AnyOf(self.edit, self.submit).which(update)
        if button is self.edit and any(s.key == values[0] for s in self.flow.steps):
            self.draft(context)["editing"] = True
            return await self.ask(update, context, self.flow.index(values[0]))
        if button is self.submit:
            if self.flow.consent and not self.draft(context).get("consent"):
                # Never a file without both consents: a form position restored without its
                # draft (or a draft that lost them) asks for them again before anything goes.
                await drop_buttons(update)
                return await self._ask_consent(update, context)
            missing = self._missing(context)
            if missing:
                return await self.ask(update, context, self.flow.index(missing[0]))
            await drop_buttons(update)
            answers = self.answers(context)
            answers = dict(answers)
            answers["consent"] = bool(self.draft(context).get("consent"))
            await self.flow.submit(update, context, answers)
            self.forget(context)
            return ConversationHandler.END
        return await self.show_review(update, context)

    async def reprompt(self, update: Update, context: CadreContext) -> int:
        """A sticker, photo, voice… where text or a button is expected: ask again."""
        state = self._state_of(update, context)
        if state in (CONSENT, CONSENT_ID):
            # A consent is a button press: say so, and show the buttons again.
            await reply(update, context, "form/use_buttons")
            return await self._ask_again(update, context, state)
        await reply(update, context, "common/wrong_input")
        if state == REVIEW:
            return await self.show_review(update, context)
        return await self.ask(update, context, state)

    async def _ask_again(self, update: Update, context: CadreContext, state: int) -> int:
        """The consent question the person is at, with its buttons."""
        if state == CONSENT:
            return await self._ask_consent(update, context)
        return await self._ask_consent_id(update, context)

    async def busy(self, update: Update, context: CadreContext) -> int:
        """Another command in the middle of the form: say how to go on or leave."""
        state = self._state_of(update, context)
        await reply(update, context, "form/busy", flow=self.flow.name)
        if state == REVIEW:
            return await self.show_review(update, context)
        if state in (CONSENT, CONSENT_ID):
            return await self._ask_again(update, context, state)
        return await self.ask(update, context, state)

    async def cancel(self, update: Update, context: CadreContext) -> int:
        """Leave the form; the draft is dropped, nothing was stored."""
        self.forget(context)
        await reply(update, context, "common/cancelled", markup=ReplyKeyboardRemove())
        return ConversationHandler.END

    # -- wiring ----------------------------------------------------------------------------

    def _step_at(self, update: Update, context: CadreContext) -> int:
        """The question being answered (the handlers of a question's state ask for it)."""
        at = self._state_of(update, context)
        if 0 <= at < len(self.flow.steps):
            return at
        # The draft says review or consent while the conversation waits for a question.
        self.draft(context)["at"] = -1
        return self._state_of(update, context)

    def _state_of(self, update: Update, context: CadreContext) -> int:
        """Where the person is: kept in the draft, persisted with it, equal to the state.

        A stored index this form does not have (a draft from an older form, a damaged row)
        is clamped to the first unanswered question, so nobody is stuck on an error.
        """
        draft = self.draft(context)
        at = draft.get("at", 0)
        known = isinstance(at, int) and not isinstance(at, bool)
        if known and (0 <= at < len(self.flow.steps) or at in (REVIEW, CONSENT, CONSENT_ID)):
            return int(at)
        answers = draft.get("answers")
        if not isinstance(answers, dict):
            answers = draft["answers"] = {}
        clamped = next(
            (i for i, s in enumerate(self.flow.steps) if s.key not in answers),
            len(self.flow.steps) - 1,
        )
        draft["at"] = clamped
        return clamped

    def build(self) -> ConversationHandler[CadreContext]:
        anything = ~filters.COMMAND & PRIVATE
        states: dict[object, list[BaseHandler[Update, CadreContext, Any]]] = {}
        for index, step in enumerate(self.flow.steps):
            handlers: list[BaseHandler[Update, CadreContext, Any]] = [
                on(
                    AnyOf(self.choice, self.township, self.village, self.village_page, self.skip),
                    self.on_button,
                ),
                MessageHandler(filters.TEXT & anything, self.on_text),
            ]
            if step.kind == "phone":
                handlers.append(MessageHandler(filters.CONTACT & PRIVATE, self.on_contact))
            handlers.append(MessageHandler(anything, self.reprompt))
            states[index] = handlers
        states[CONSENT] = [
            on(self.consent, self.on_consent),
            MessageHandler(anything, self.reprompt),
        ]
        states[CONSENT_ID] = [
            on(self.consent_id, self.on_consent_id),
            MessageHandler(anything, self.reprompt),
        ]
        states[REVIEW] = [
            on(AnyOf(self.edit, self.submit), self.on_review),
            MessageHandler(anything, self.reprompt),
        ]
        return conversation(
            self.flow.name,
            [CommandHandler(self.flow.command, self.begin, filters=PRIVATE)],
            states,
            cancel=self.cancel,
            busy=self.busy,
        )
