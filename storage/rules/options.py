"""The fixed choice lists of the nomination form, as codes; templates hold their labels."""

from __future__ import annotations

GENDERS = ("male", "female")
# Yinjiang-like counties: the largest local groups get a button, the rest choose "other".
ETHNICITIES = ("han", "tujia", "miao", "dong", "gelao", "other")
POLITICAL_STATUSES = ("party_member", "probationary", "league_member", "masses", "other_party")
EDUCATIONS = ("junior_or_below", "high_school", "college", "bachelor", "postgraduate")
# 大专 or higher, the article's education measure.
COLLEGE_OR_HIGHER = ("college", "bachelor", "postgraduate")


class CollegeShares:
    """The article's education shares, for any figures that count nominations and the pool
    with their 大专-or-higher parts (a mixin of the select-stage and summary dataclasses)."""

    __slots__ = ()
    nominations: int
    college_or_higher: int
    pool: int
    pool_college_or_higher: int

    @property
    def college_share(self) -> float | None:
        """Share of received nominations with 大专 or higher; None when there are none."""
        return self.college_or_higher / self.nominations if self.nominations else None

    @property
    def pool_college_share(self) -> float | None:
        """Share of the pool with 大专 or higher (the article's "over 70%")."""
        return self.pool_college_or_higher / self.pool if self.pool else None


# The seven key groups of the article; deployments may configure their own (KEY_GROUPS).
DEFAULT_KEY_GROUPS = (
    "wealth_leader",
    "veteran",
    "returning_graduate",
    "returning_entrepreneur",
    "coop_leader",
    "returning_migrant",
    "doctor_teacher",
)
