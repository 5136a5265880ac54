"""`cadrebot audit`: the log printed, filtered by person, by account and by date."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import pytest

from storage import audit, people
from storage.db import Database
from storage.models import AuditLog
from storage.rules.vetting import Channel
from tests.support.county import new_nomination
from tests.unit.test_cli import cli, workdir  # noqa: F401  (workdir: the autouse fixture)

READER, CANDIDATE, STRANGER = 501, 502, 503


async def _fill() -> dict[str, int]:
    database = Database(os.environ["DATABASE_URL"])
    try:
        async with database.sessionmaker.begin() as session:
            reader = await people.ensure_account(session, READER, "zh-hans")
            candidate = await people.ensure_account(session, CANDIDATE, "zh-hans")
            nomination_id = await new_nomination(
                session,
                "何十七",
                now=datetime.now(UTC),
                channel=Channel.SELF,
                person_id=candidate.person_id,
            )
            session.add(
                AuditLog(
                    at=datetime(2020, 1, 1, tzinfo=UTC),
                    actor_person_id=reader.person_id,
                    action="dossier.read",
                    subject_type="nomination",
                    subject_id=nomination_id,
                    detail={},
                )
            )
            await audit.record(
                session, reader.person_id, "dossier.read", "nomination", nomination_id
            )
            await audit.denied(session, telegram_id=STRANGER, action="command:/pool")
        return {"reader": reader.person_id, "candidate": candidate.person_id}
    finally:
        await database.close()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    return [line.split("\t") for line in capsys.readouterr().out.splitlines()]


def test_audit_prints_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("db", "upgrade") == 0
    capsys.readouterr()
    ids = asyncio.run(_fill())

    assert cli("audit") == 0
    everything = _lines(capsys)
    assert [row[4] for row in everything] == [
        "nomination.create",
        "dossier.read",
        "dossier.read",
        "denied",
    ]

    assert cli("audit", "--person", str(ids["candidate"])) == 0
    about = _lines(capsys)
    assert [row[4] for row in about] == ["nomination.create", "dossier.read", "dossier.read"]
    assert [row[2] for row in about[1:]] == [str(ids["reader"])] * 2

    assert cli("audit", "--actor", str(READER)) == 0
    assert [row[4] for row in _lines(capsys)] == ["dossier.read", "dossier.read"]
    assert cli("audit", "--actor", str(STRANGER)) == 0
    (refused,) = _lines(capsys)
    assert refused[2:6] == ["-", str(STRANGER), "denied", "-"]
    assert '"attempted": "command:/pool"' in refused[6]
    assert cli("audit", "--actor", str(CANDIDATE)) == 0
    assert [row[4] for row in _lines(capsys)] == ["nomination.create"]

    assert cli("audit", "--since", "2021-01-01") == 0
    assert [row[4] for row in _lines(capsys)] == ["nomination.create", "dossier.read", "denied"]
    assert cli("audit", "--person", str(ids["candidate"]), "--since", "2021-01-01") == 0
    assert [row[4] for row in _lines(capsys)] == ["nomination.create", "dossier.read"]
