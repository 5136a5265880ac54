"""Deny by default: every role × every action that reads or changes a nomination.

Township A's nomination ("甲青山") came in as a mass recommendation, passed joint vetting by
police and discipline only (so the judicial reviewer never had it) and is in the pool.
Township B's ("乙木黄") is the candidate's own self-nomination, still new. A denied action
must answer with the forbidden text and show no name; the audit log must have a
dossier.read row for exactly the allowed reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from storage import erasure
from storage.models import AuditLog, Role
from storage.rules.vetting import Channel
from templates import build_environment, render
from tests.support.county import County, build_county, grant, nominate
from tests.support.harness import BotHarness

NAME_A = "甲青山"
NAME_B = "乙木黄"
FORBIDDEN = render(build_environment(), "zh_CN", "common/forbidden")


@dataclass(frozen=True, slots=True)
class Who:
    telegram_id: int
    role: Role | None
    township: str | None = None
    department: str | None = None


ROLES = {
    "none": Who(8001, None),
    "candidate": Who(8002, None),
    "recommender": Who(8003, None),
    "mentor": Who(8004, Role.MENTOR, "青山镇"),
    "township_a": Who(8005, Role.TOWNSHIP_OFFICIAL, "青山镇"),
    "township_b": Who(8006, Role.TOWNSHIP_OFFICIAL, "木黄镇"),
    "county": Who(8007, Role.COUNTY_OFFICIAL),
    "police": Who(8008, Role.REVIEWER, department="police"),
    "judicial": Who(8009, Role.REVIEWER, department="judicial"),
    "admin": Who(8010, Role.ADMIN),
}

ACTIONS = ("pool", "dossier_a", "dossier_b", "open_a", "adjust_a", "review", "vetting")
READS = {"dossier_a", "dossier_b", "open_a"}

# Allowed actions per role; everything not listed must be refused.
ALLOWED: dict[str, set[str]] = {
    "none": set(),
    "candidate": {"dossier_b"},
    "recommender": set(),  # recommended A, yet may not read A's file
    "mentor": set(),  # no pairing: a mentor reads mentees' files only
    "township_a": {"pool", "dossier_a", "open_a", "adjust_a", "review"},
    "township_b": {"pool", "dossier_b", "review"},
    "county": {"pool", "dossier_a", "dossier_b", "open_a", "adjust_a", "review"},
    # A passed police vetting and is in the pool: a reviewer's reach ends with the vetting.
    "police": {"vetting"},
    "judicial": {"vetting"},  # an empty queue is still their queue
    "admin": {"pool", "dossier_a", "dossier_b", "open_a", "adjust_a", "review"},
}

CASES = [
    pytest.param(role, action, action in ALLOWED[role], id=f"{role}-{action}")
    for role in ROLES
    for action in ACTIONS
]


async def _setup(bot: BotHarness) -> tuple[County, dict[str, int]]:
    county = await build_county(bot)
    persons: dict[str, int] = {}
    for key, who in ROLES.items():
        township = county.towns[who.township] if who.township else None
        persons[key] = await grant(
            bot, who.telegram_id, who.role, township_id=township, department=who.department
        )
    await nominate(
        county,
        NAME_A,
        "青山镇",
        channel=Channel.MASS,
        submitted_by=persons["recommender"],
        departments=("police", "discipline"),
    )
    await nominate(
        county,
        NAME_B,
        "木黄镇",
        to="new",
        person_id=persons["candidate"],
        submitted_by=persons["candidate"],
    )
    return county, persons


async def _reads(bot: BotHarness) -> list[tuple[int | None, int | None]]:
    async with bot.database.sessionmaker() as session:
        rows = await session.execute(
            select(AuditLog.actor_person_id, AuditLog.subject_id).where(
                AuditLog.action == "dossier.read"
            )
        )
        return [(actor, subject) for actor, subject in rows.all()]


async def _denials(bot: BotHarness) -> list[tuple[int | None, str, int | None]]:
    async with bot.database.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.action == "denied").order_by(AuditLog.id)
        )
        return [(row.actor_telegram_id, row.detail["attempted"], row.subject_id) for row in rows]


@pytest.mark.parametrize(("role", "action", "allowed"), CASES)
async def test_access_table(harness: BotHarness, role: str, action: str, allowed: bool) -> None:
    county, persons = await _setup(harness)
    who = ROLES[role]
    a, b = county.ids[NAME_A], county.ids[NAME_B]
    user = who.telegram_id
    commands = {
        "pool": "/pool",
        "dossier_a": f"/dossier {a}",
        "dossier_b": f"/dossier {b}",
        "review": "/review",
        "vetting": "/vetting",
    }
    buttons = {"open_a": f"pl:o:{a}", "adjust_a": f"pl:a:{a}"}
    before = await _reads(harness)
    denied_before = await _denials(harness)
    if action in commands:
        replies = await harness.send(user, commands[action])
    else:
        replies = await harness.press(user, buttons[action])
    texts = [r.text for r in replies]
    assert texts, "no answer at all"
    new_reads = (await _reads(harness))[len(before) :]

    if not allowed:
        assert texts == [FORBIDDEN]
        assert all(NAME_A not in t and NAME_B not in t for t in texts)
        assert all(not r.buttons for r in replies)
        assert new_reads == []
        # Each refusal leaves one audit row: which account tried what, on which file.
        denials = (await _denials(harness))[len(denied_before) :]
        assert len(denials) == 1, denials
        (account, attempted, subject_id) = denials[0]
        assert account == user
        if action in commands:
            assert attempted == f"command:{commands[action].split()[0]}"
        else:
            assert attempted == f"button:{buttons[action].rsplit(':', 1)[0]}"
        if action in {"dossier_a", "open_a", "adjust_a"}:
            assert subject_id == a
        elif action == "dossier_b":
            assert subject_id == b
        return
    assert await _denials(harness) == denied_before

    assert FORBIDDEN not in texts
    if action in READS:
        subject = a if action != "dossier_b" else b
        name = NAME_A if subject == a else NAME_B
        assert name in texts[0]
        assert new_reads == [(persons[role], subject)]
    else:
        assert new_reads == []
    if action == "pool":
        # The pool list shows A's in-pool person only where A is in scope.
        assert (NAME_A in texts[0]) == (role in {"township_a", "county", "admin"})
        assert NAME_B not in texts[0]  # new, not in the pool
    if action == "adjust_a":
        assert NAME_A in texts[0] and "调整原因" in texts[0]
    if action == "review":
        # The review queue holds new nominations: B's for B's officials and county scope.
        assert (NAME_B in texts[0]) == (role in {"township_b", "county", "admin"})
        assert NAME_A not in texts[0]
    if action == "vetting":
        assert NAME_A not in texts[0] and NAME_B not in texts[0]


def test_table_covers_every_role_and_action() -> None:
    assert set(ALLOWED) == set(ROLES)
    assert all(allowed <= set(ACTIONS) for allowed in ALLOWED.values())
    assert len(CASES) == len(ROLES) * len(ACTIONS)


async def test_a_refusal_answered_as_not_found_is_audited_too(harness: BotHarness) -> None:
    """`/grade N` for another township's cadre answers "not found" (it does not tell whether
    the file exists), and the attempt is in the audit log all the same."""
    county, _ = await _setup(harness)
    a = county.ids[NAME_A]
    user = ROLES["township_b"].telegram_id
    denied_before = await _denials(harness)
    replies = await harness.send(user, f"/grade {a}")
    assert replies and all(NAME_A not in r.text for r in replies)
    assert (await _denials(harness))[len(denied_before) :] == [(user, "command:/grade", a)]
    # In scope, the same look is no refusal.
    replies = await harness.send(ROLES["township_a"].telegram_id, f"/grade {a}")
    assert NAME_A in replies[0].text
    assert len(await _denials(harness)) == len(denied_before) + 1


async def test_an_erased_file_is_said_to_be_erased_to_its_officials_not_refused(
    harness: BotHarness,
) -> None:
    """Found from outside: an official asking for their township's erased file was told
    "not allowed", and the audit log called it a refusal."""
    county, _ = await _setup(harness)
    a = county.ids[NAME_A]
    async with harness.database.sessionmaker.begin() as session:
        owner = await erasure.person_of_nomination(session, a)
        assert owner is not None
        await erasure.erase_person(session, owner, actor_person_id=None)
    denied_before = await _denials(harness)
    (answer,) = await harness.send(ROLES["township_a"].telegram_id, f"/dossier {a}")
    assert "已应本人要求删除" in answer.text and NAME_A not in answer.text
    assert await _denials(harness) == denied_before
    # Another township's official learns nothing, and the attempt is a refusal.
    (refused,) = await harness.send(ROLES["township_b"].telegram_id, f"/dossier {a}")
    assert refused.text == FORBIDDEN
    assert len(await _denials(harness)) == len(denied_before) + 1
