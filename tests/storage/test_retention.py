"""Retention (issue 11, finding 8): the daily purge deletes what the consent text says is past
its time, and nothing else, on both engines, with a clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from bot import planners
from storage import erasure, geo, nominations, outbox, retention
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import (
    AuditLog,
    ConversationState,
    ErasureEvent,
    Nomination,
    NominationTally,
    OutboxMessage,
    Person,
    QuarantinedState,
    UserData,
)
from storage.nominations import NominationForm
from storage.rules.vetting import Channel
from tests.conftest import make_settings

NOW = datetime(2030, 6, 15, 2, 0, tzinfo=UTC)
POLICY = retention.Policy(file_years=3, rejected_days=365, draft_days=30, outbox_days=90)
DAY = timedelta(days=1)
THREE_YEARS = NOW - datetime(2027, 6, 15, 2, 0, tzinfo=UTC)


async def _seed(db: Database) -> dict[str, int]:
    """One file per case, its status and the moment of its last move; drafts; messages."""
    cipher = DataCipher(Fernet.generate_key().decode())
    cases = {
        "left_long_ago": ("adjusted", NOW - THREE_YEARS - DAY),
        "left_recently": ("adjusted", NOW - THREE_YEARS + DAY),
        "declined_long_ago": ("declined", NOW - 366 * DAY),
        "rejected_long_ago": ("rejected", NOW - 400 * DAY),
        "rejected_recently": ("rejected", NOW - 10 * DAY),
        "in_pool_for_years": ("in_pool", NOW - 3000 * DAY),
        "elected_long_ago": ("elected", NOW - 3000 * DAY),
    }
    ids: dict[str, int] = {}
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        for number, (case, (status, moved)) in enumerate(cases.items()):
            created = await nominations.create_nomination(
                session,
                cipher,
                NominationForm(
                    full_name=f"档案{number}",
                    township_id=township.id,
                    key_group="veteran",
                    phone=f"1391234{number:04d}",
                    motivation=f"动机文字{number}",
                ),
                channel=Channel.MASS,
                submitted_by=None,
                person_id=None,
                now=moved - 30 * DAY,
            )
            await session.flush()
            await session.execute(
                update(Nomination)
                .where(Nomination.id == created.id)
                .values(status=status, status_changed_at=moved)
            )
            ids[case] = created.id
        for user, touched in ((8001, NOW - 31 * DAY), (8002, NOW - 29 * DAY)):
            session.add(UserData(user_id=user, payload=b"x", updated_at=touched))
            session.add(ConversationState(name="nominate", key=json.dumps([user, user]), state={}))
            session.add(
                QuarantinedState(
                    kind="user_data",
                    user_id=user,
                    reason="undecryptable",
                    payload=b"x",
                    quarantined_at=touched,
                )
            )
        # Only settings (the /lang choice), no form open: kept however old.
        session.add(UserData(user_id=8003, payload=b"x", updated_at=NOW - 400 * DAY))
        for key, status, created_at in (
            ("old-sent", "sent", NOW - 91 * DAY),
            ("old-failed", "failed", NOW - 200 * DAY),
            ("new-sent", "sent", NOW - 89 * DAY),
            ("old-pending", "pending", NOW - 200 * DAY),
        ):
            await outbox.plan(session, key=key, chat_id=1, kind="k", parts=[f"{key} 正文"])
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.key == key)
                .values(status=status, created_at=created_at)
            )
        await outbox.plan(
            session,
            key="about-old-file",
            chat_id=2,
            kind="k",
            parts=["关于档案0"],
            subject=ids["left_long_ago"],
        )
    return ids


async def _outbox_ids(db: Database, *keys: str) -> list[int]:
    async with db.sessionmaker() as session:
        return sorted(
            await session.scalars(select(OutboxMessage.id).where(OutboxMessage.key.in_(keys)))
        )


async def test_the_purge_deletes_what_is_past_its_time_and_nothing_else(db: Database) -> None:
    ids = await _seed(db)
    async with db.sessionmaker() as session:
        due = await retention.plan(session, POLICY, NOW)
        tallies_before = sorted(
            (await session.execute(select(NominationTally.status, NominationTally.n))).all()
        )
    assert due.files == [ids["left_long_ago"]]
    assert due.rejected == sorted([ids["declined_long_ago"], ids["rejected_long_ago"]])
    assert due.drafts == [8001]
    assert due.outbox == await _outbox_ids(db, "old-sent", "old-failed")
    assert len(due.quarantined) == 1

    async with db.sessionmaker.begin() as session:
        done = await retention.purge(session, POLICY, NOW, day=20300615)
    assert done.counts() == {
        "files": 1,
        "rejected": 2,
        "drafts": 1,
        "outbox": 2,
        "quarantined": 1,
    }
    async with db.sessionmaker() as session:
        # The unreadable draft set aside at start-up goes on the drafts' schedule too.
        assert list(await session.scalars(select(QuarantinedState.user_id))) == [8002]

    async with db.sessionmaker() as session:
        rows = {n.id: n for n in await session.scalars(select(Nomination).order_by(Nomination.id))}
        purged = {ids[c] for c in ("left_long_ago", "declined_long_ago", "rejected_long_ago")}
        for nomination_id, row in rows.items():
            gone = nomination_id in purged
            assert (row.erased_at is not None) is gone, nomination_id
            assert (row.phone_hash is None) is gone
            assert (row.motivation is None) is gone
        names = set(await session.scalars(select(Person.full_name)))
        assert names == {"档案1", "档案4", "档案5", "档案6", None}
        # The county's counts stay (the rows are anonymous, not gone).
        assert (
            sorted(
                (await session.execute(select(NominationTally.status, NominationTally.n))).all()
            )
            == tallies_before
        )
        assert sorted(await session.scalars(select(UserData.user_id))) == [8002, 8003]
        assert list(await session.scalars(select(ConversationState.key))) == ["[8002, 8002]"]
        assert list(await session.scalars(select(ErasureEvent.telegram_id))) == [8001]
        texts = dict((await session.execute(select(OutboxMessage.key, OutboxMessage.parts))).all())
        assert texts["old-sent"] == texts["old-failed"] == {"parts": []}
        assert texts["new-sent"] == {"parts": ["new-sent 正文"]}
        assert texts["old-pending"] == {"parts": ["old-pending 正文"]}
        assert texts["about-old-file"] == {"parts": []}  # cancelled with its file
        (audit,) = await session.scalars(
            select(AuditLog.detail).where(AuditLog.action == "retention.purge")
        )
        assert await retention.purged_on(session, 20300615)
        assert not await retention.purged_on(session, 20300616)
    assert audit["files"] == 1 and audit["rejected"] == 2 and audit["outbox"] == 2
    assert sorted(audit["nominations"]) == sorted(purged)
    assert "档案" not in json.dumps(audit, ensure_ascii=False)

    # A second purge the same moment finds nothing; the day after, the event is pruned.
    async with db.sessionmaker.begin() as session:
        again = await retention.purge(session, POLICY, NOW, day=20300615)
        assert again.total == 0
        later = await retention.purge(session, POLICY, NOW + 2 * DAY, day=20300617)
        # The other draft's time has come by then; 8001's event has been read and goes.
        assert later.drafts == [8002]
        assert list(await session.scalars(select(ErasureEvent.telegram_id))) == [8002]


async def test_the_tick_purges_once_a_day_with_the_settings(db: Database) -> None:
    ids = await _seed(db)
    settings = make_settings(db, retain_file_years=10, retain_rejected_days=380)
    context: Any = SimpleNamespace(settings=settings)
    async with db.sessionmaker.begin() as session:
        purged = await planners.plan_retention(session, context, NOW)
    # Ten years: no file yet; 380 days: only the rejection of 400 days ago; the draft; texts;
    # the unreadable draft set aside.
    assert purged == 1 + 1 + 2 + 1
    async with db.sessionmaker.begin() as session:
        assert await planners.plan_retention(session, context, NOW + timedelta(hours=1)) == 0
        erased = set(
            await session.scalars(select(Nomination.id).where(Nomination.erased_at.is_not(None)))
        )
    assert erased == {ids["rejected_long_ago"]}


@pytest.mark.parametrize("years", [3, 5])
def test_the_consent_text_says_the_settings_numbers(years: int) -> None:
    from templates import build_environment, render

    values = {"file_years": years, "rejected_days": 180, "draft_days": 14, "flow": "nominate"}
    env = build_environment()
    zh = render(env, "zh_CN", "form/consent", **values)
    en = render(env, "en", "form/consent", **values)
    assert f"调整出库后 {years} 年" in zh and "180 天后删除" in zh and "14 天后删除" in zh
    assert "/withdraw" in zh
    assert f"{years} years after leaving it" in en and "180 days" in en and "/withdraw" in en


async def test_nothing_erased_is_purged_again(db: Database) -> None:
    """An erased file is already anonymous: retention leaves it (and its counts) alone."""
    ids = await _seed(db)
    async with db.sessionmaker.begin() as session:
        person = await session.scalar(
            select(Nomination.person_id).where(Nomination.id == ids["declined_long_ago"])
        )
        assert person is not None
        await erasure.erase_person(session, person, actor_person_id=None, now=NOW)
    async with db.sessionmaker() as session:
        due = await retention.plan(session, POLICY, NOW)
    assert ids["declined_long_ago"] not in due.rejected
