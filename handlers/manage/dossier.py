"""/dossier N: one person's file, read with scope checked in SQL and audited, its
sections from every stage, and its export as a workbook.

`/dossier` without a number shows one's own file; the pool's name buttons (``pl:o:<id>``) open
a file, its "export" button (``pl:e:<id>``) sends it. Nobody needs a role to ask: the storage
read decides (an official in scope, a reviewer of the file, the person themselves).
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import ID, Button
from handlers.chat.commands import command
from handlers.chat.flow import Chat
from handlers.chat.screen import Attachment, Btn, Screen, rows_of
from handlers.chat.screens import Act, Refused, screen
from handlers.manage.adjust import ADJUST
from handlers.manage.readmit import READMIT
from handlers.oversight.export import SPOOL_BYTES, workbook_labels
from storage import (
    export,
    figures,
    grades,
    mentoring,
    nominations,
    outcomes,
    posts,
    projects,
    trainings,
)
from storage.mentoring import opened_text
from storage.models import OFFICIAL_ROLES
from storage.nominations import Dossier, NotAllowed
from storage.people import Actor
from storage.rules.vetting import Status

COMMAND = command("dossier")
OPEN = Button("pl", "o", ID)
EXPORT = Button("pl", "e", ID)
# Nine digits stay below 2**31: a typed huge number must not reach an INTEGER column.
ID_RE = re.compile(r"[0-9]{1,9}")


def _when(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def dossier_values(chat: Chat, dossier: Dossier) -> dict[str, Any]:
    """What the file template shows. Reasons and notes only reach officials and reviewers."""
    n = dossier.nomination
    tz = chat.settings.tz
    cipher = chat.service("cipher")
    notes = dossier.show_reviews
    reasons = dossier.show_reasons
    person = {
        "id": n.id,
        "name": dossier.full_name,
        "status": n.status,
        "gender": n.gender,
        "birth_date": n.birth_date.isoformat() if n.birth_date else None,
        # Masked when stored; the full numbers are never decrypted for display.
        "id_masked": n.id_number_masked,
        "phone_masked": n.phone_masked,
        "ethnicity": n.ethnicity,
        "political_status": n.political_status,
        "education": n.education,
        "township": dossier.township,
        "village": dossier.village,
        "key_group": n.key_group,
        "channel": n.channel,
        "specialties": n.specialties,
        "work_history": n.work_history,
        "motivation": n.motivation,
        "reason": n.reason if reasons else None,
    }
    history = [
        {
            "at": _when(change.at, tz),
            # "submit:mass" → "submit": the channel is shown once, above.
            "event": change.event.split(":", 1)[0],
            "status": change.to_status,
            "reason": opened_text(cipher, change.reason, change.reason_enc) if reasons else None,
            # Who made it (officials only): a name, or None if not shown.
            "by": dossier.actors.get(change.actor_person_id or 0),
        }
        for change in dossier.history
    ]
    reviews = [
        {
            "department": review.department,
            "decision": review.decision,
            "at": _when(review.decided_at, tz) if review.decided_at else None,
            "note": opened_text(cipher, review.note, review.note_enc),
        }
        for review in (dossier.reviews if notes else [])
    ]
    return {"person": person, "history": history, "reviews": reviews, "show_notes": notes}


async def sections(
    session: AsyncSession, chat: Chat, actor: Actor, nomination_id: int
) -> dict[str, Any]:
    """The cultivate/manage/use parts of the file; the dossier read before checked scope."""
    tz = chat.settings.tz
    return {
        "mentoring": await mentoring.dossier_section(
            session, nomination_id, cipher=chat.service("cipher"), tz=tz
        ),
        "grade_section": await grades.dossier_section(
            session, actor, nomination_id, chat.service("grade_policy")
        ),
        "post_section": await posts.dossier_section(
            session, actor, nomination_id, today=datetime.now(tz).date()
        ),
        "training_section": await trainings.dossier_section(session, nomination_id, tz=tz),
        "project_section": await projects.dossier_section(session, nomination_id),
        "outcome_section": await outcomes.dossier_section(session, nomination_id),
    }


async def file_of(act: Act, nomination_id: int | None) -> Screen:
    """One file on screen, with "export" for staff, and "adjust" (in the pool) or "readmit"
    (adjusted out) where it is theirs to do."""
    actor = act.maybe_actor
    instead = "common/forbidden"
    async with act.session() as session:
        if nomination_id is None:
            # No id: one's own file. Staff without one are shown how to ask for a file.
            own = await nominations.own_nominations(session, actor.person_id) if actor else []
            nomination_id = max((n.id for n in own), default=None)
            staff = actor is not None and (actor.has(*OFFICIAL_ROLES) or bool(actor.departments()))
            instead = "dossier/usage" if staff else "dossier/none"
        if actor is not None and nomination_id is not None:
            try:
                dossier = await nominations.load_dossier(
                    session, actor, nomination_id, now=datetime.now(UTC)
                )
            except NotAllowed:
                if await nominations.erased_in_scope(session, actor, nomination_id):
                    # Theirs to manage, erased on request: say so, it is no refusal.
                    return Screen("dossier/erased", {"nomination_id": nomination_id})
            else:
                values = dossier_values(act.chat, dossier)
                values.update(await sections(session, act.chat, actor, nomination_id))
                managed = await figures.managed_nomination(session, actor, nomination_id)
                status = managed.status if managed is not None else None
                buttons = []
                # Staff who read the file may take it away as a workbook; a candidate reads
                # their own file on screen.
                if dossier.show_reviews:
                    buttons.append(Btn(act.label("dossier.export"), EXPORT.data(nomination_id)))
                if status == Status.IN_POOL.value:
                    buttons.append(Btn(act.label("dossier.adjust"), ADJUST.data(nomination_id)))
                elif status == Status.ADJUSTED.value:
                    buttons.append(Btn(act.label("dossier.readmit"), READMIT.data(nomination_id)))
                return Screen("dossier/show", values, rows_of(buttons, 1))
    if instead == "common/forbidden":
        raise Refused(("nomination", nomination_id) if nomination_id is not None else None)
    return Screen(instead, {"nomination_id": nomination_id})


@screen(command=COMMAND, actor=True)
async def show_dossier(act: Act) -> Screen:
    """Show one person's file: `/dossier ID`, or one's own file without an ID."""
    args = act.args.split()
    if not args:
        return await file_of(act, None)
    raw = unicodedata.normalize("NFKC", args[0]).lstrip("#")
    if len(args) > 1 or not ID_RE.fullmatch(raw):
        return Screen("dossier/usage")
    return await file_of(act, int(raw))


@screen(button=OPEN, actor=True)
async def open_dossier(act: Act) -> Screen:
    """Open the file behind a pool button."""
    return await file_of(act, int(act.values[0]))


@screen(button=EXPORT, actor=True)
async def export_dossier(act: Act) -> Screen:
    """Send one person's file as a workbook; the read re-checks scope and is audited."""
    (nomination_id,) = act.values
    tz = act.settings.tz
    locale = act.chat.locale
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
        async with act.session() as session:
            written = await export.write_dossier_workbook(
                session,
                act.actor,
                nomination_id,
                buffer,
                locale_labels=workbook_labels(act.chat.service("jinja"), locale),
                tz=tz,
                cipher=act.chat.service("cipher"),
                grade_policy=act.chat.service("grade_policy"),
            )
        buffer.seek(0)
        # As bytes: the renderer sends a file by its content (a spooled file has no name).
        data = buffer.read()
    values = {
        "full_name": written.full_name,
        "nomination_id": nomination_id,
        "day": datetime.now(tz).date().isoformat(),
    }
    attachment = Attachment("document", data, f"dossier-{nomination_id}.xlsx")
    return Screen("dossier/export_caption", values, attachment=attachment)


MENUS = (show_dossier, open_dossier, export_dossier)
