"""/projects: the projects in an official's scope, or those a cadre leads; paged
(``prjs:p:<page>``), the scope read again on every page."""

from __future__ import annotations

from handlers.chat.codec import PAGE, Button
from handlers.chat.commands import command
from handlers.chat.paged import Pages, page_in_scope
from handlers.chat.screen import Pager, Screen
from handlers.chat.screens import Act, Refused, screen
from storage import projects
from storage.models import OFFICIAL_ROLES

# In the officials' menu; lead cadres (who hold no role) may open it too, to see their own
# projects: the screen decides, deny by default.
COMMAND = command("projects", *OFFICIAL_ROLES)
PAGE_PRESS = Button("prjs", "p", PAGE)
PAGER = Pager(10)
LIST = Pages("projects/list", PAGER, PAGE_PRESS)


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
    return LIST.screen(act, (), page, total, edit=act.pressed, items=items, official=official)


MENUS = (list_projects,)
