"""/nominate (self-nomination) and /recommend (mass; organization when an official uses it)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import BaseHandler

from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.reply import now, plan_notice, reply
from handlers.forms import FormEngine, FormFlow, Step, cipher
from storage import nominations, people, reminders
from storage.models import Role
from storage.nominations import Duplicate, NominationForm
from storage.rules.options import EDUCATIONS, ETHNICITIES, GENDERS, POLITICAL_STATUSES
from storage.rules.vetting import Channel


def _key_groups(context: CadreContext) -> tuple[str, ...]:
    return context.settings.key_group_codes


def _form(answers: dict[str, Any]) -> NominationForm:
    birth = answers.get("birth_date")
    return NominationForm(
        full_name=answers["full_name"],
        township_id=int(answers["township_id"]),
        village_id=int(answers["village_id"]) if answers.get("village_id") else None,
        key_group=answers["key_group"],
        gender=answers.get("gender"),
        birth_date=date.fromisoformat(birth) if birth else None,
        ethnicity=answers.get("ethnicity"),
        political_status=answers.get("political_status"),
        education=answers.get("education"),
        id_number=answers.get("id_number"),
        phone=answers.get("phone"),
        specialties=answers.get("specialties"),
        work_history=answers.get("work_history"),
        motivation=answers.get("motivation"),
        reason=answers.get("reason"),
    )


async def refuse_second_nomination(update: Update, context: CadreContext) -> bool:
    """One nomination per person: a second /nominate shows where the first one stands."""
    user = update.effective_user
    assert user is not None
    async with context.session() as session:
        account = await people.ensure_account(session, user.id, user.language_code)
        existing = await nominations.own_nominations(session, account.person_id)
    if existing:
        await reply(update, context, "form/already_nominated", status=existing[0].status)
        return False
    return True


async def tell_township(
    session: AsyncSession,
    context: CadreContext,
    nomination_id: int,
    township_id: int,
    channel: str,
) -> None:
    """Queue "a new nomination is waiting" for the township's officials, in this transaction."""
    recipients = await reminders.township_official_recipients(session, township_id)
    await plan_notice(
        session,
        context,
        recipients,
        "review/notice_new_nomination",
        key=f"nomination-new:{nomination_id}",
        subject=nomination_id,
        channel=channel,
    )


async def submit_self(update: Update, context: CadreContext, answers: dict[str, Any]) -> None:
    """Store a self-nomination; the person becomes a candidate."""
    user = update.effective_user
    assert user is not None
    try:
        async with context.session() as session:
            account = await people.ensure_account(session, user.id, user.language_code)
            nomination = await nominations.create_nomination(
                session,
                cipher(context),
                _form(answers),
                channel=Channel.SELF,
                submitted_by=account.person_id,
                person_id=account.person_id,
                now=now(),
                consent=bool(answers.get("consent")),
            )
            await tell_township(session, context, nomination.id, nomination.township_id, "self")
    except Duplicate:
        await reply(update, context, "form/duplicate", what="either")
        return
    await reply(update, context, "form/submitted", flow="nomination")


async def submit_recommendation(
    update: Update, context: CadreContext, answers: dict[str, Any]
) -> None:
    """Store a recommendation; an official's in their own scope is an organization one."""
    user = update.effective_user
    assert user is not None
    try:
        async with context.session() as session:
            account = await people.ensure_account(session, user.id, user.language_code)
            actor = await people.load_actor(session, user.id)
            township_id = int(answers["township_id"])
            official = actor is not None and (
                township_id in actor.township_ids(Role.TOWNSHIP_OFFICIAL)
                or actor.has(Role.COUNTY_OFFICIAL, Role.ADMIN)
            )
            channel = Channel.ORGANIZATION if official else Channel.MASS
            nomination = await nominations.create_nomination(
                session,
                cipher(context),
                _form(answers),
                channel=channel,
                submitted_by=account.person_id,
                person_id=None,
                now=now(),
            )
            await tell_township(session, context, nomination.id, township_id, channel.value)
    except Duplicate:
        await reply(update, context, "form/duplicate", what="either")
        return
    await reply(update, context, "form/submitted", flow="recommendation")


NOMINATION = FormFlow(
    name="nomination",
    command="nominate",
    prefix="nom",
    consent=True,
    guard=refuse_second_nomination,
    submit=submit_self,
    steps=(
        Step("full_name", "name"),
        Step("gender", "choice", choices=lambda _c: GENDERS),
        Step("id_number", "id"),
        Step("phone", "phone"),
        Step("ethnicity", "choice", choices=lambda _c: ETHNICITIES),
        Step("political_status", "choice", choices=lambda _c: POLITICAL_STATUSES),
        Step("education", "choice", choices=lambda _c: EDUCATIONS),
        Step("township_id", "township"),
        Step("village_id", "village"),
        Step("key_group", "choice", choices=_key_groups),
        Step("specialties", "text", max_len=200),
        Step("work_history", "text", max_len=500),
        Step("motivation", "text", max_len=500),
    ),
)

RECOMMENDATION = FormFlow(
    name="recommendation",
    command="recommend",
    prefix="rec",
    submit=submit_recommendation,
    steps=(
        Step("full_name", "name"),
        Step("township_id", "township"),
        Step("village_id", "village"),
        Step("phone", "phone", optional=True),
        Step("key_group", "choice", choices=_key_groups),
        Step("reason", "text", max_len=500),
    ),
)


# Anyone may nominate themselves or recommend someone: the public's two ways in.
COMMANDS: tuple[Command, ...] = (
    command(NOMINATION.command),
    command(RECOMMENDATION.command),
)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    return [FormEngine(NOMINATION).build(), FormEngine(RECOMMENDATION).build()]
