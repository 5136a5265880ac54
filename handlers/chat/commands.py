"""What a command is, as a flow or a menu declares it: its word, its one line, who may run it.

The "/" menu Telegram shows (setMyCommands, per role and language), `/help` and the role a
handler checks are all read from these declarations, so the three cannot disagree.
No import from `telegram`: a web page or another messenger reads the same declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import Role


@dataclass(frozen=True, slots=True)
class Command:
    """One command. `needs` empty: anyone (candidates, recommenders, the public); else any
    one of these roles. `summary` is the label key of its one-line description
    (`templates/<locale>/_labels.html.j2`, ``cmd.<name>`` by default)."""

    name: str
    needs: frozenset[Role] = frozenset()
    summary: str = ""
    # Shown in the menu and /help; False for commands that only make sense from a link or a
    # message (e.g. /start CODE is in the menu as /start, /cancel only mid-flow).
    listed: bool = True

    @property
    def summary_key(self) -> str:
        return self.summary or f"cmd.{self.name}"

    def allowed(self, roles: frozenset[Role] | set[Role]) -> bool:
        return not self.needs or bool(self.needs & set(roles))


def command(name: str, *needs: Role, summary: str = "", listed: bool = True) -> Command:
    return Command(name, frozenset(needs), summary, listed)
