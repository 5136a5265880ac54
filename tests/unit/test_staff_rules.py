"""Who may make whose invite codes and manage whose roles (storage/rules/staff.py)."""

from __future__ import annotations

from storage.models import Role
from storage.rules.staff import county_managed, invitable


def test_each_role_hands_out_what_the_spec_says() -> None:
    assert invitable([Role.COUNTY_OFFICIAL]) == (
        Role.TOWNSHIP_OFFICIAL,
        Role.REVIEWER,
        Role.ADMIN,
    )
    assert invitable([Role.ADMIN])[:2] == (Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL)
    assert invitable([Role.TOWNSHIP_OFFICIAL]) == (Role.MENTOR,)
    for nobody in ([], [Role.MENTOR], [Role.REVIEWER]):
        assert invitable(nobody) == ()


def test_several_roles_hand_out_each_role_once_in_button_order() -> None:
    both = invitable([Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN])
    assert both == (
        Role.MENTOR,
        Role.TOWNSHIP_OFFICIAL,
        Role.COUNTY_OFFICIAL,
        Role.REVIEWER,
        Role.ADMIN,
    )


def test_the_county_side_manages_every_township_mentor_a_township_none_county_wide() -> None:
    assert county_managed([Role.COUNTY_OFFICIAL]) == {
        Role.TOWNSHIP_OFFICIAL,
        Role.REVIEWER,
        Role.ADMIN,
        Role.MENTOR,
    }
    assert Role.COUNTY_OFFICIAL in county_managed([Role.ADMIN])
    assert county_managed([Role.TOWNSHIP_OFFICIAL]) == frozenset()
    assert county_managed([Role.REVIEWER, Role.MENTOR]) == frozenset()
