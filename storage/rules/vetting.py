"""The nomination life cycle and the joint vetting verdict, as plain functions.

A nomination enters as NEW through one of three channels, may be CONTACTED (mass
recommendations only), is sent to joint vetting by the departments, and ends in the pool or
out of it. Terminal states: REJECTED, DECLINED, ADJUSTED, ELECTED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType


class Status(StrEnum):
    NEW = "new"
    # A mass recommendation whose nominee the township has reached and talked to.
    CONTACTED = "contacted"
    VETTING = "vetting"
    IN_POOL = "in_pool"
    # Failed joint vetting.
    REJECTED = "rejected"
    # Turned down by the township before vetting.
    DECLINED = "declined"
    # Taken out of the pool (不适宜人选及时调整).
    ADJUSTED = "adjusted"
    # Elected into the village two committees.
    ELECTED = "elected"


class Event(StrEnum):
    CONTACT = "contact"
    SEND_TO_VETTING = "send_to_vetting"
    DECLINE = "decline"
    VETTING_APPROVED = "vetting_approved"
    VETTING_REJECTED = "vetting_rejected"
    ADJUST_OUT = "adjust_out"
    ELECT = "elect"
    # A township official takes an adjusted-out person back into the pool, with a reason.
    READMIT = "readmit"


class Channel(StrEnum):
    SELF = "self"  # 自荐
    MASS = "mass"  # 群众举荐
    ORGANIZATION = "organization"  # 组织推荐


ALL_CHANNELS: frozenset[Channel] = frozenset(Channel)

# (from, event) → to. Read-only so that no caller can loosen the rules at runtime.
TRANSITIONS: Mapping[tuple[Status, Event], Status] = MappingProxyType(
    {
        (Status.NEW, Event.CONTACT): Status.CONTACTED,
        (Status.NEW, Event.SEND_TO_VETTING): Status.VETTING,
        (Status.CONTACTED, Event.SEND_TO_VETTING): Status.VETTING,
        (Status.NEW, Event.DECLINE): Status.DECLINED,
        (Status.CONTACTED, Event.DECLINE): Status.DECLINED,
        (Status.VETTING, Event.VETTING_APPROVED): Status.IN_POOL,
        (Status.VETTING, Event.VETTING_REJECTED): Status.REJECTED,
        (Status.IN_POOL, Event.ADJUST_OUT): Status.ADJUSTED,
        (Status.IN_POOL, Event.ELECT): Status.ELECTED,
        (Status.ADJUSTED, Event.READMIT): Status.IN_POOL,
    }
)

# A nomination in one of these no longer holds its person: they may nominate again in a
# later round (storage/rounds.py). Everyone else's nomination is open. Rejected and declined
# people come back through a new nomination (and vetting again), not by readmission.
CLOSED: frozenset[Status] = frozenset({Status.REJECTED, Status.DECLINED, Status.ADJUSTED})

# Transitions open to some channels only; any pair not listed is open to all of them. A self-
# or organization nominee already knows about their nomination, so there is nobody to contact.
CHANNELS: Mapping[tuple[Status, Event], frozenset[Channel]] = MappingProxyType(
    {(Status.NEW, Event.CONTACT): frozenset({Channel.MASS})}
)


class IllegalTransition(Exception):
    """`event` cannot happen to a nomination in `status` that came in through `channel`."""

    code = "vetting.illegal_transition"

    def __init__(self, status: Status, event: Event, channel: Channel) -> None:
        super().__init__(f"{event} is not allowed from {status} for channel {channel}")
        self.status = status
        self.event = event
        self.channel = channel


def transition(status: Status, event: Event, *, channel: Channel) -> Status:
    """The status after `event`, or IllegalTransition."""
    target = TRANSITIONS.get((status, event))
    if target is None or channel not in CHANNELS.get((status, event), ALL_CHANNELS):
        raise IllegalTransition(status, event, channel)
    return target


def allowed_events(status: Status, *, channel: Channel) -> tuple[Event, ...]:
    """Events that `transition` accepts here, in `Event` order (e.g. to offer as buttons)."""
    return tuple(
        event
        for event in Event
        if (status, event) in TRANSITIONS
        and channel in CHANNELS.get((status, event), ALL_CHANNELS)
    )


# ---------------------------------------------------------------------------------------------
# Joint vetting (联审): every configured department gives a decision.

DEFAULT_DEPARTMENTS: tuple[str, ...] = ("police", "discipline", "judicial")


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class VettingOutcome(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def vetting_outcome(
    departments: Sequence[str], decisions: Mapping[str, Decision]
) -> VettingOutcome:
    """The joint verdict so far.

    One REJECT from a configured department settles it at once (one veto is disqualifying, so
    waiting for the others would only delay telling the township). APPROVED needs an APPROVE
    from every configured department. Decisions from departments not configured are ignored,
    e.g. after the county changes its department list mid-vetting.
    """
    if not departments:
        raise ValueError("no vetting departments configured")
    relevant = [decisions.get(dept) for dept in dict.fromkeys(departments)]
    if Decision.REJECT in relevant:
        return VettingOutcome.REJECTED
    if all(decision == Decision.APPROVE for decision in relevant):
        return VettingOutcome.APPROVED
    return VettingOutcome.PENDING
