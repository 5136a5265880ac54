"""/projects: the projects in an official's scope, or those a cadre leads; paged
(``prjs:p:<page>``), the scope read again on every page."""

from __future__ import annotations

from handlers.chat.codec import PAGE, Button
from handlers.chat.commands import command
from handlers.chat.screen import Pager, Screen
from handlers.chat.screens import Act, Refused, screen
from handlers.manage.common import page_in_scope, page_values
from storage import projects
from storage.models import OFFICIAL_ROLES

# In the officials' menu; lead cadres (who hold no role) may open it too, to see their own
# projects: the screen decides, deny by default.
COMMAND = command("projects", *OFFICIAL_ROLES)
PAGE_PRESS = Button("prjs", "p", PAGE)
PAGER = Pager(10)


@screen(command=COMMAND, button=PAGE_PRESS, needs=frozenset(), actor=True)
async def list_projects(act: Act) -> Screen:
    """One page of the list; a page past the end shows the first."""
    actor = act.maybe_actor
    page = int(act.values[0]) if act.pressed else 0
    page, items, total = await page_in_scope(act, actor, PAGER, page, projects.list_projects)
    official = actor is not None and actor.has(*OFFICIAL_ROLES)
    if not official and total == 0:
        # Neither an official nor a lead: deny by default, like every other list.
        raise Refused
    nav = PAGER.nav(page, total, PAGE_PRESS, prev=act.label("prev"), next=act.label("next"))
    values = {"items": items, "official": official, **page_values(PAGER, page, total)}
    return Screen("projects/list", values, (nav,) if nav else (), edit=act.pressed)


MENUS = (list_projects,)
