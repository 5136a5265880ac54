"""Who may make whose invite codes and manage whose roles: plain values, no SQL.

The county's side (a county official, an admin) hands out the county-level roles; a township
official only brings in mentors, and only for their own township (storage/staff.py adds that
condition to its queries). What one may invite one may also revoke; a county-level actor
also manages the mentors of every township, since the county is their scope.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.models import Role

# The codes each role may make, in the order the buttons show them.
INVITES: dict[Role, tuple[Role, ...]] = {
    # SPEC: a county official's code comes from an admin, and only an admin makes one.
    Role.ADMIN: (Role.COUNTY_OFFICIAL, Role.TOWNSHIP_OFFICIAL, Role.REVIEWER, Role.ADMIN),
    Role.COUNTY_OFFICIAL: (Role.TOWNSHIP_OFFICIAL, Role.REVIEWER, Role.ADMIN),
    Role.TOWNSHIP_OFFICIAL: (Role.MENTOR,),
}
# Roles whose holders manage staff county-wide (every township's, not one's own).
COUNTY_WIDE = frozenset({Role.ADMIN, Role.COUNTY_OFFICIAL})


def invitable(held: Iterable[Role]) -> tuple[Role, ...]:
    """The roles someone holding `held` may make codes for, each once, in button order."""
    found: list[Role] = []
    for role in held:
        found.extend(r for r in INVITES.get(role, ()) if r not in found)
    return tuple(sorted(found, key=list(Role).index))


def county_managed(held: Iterable[Role]) -> frozenset[Role]:
    """The roles whose grants someone holding `held` may revoke anywhere in the county
    (a township official's mentors are scoped to their township, not counted here)."""
    roles = frozenset(held)
    if not roles & COUNTY_WIDE:
        return frozenset()
    return frozenset(invitable(roles)) | {Role.MENTOR}
