"""A file's full phone, for the official who must call the person (issue 12): one tap on the
file (/dossier) or the review card, audited in storage, shown in a message of its own.

It is a screen, not a flow: the number is rendered into that one reply and kept nowhere else
(no draft, no conversation state), and every tap is a new read, audited again.
"""

from __future__ import annotations

from handlers.chat.codec import ID, Button
from handlers.chat.screen import Btn, Screen
from handlers.chat.screens import Act, screen
from storage import reveal
from storage.models import OFFICIAL_ROLES

REVEAL = Button("ph", ID)


def phone_buttons(act: Act, nomination_id: int, phone_masked: str | None) -> list[Btn]:
    """The button for a file that holds a phone (none otherwise), for a screen whose reader
    manages the file; storage checks that again on the tap."""
    if not phone_masked:
        return []
    return [Btn(act.label("reveal.phone"), REVEAL.data(nomination_id))]


@screen(button=REVEAL, needs=OFFICIAL_ROLES)
async def reveal_phone(act: Act) -> Screen:
    """Show the full phone of a file the official manages, once, as a new message."""
    (nomination_id,) = act.values
    async with act.session() as session:
        shown = await reveal.reveal_phone(
            session, act.actor, nomination_id, cipher=act.chat.service("cipher"), via="button"
        )
    values = {"nomination_id": shown.nomination_id, "full_name": shown.full_name}
    return Screen("reveal/phone", {**values, "phone": shown.phone})


MENUS = (reveal_phone,)
