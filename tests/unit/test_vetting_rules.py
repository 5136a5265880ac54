"""The nomination state machine and the joint vetting verdict."""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Mapping

import pytest

from storage.models import OPEN_NOMINATION
from storage.rules.vetting import (
    CLOSED,
    DEFAULT_DEPARTMENTS,
    TRANSITIONS,
    Channel,
    Decision,
    Event,
    IllegalTransition,
    Status,
    VettingOutcome,
    allowed_events,
    transition,
    vetting_outcome,
)

S, E, C = Status, Event, Channel
ALL = frozenset(Channel)

# The rules written out independently of the module: (from, event) → (to, channels allowed).
EXPECTED: dict[tuple[Status, Event], tuple[Status, frozenset[Channel]]] = {
    (S.NEW, E.CONTACT): (S.CONTACTED, frozenset({C.MASS})),
    (S.NEW, E.SEND_TO_VETTING): (S.VETTING, ALL),
    (S.CONTACTED, E.SEND_TO_VETTING): (S.VETTING, ALL),
    (S.NEW, E.DECLINE): (S.DECLINED, ALL),
    (S.CONTACTED, E.DECLINE): (S.DECLINED, ALL),
    (S.VETTING, E.VETTING_APPROVED): (S.IN_POOL, ALL),
    (S.VETTING, E.VETTING_REJECTED): (S.REJECTED, ALL),
    (S.IN_POOL, E.ADJUST_OUT): (S.ADJUSTED, ALL),
    (S.IN_POOL, E.ELECT): (S.ELECTED, ALL),
    (S.ADJUSTED, E.READMIT): (S.IN_POOL, ALL),
}

PRODUCT = list(itertools.product(Status, Event, Channel))
LEGAL = [
    (s, e, c, EXPECTED[s, e][0])
    for s, e, c in PRODUCT
    if (s, e) in EXPECTED and c in EXPECTED[s, e][1]
]
ILLEGAL = [
    (s, e, c) for s, e, c in PRODUCT if (s, e) not in EXPECTED or c not in EXPECTED[s, e][1]
]


def test_enumeration_covers_the_whole_product() -> None:
    assert len(PRODUCT) == 8 * 8 * 3
    assert len(LEGAL) == 9 * 3 + 1
    assert len(LEGAL) + len(ILLEGAL) == len(PRODUCT)


def test_stored_values_are_stable() -> None:
    # These strings live in the database; renaming one needs a migration.
    assert [s.value for s in Status] == [
        "new",
        "contacted",
        "vetting",
        "in_pool",
        "rejected",
        "declined",
        "adjusted",
        "elected",
    ]
    assert [c.value for c in Channel] == ["self", "mass", "organization"]
    assert [d.value for d in Decision] == ["approve", "reject"]
    assert [o.value for o in VettingOutcome] == ["pending", "approved", "rejected"]
    assert len(set(Event)) == 8


def test_exposed_table_matches_the_rules() -> None:
    assert dict(TRANSITIONS) == {key: to for key, (to, _) in EXPECTED.items()}


def test_exposed_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[S.REJECTED, E.SEND_TO_VETTING] = S.VETTING  # type: ignore[index]


@pytest.mark.parametrize(("status", "event", "channel", "target"), LEGAL)
def test_legal_transition(status: Status, event: Event, channel: Channel, target: Status) -> None:
    assert transition(status, event, channel=channel) is target


@pytest.mark.parametrize(("status", "event", "channel"), ILLEGAL)
def test_illegal_transition(status: Status, event: Event, channel: Channel) -> None:
    with pytest.raises(IllegalTransition) as exc:
        transition(status, event, channel=channel)
    assert (exc.value.status, exc.value.event, exc.value.channel) == (status, event, channel)
    assert exc.value.code == "vetting.illegal_transition"


@pytest.mark.parametrize("channel", [C.SELF, C.ORGANIZATION])
def test_only_mass_recommendations_are_contacted(channel: Channel) -> None:
    with pytest.raises(IllegalTransition):
        transition(S.NEW, E.CONTACT, channel=channel)
    assert E.CONTACT not in allowed_events(S.NEW, channel=channel)


@pytest.mark.parametrize(("status", "channel"), list(itertools.product(Status, Channel)))
def test_allowed_events_agree_with_transition(status: Status, channel: Channel) -> None:
    expected = tuple(
        e for e in Event if (status, e) in EXPECTED and channel in EXPECTED[status, e][1]
    )
    assert allowed_events(status, channel=channel) == expected


@pytest.mark.parametrize("status", [S.REJECTED, S.DECLINED, S.ELECTED])
def test_terminal_states_allow_nothing(status: Status) -> None:
    for channel in Channel:
        assert allowed_events(status, channel=channel) == ()


def test_adjusted_out_allows_readmission_only() -> None:
    for channel in Channel:
        assert allowed_events(S.ADJUSTED, channel=channel) == (E.READMIT,)


@pytest.mark.parametrize(
    ("channel", "events", "final"),
    [
        (
            C.MASS,
            [E.CONTACT, E.SEND_TO_VETTING, E.VETTING_APPROVED, E.ELECT],
            S.ELECTED,
        ),
        (C.MASS, [E.CONTACT, E.DECLINE], S.DECLINED),
        (C.SELF, [E.SEND_TO_VETTING, E.VETTING_REJECTED], S.REJECTED),
        (C.ORGANIZATION, [E.SEND_TO_VETTING, E.VETTING_APPROVED, E.ADJUST_OUT], S.ADJUSTED),
        (C.SELF, [E.DECLINE], S.DECLINED),
    ],
)
def test_life_cycles(channel: Channel, events: list[Event], final: Status) -> None:
    status = S.NEW
    for event in events:
        status = transition(status, event, channel=channel)
    assert status is final


def test_statuses_are_strings_for_storage() -> None:
    assert (
        transition(Status("new"), Event("send_to_vetting"), channel=Channel("self")) == "vetting"
    )


# ---------------------------------------------------------------------------------------------
# Joint vetting

A, R = Decision.APPROVE, Decision.REJECT
P, OK, NO = VettingOutcome.PENDING, VettingOutcome.APPROVED, VettingOutcome.REJECTED


@pytest.mark.parametrize(
    ("decisions", "outcome"),
    [
        ({}, P),
        ({"police": A}, P),
        ({"police": A, "discipline": A}, P),
        ({"police": A, "discipline": A, "judicial": A}, OK),
        # One veto settles it, whoever answers first and however many are still out.
        ({"judicial": R}, NO),
        ({"police": R}, NO),
        ({"police": A, "discipline": R}, NO),
        ({"police": A, "discipline": A, "judicial": R}, NO),
        ({"police": R, "discipline": R, "judicial": R}, NO),
        # Departments outside the configured list count for nothing.
        ({"tax": R}, P),
        ({"police": A, "discipline": A, "tax": R}, P),
        ({"police": A, "discipline": A, "judicial": A, "tax": R}, OK),
        ({"police": A, "discipline": A, "health": A}, P),
    ],
)
def test_vetting_outcome_default_departments(
    decisions: Mapping[str, Decision], outcome: VettingOutcome
) -> None:
    assert vetting_outcome(DEFAULT_DEPARTMENTS, decisions) is outcome


def test_reject_arriving_first_is_final_as_the_others_come_in() -> None:
    decisions: dict[str, Decision] = {}
    seen = []
    for dept, decision in [("judicial", R), ("police", A), ("discipline", A)]:
        decisions[dept] = decision
        seen.append(vetting_outcome(DEFAULT_DEPARTMENTS, decisions))
    assert seen == [NO, NO, NO]


def test_approvals_arriving_one_by_one() -> None:
    decisions: dict[str, Decision] = {}
    seen = []
    for dept in ("discipline", "police", "judicial"):
        decisions[dept] = A
        seen.append(vetting_outcome(DEFAULT_DEPARTMENTS, decisions))
    assert seen == [P, P, OK]


@pytest.mark.parametrize(
    ("departments", "decisions", "outcome"),
    [
        (["police"], {"police": A}, OK),
        (["police"], {"police": R}, NO),
        (["police", "police"], {"police": A}, OK),
        (
            ["police", "discipline", "judicial", "organization"],
            {d: A for d in DEFAULT_DEPARTMENTS},
            P,
        ),
        # Values read back from storage as plain strings.
        (("police", "discipline"), {"police": Decision("approve"), "discipline": A}, OK),
        (("police", "discipline"), {"police": Decision("reject")}, NO),
    ],
)
def test_vetting_outcome_configured_departments(
    departments: list[str], decisions: Mapping[str, Decision], outcome: VettingOutcome
) -> None:
    assert vetting_outcome(departments, decisions) is outcome


@pytest.mark.parametrize("departments", [[], ()])
def test_vetting_outcome_needs_departments(departments: list[str]) -> None:
    with pytest.raises(ValueError):
        vetting_outcome(departments, {"police": A})


def test_default_departments() -> None:
    assert DEFAULT_DEPARTMENTS == ("police", "discipline", "judicial")


def test_closed_statuses_let_a_person_nominate_again() -> None:
    """Rejected, declined and adjusted-out people may come back in a later round; a file in
    the pipeline, in the pool or elected still holds its person."""
    assert {S.REJECTED, S.DECLINED, S.ADJUSTED} == CLOSED
    # The partial unique indexes of the models and of migration 0015 say the same.
    migration = importlib.import_module("storage.migrations.versions.0015_rounds")
    expected = "status NOT IN ('adjusted', 'declined', 'rejected')"
    assert OPEN_NOMINATION == migration.OPEN == expected
