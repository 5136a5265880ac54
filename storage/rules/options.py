"""The fixed choice lists of the nomination form, as codes; templates hold their labels."""

from __future__ import annotations

GENDERS = ("male", "female")
# Yinjiang-like counties: the largest local groups get a button, the rest choose "other".
ETHNICITIES = ("han", "tujia", "miao", "dong", "gelao", "other")
POLITICAL_STATUSES = ("party_member", "probationary", "league_member", "masses", "other_party")
EDUCATIONS = ("junior_or_below", "high_school", "college", "bachelor", "postgraduate")
# 大专 or higher, the article's education measure.
COLLEGE_OR_HIGHER = ("college", "bachelor", "postgraduate")
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
