"""/grade: a cadre's own place on the ladder (grade, years, subsidy, next step); an official
names a nomination id (``/grade 12``) to see one in their scope."""

from __future__ import annotations

from handlers.chat.commands import command
from handlers.chat.screen import Screen
from handlers.chat.screens import Act, screen
from handlers.manage.kinds import OFFICIALS
from storage import grades
from storage.nominations import NotAllowed
from storage.rules.ladder import LadderPolicy

# Anyone may ask: a cadre sees their own, everybody else is told they are not on it.
COMMAND = command("grade")


def typed_id(raw: str) -> int | None:
    """A nomination id typed as an argument: ASCII digits, at most nine (below 2**31, so it
    never reaches the database as an error)."""
    if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 9 and int(raw) > 0:
        return int(raw)
    return None


@screen(command=COMMAND, actor=True)
async def show_grade(act: Act) -> Screen:
    """One's own grade, or (an official) the grade of the nomination named."""
    policy: LadderPolicy = act.chat.service("grade_policy")
    args = act.args.split()
    actor = act.maybe_actor
    view: grades.GradeView | None = None
    if args:
        wanted = typed_id(args[0]) if len(args) == 1 else None
        if wanted is None:
            return Screen("grades/usage")
        not_found = Screen("grades/not_found", {"nomination_id": wanted})
        if actor is None:
            return not_found
        try:
            async with act.session() as session:
                view = await grades.grade_for(session, actor, wanted, policy)
        except NotAllowed:
            # Out of scope reads as "not found" (it must not tell whether the file exists),
            # and is audited all the same.
            await act.chat.audit_denial(("nomination", wanted))
            return not_found
    elif actor is not None:
        async with act.session() as session:
            view = await grades.grade_of(session, actor.person_id, policy)
    if view is None:
        official = actor is not None and actor.has(*OFFICIALS)
        return Screen("grades/not_on_ladder", {"official": official})
    own = not args
    return Screen(
        "grades/show", {"view": view, "own": own, "bonus_yuan": policy.excellent_bonus_yuan}
    )


MENUS = (show_grade,)
