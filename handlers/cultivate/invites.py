"""A reserve cadre's invitations: their /trainings (what they are invited to), one
invitation (``tr:i:<invite>``) and their answer (``tr:r:<invite>:y|n``) until it starts.

Only the invitee may see or answer an invitation (storage checks the invite is theirs).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Literal

from handlers.chat.codec import ID, Button, choice
from handlers.chat.screen import Btn, Rows, Screen
from handlers.chat.screens import Act, screen
from handlers.cultivate.training_values import session_values, unless_closed
from storage import trainings

INVITATION = Button("tr", "i", ID)
RSVP = Button("tr", "r", ID, choice("y", "n"))
# The RSVP buttons as (label key, data): also queued with the invitation, labelled in the
# invitee's language there.
RSVP_LABELS = ("training.rsvp_yes", "training.rsvp_no")


def rsvp_buttons(invite_id: int) -> tuple[tuple[tuple[str, str], ...], ...]:
    yes, no = RSVP_LABELS
    return (((yes, RSVP.data(invite_id, "y")), (no, RSVP.data(invite_id, "n"))),)


def mine_screen(mine: list[trainings.MyTraining], tz: tzinfo, *, edit: bool = False) -> Screen:
    """The sessions a person is invited to; the ones to come open their invitation."""
    current = datetime.now(UTC)
    shown = [
        {
            **session_values(m, tz),
            "rsvp": m.rsvp,
            "attended": m.attended,
            "over": m.ends_at < current,
        }
        for m in mine
    ]
    rows: Rows = tuple(
        (Btn(m.title, INVITATION.data(m.invite_id)),) for m in mine if m.starts_at > current
    )
    return Screen("trainings/mine", {"items": shown}, rows, edit=edit)


def invitation_screen(act: Act, view: trainings.InviteView) -> Screen:
    """One invitation with its answer so far, and the RSVP buttons until it starts."""
    rows: Rows = ()
    if datetime.now(UTC) < view.training.starts_at:
        rows = tuple(
            tuple(Btn(act.label(key), data) for key, data in row)
            for row in rsvp_buttons(view.invite.id)
        )
    values = {"rsvp": view.invite.rsvp, **session_values(view.training, act.settings.tz)}
    return Screen("trainings/invitation", values, rows, edit=True)


@screen(button=INVITATION, actor=True)
async def show_invitation(act: Act) -> Screen:
    """One of the person's own invitations, with RSVP buttons until it starts."""
    async with act.session() as session:
        view = await trainings.own_invitation(session, act.actor, act.values[0])
    return invitation_screen(act, view)


@screen(button=RSVP, actor=True)
@unless_closed("trainings/rsvp_closed")
async def answer_invitation(act: Act) -> Screen:
    """The invitee's yes or no; only they may answer, and only until the session starts."""
    invite_id, answer = act.values
    rsvp: Literal["yes", "no"] = "yes" if answer == "y" else "no"
    async with act.session() as session:
        view = await trainings.answer_rsvp(
            session, act.actor, invite_id, rsvp, now=datetime.now(UTC)
        )
    return invitation_screen(act, view)


MENUS = (show_invitation, answer_invitation)
