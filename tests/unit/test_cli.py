"""`cadrebot` commands in a temporary directory: exit codes and one-line errors."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.cli import main
from bot.settings import Settings

USERNAME = "cadre_test_bot"
LINK_RE = re.compile(rf"^(\S+)  https://t\.me/{USERNAME}\?start=(\S+)$")
NAMED_LOGGERS = ("alembic", "httpx", "apscheduler", "cadrebot")


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment in an empty cwd (no `.env`), with its own SQLite database."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    return tmp_path


def cli(*argv: str) -> int:
    """Run `cadrebot argv...`, then undo the logging set-up main() does on the root logger."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    named = {name: logging.getLogger(name).level for name in NAMED_LOGGERS}
    try:
        return main(list(argv))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, saved in named.items():
            logging.getLogger(name).setLevel(saved)


def one_line(text: str) -> str:
    lines = text.strip("\n").split("\n")
    assert len(lines) == 1, text
    return lines[0]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_run_without_token_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("run") == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "BOT_TOKEN" in one_line(err)
    assert err.startswith("cadrebot: ")


def test_malformed_timezone_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIMEZONE", "Mars/Base")
    assert cli("db", "upgrade") == 2
    assert "TIMEZONE" in one_line(capsys.readouterr().err)


def test_malformed_timezone_in_env_file_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / ".env").write_text("TIMEZONE=Mars/Base\n", encoding="utf-8")
    assert cli("run") == 2
    assert "TIMEZONE" in one_line(capsys.readouterr().err)


def test_keygen_prints_a_fernet_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("keygen") == 0
    key = one_line(capsys.readouterr().out)
    fernet = Fernet(key.encode())
    assert fernet.decrypt(fernet.encrypt(b"110105194912310021")) == b"110105194912310021"


def test_keygen_needs_no_valid_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIMEZONE", "Mars/Base")
    assert cli("keygen") == 0
    Fernet(one_line(capsys.readouterr().out).encode())


def test_db_upgrade_creates_the_database(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from alembic.script import ScriptDirectory

    from storage import migrate

    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert cli("db", "upgrade") == 0
    assert (workdir / "cli.sqlite3").is_file()
    # It says what it did (it used to say "database is up to date" for a new database too).
    assert one_line(capsys.readouterr().out) == (
        f"database migrated from none (a new database) to {head}"
    )
    assert cli("db", "upgrade") == 0  # again: nothing to do, still fine
    assert one_line(capsys.readouterr().out) == (
        f"database already at {head} (the latest); nothing to do"
    )


def test_db_tallies_finds_a_wrong_counter_and_rebuilds_it(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("BOT_USERNAME", USERNAME)
    monkeypatch.setenv("DATA_KEY", Fernet.generate_key().decode())
    assert cli("seed", "--demo", "--scale", "article") == 0
    capsys.readouterr()
    assert cli("db", "tallies") == 0
    assert one_line(capsys.readouterr().out) == "tallies agree with the facts"
    with sqlite3.connect(workdir / "cli.sqlite3") as connection:
        connection.execute("UPDATE talk_tally SET n = n + 2 WHERE rowid = 1")
    assert cli("db", "tallies") == 1
    out = capsys.readouterr().out
    assert "talk_tally" in out and "1 disagreement(s)" in out
    assert cli("db", "tallies", "--rebuild") == 0
    assert one_line(capsys.readouterr().out) == "tallies agree with the facts (rebuilt)"


def test_db_upgrade_creates_the_folder_of_the_default_url(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    assert cli("db", "upgrade") == 0
    assert (workdir / "data" / "cadrebot.sqlite3").is_file()


def test_geo_import_is_idempotent(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(
        workdir / "geo.csv",
        "township,village\n青山镇,青山村\n青山镇,石门村\n木黄镇,木黄村\n\n木黄镇 , 凤仪村 \n",
    )
    assert cli("geo", "import", str(path), "--county", "示例县") == 0
    assert one_line(capsys.readouterr().out) == "imported 2 townships and 4 villages"
    assert cli("geo", "import", str(path)) == 0
    assert one_line(capsys.readouterr().out) == "imported 0 townships and 0 villages"


def test_geo_import_accepts_a_bom_and_no_header(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "geo.csv"
    path.write_bytes("\ufeff合水镇,合水村\r\n合水镇,兴旺村\r\n".encode())
    assert cli("geo", "import", str(path), "--county", "示例县") == 0
    assert one_line(capsys.readouterr().out) == "imported 1 townships and 2 villages"


def test_first_geo_import_needs_a_county(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(workdir / "geo.csv", "township,village\n青山镇,青山村\n")
    assert cli("geo", "import", str(path)) == 1
    assert "--county" in one_line(capsys.readouterr().err)


def test_geo_import_bad_row_names_the_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(
        workdir / "geo.csv", "township,village\n青山镇,青山村\n木黄镇,木黄村,多余\n合水镇,合水村\n"
    )
    assert cli("geo", "import", str(path), "--county", "示例县") == 1
    out, err = capsys.readouterr()
    assert out == ""
    line = one_line(err)
    assert f"{path}:3:" in line
    # Nothing was imported: the whole file is checked before the first write.
    good = write_csv(workdir / "good.csv", "青山镇,青山村\n")
    assert cli("geo", "import", str(good), "--county", "示例县") == 0
    assert one_line(capsys.readouterr().out) == "imported 1 townships and 1 villages"


@pytest.mark.parametrize("row", ["青山镇", ",青山村", "青山镇,  "])
def test_geo_import_rejects_incomplete_rows(
    workdir: Path, capsys: pytest.CaptureFixture[str], row: str
) -> None:
    path = write_csv(workdir / "geo.csv", f"青山镇,青山村\n{row}\n")
    assert cli("geo", "import", str(path), "--county", "示例县") == 1
    assert ":2:" in one_line(capsys.readouterr().err)


def test_geo_import_of_a_missing_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("geo", "import", str(workdir / "nope.csv"), "--county", "示例县") == 1
    assert "nope.csv" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(("--role", "mentor"), "township", id="mentor-without-township"),
        pytest.param(
            ("--role", "mentor", "--township", "无此镇"), "无此镇", id="unknown-township"
        ),
    ],
)
def test_invite_with_a_missing_or_unknown_township_exits_1(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    named: str,
) -> None:
    monkeypatch.setenv("BOT_USERNAME", USERNAME)
    assert cli("invite", *args) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert named in one_line(err)


def test_invite_without_username_or_token_prints_placeholder_links(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fresh clone has no BOT_USERNAME: the codes, links with a placeholder, one note."""
    assert cli("invite", "--role", "admin", "--count", "2") == 0
    out, err = capsys.readouterr()
    lines = out.strip().split("\n")
    assert len(lines) == 2
    for line in lines:
        match = re.match(r"^(\S+)  https://t\.me/<your_bot>\?start=(\S+)$", line)
        assert match is not None and match.group(1) == match.group(2)
    assert "BOT_USERNAME" in one_line(err)


def test_reviewer_invite_prints_code_and_link(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_USERNAME", USERNAME)
    assert cli("invite", "--role", "reviewer", "--department", "police") == 0
    match = LINK_RE.match(one_line(capsys.readouterr().out))
    assert match is not None
    assert match.group(1) == match.group(2)


def test_invite_count_prints_distinct_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_USERNAME", USERNAME)
    assert cli("invite", "--role", "admin", "--count", "3") == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 3
    codes = set()
    for line in lines:
        match = LINK_RE.match(line)
        assert match is not None
        codes.add(match.group(1))
    assert len(codes) == 3


def test_seed_demo_prints_one_link_per_role(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_USERNAME", USERNAME)
    monkeypatch.setenv("DATA_KEY", Fernet.generate_key().decode())  # the demo's files
    assert cli("seed", "--demo") == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 5
    roles = []
    for line in lines:
        role, code, link = line.split()
        assert link == f"https://t.me/{USERNAME}?start={code}"
        roles.append(role)
    assert sorted(roles) == sorted(
        ["admin", "county_official", "township_official", "mentor", "reviewer"]
    )
    assert cli("seed", "--demo") == 0  # idempotent geography, fresh codes
    assert len(capsys.readouterr().out.strip().split("\n")) == 5


def test_unknown_command_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli("frobnicate")
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_article_county_summary_shows_the_articles_figures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`seed --demo --scale article`, then `summary --scope county` for 2024: the article."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("BOT_USERNAME", USERNAME)
    monkeypatch.setenv("DATA_KEY", Fernet.generate_key().decode())
    assert cli("seed", "--demo", "--scale", "article") == 0
    capsys.readouterr()
    assert (
        cli("summary", "--scope", "county", "--since", "2024-01-01", "--until", "2024-12-31") == 0
    )
    text = capsys.readouterr().out
    share = re.search(r"资源库 (\d+) 名，其中大专及以上学历占 ([\d.]+)%", text)
    assert share is not None and float(share.group(2)) > 70.0, text
    for figure in (
        "本期通过 754 人",  # 754 reserve cadres selected through joint vetting
        "举办培训 22 期，覆盖后备干部 1800 人次",  # 20+ classes, 1,800 person-times
        "开展廉政教育 13 次",
        "谈心谈话 1612 次",  # 1,600+ talks
        "解决 89 件",
        "35 名后备干部牵头盘活闲置资产项目 66 个",
        "涉及资金 5233 万元",
        "增收 212.6 万元",  # over 200万元
        "6 名后备干部通过选举进入村“两委”",
        "宣传报道 12 篇",  # 10+ reports
    ):
        assert figure in text, (figure, text)
    for channel in ("个人自荐", "群众举荐", "组织推荐"):
        assert channel in text


def test_erase_removes_a_persons_file_and_drafts(capsys: pytest.CaptureFixture[str]) -> None:
    """`cadrebot erase --nomination N --yes`: the file and its encrypted data are gone."""
    import asyncio
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from storage.db import Database
    from storage.models import AuditLog, Nomination, Person, StatusChange
    from tests.support.county import new_nomination

    assert cli("db", "upgrade") == 0
    database = Database(os.environ["DATABASE_URL"])

    async def prepare() -> int:
        async with database.sessionmaker.begin() as session:
            return await new_nomination(
                session, "何十七", now=datetime.now(UTC), phone="13912345678"
            )

    async def remaining() -> tuple[int, int, set[str | None], int, tuple[object, ...]]:
        async with database.sessionmaker() as session:
            left = await session.scalar(select(func.count()).select_from(Nomination))
            history = await session.scalar(select(func.count()).select_from(StatusChange))
            names = set(await session.scalars(select(Person.full_name)))
            erasures = await session.scalar(
                select(func.count()).where(AuditLog.action == "person.erase")
            )
            personal = (
                await session.execute(
                    select(
                        Nomination.phone_enc,
                        Nomination.phone_hash,
                        Nomination.phone_masked,
                        Nomination.erased_at.is_(None),
                    )
                )
            ).one()
        await database.close()
        return int(left or 0), int(history or 0), names, int(erasures or 0), tuple(personal)

    nomination_id = asyncio.run(prepare())
    assert cli("erase", "--nomination", str(nomination_id)) == 1  # needs --yes
    assert cli("erase", "--nomination", str(nomination_id), "--yes") == 0
    assert "1 nomination(s)" in capsys.readouterr().out
    # The file and its encrypted data are gone; an anonymous row stays for the county's
    # counts (submitted, then declined by the withdrawal), with no name anywhere.
    assert asyncio.run(remaining()) == (1, 2, {None}, 1, (None, None, None, False))
    assert cli("erase", "--nomination", str(nomination_id), "--yes") == 1  # nothing left


def test_purge_dry_run_lists_ids_then_purge_applies(capsys: pytest.CaptureFixture[str]) -> None:
    """`cadrebot purge --dry-run` shows counts and file numbers, no names, and changes
    nothing; `cadrebot purge` applies the same plan."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select, update

    from storage.db import Database
    from storage.models import Nomination
    from tests.support.county import new_nomination

    assert cli("db", "upgrade") == 0
    database = Database(os.environ["DATABASE_URL"])

    async def prepare() -> int:
        async with database.sessionmaker.begin() as session:
            nomination_id = await new_nomination(session, "何十八", now=datetime.now(UTC))
            await session.flush()
            await session.execute(
                update(Nomination)
                .where(Nomination.id == nomination_id)
                .values(
                    status="adjusted", status_changed_at=datetime.now(UTC) - timedelta(days=1200)
                )
            )
            return nomination_id

    async def erased() -> bool:
        async with database.sessionmaker() as session:
            at = await session.scalar(select(Nomination.erased_at))
        await database.close()
        return at is not None

    nomination_id = asyncio.run(prepare())
    assert cli("purge", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"would delete 1 files (3 years after leaving the pool): {nomination_id}" in out
    assert "would delete 0 drafts" in out and "何十八" not in out
    assert asyncio.run(erased()) is False
    assert cli("purge") == 0
    assert "deleted 1 files" in capsys.readouterr().out
    assert asyncio.run(erased()) is True


@pytest.mark.parametrize("key", ["nope", "{good},nope", "{good},{good}", "{good}x"])
def test_malformed_data_key_stops_start_up_with_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """Finding 17: a raw ValueError and exit 1 before; the README promises one line, exit 2."""
    good = Fernet.generate_key().decode()
    bad = key.format(good=good)
    monkeypatch.setenv("BOT_TOKEN", "123456:TESTTOKENabcdefghijklmnopqrstuvwxyz")
    monkeypatch.setenv("DATA_KEY", bad)
    assert cli("run") == 2
    out, err = capsys.readouterr()
    line = one_line(err)
    assert out == "" and line.startswith("cadrebot: ") and "DATA_KEY" in line
    assert good not in line and "Traceback" not in err
    assert cli("rekey") == 2
    assert "DATA_KEY" in one_line(capsys.readouterr().err)


def test_rekey_rotates_the_data_key_and_the_old_key_can_go(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cadrebot rekey` with DATA_KEY=new,old moves every value to the new key, prints counts
    per column; then DATA_KEY=new alone opens everything, and the old key alone is refused."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("BOT_USERNAME", USERNAME)
    monkeypatch.setenv("DATA_KEY", old)
    assert cli("seed", "--demo", "--scale", "article") == 0
    capsys.readouterr()
    monkeypatch.setenv("DATA_KEY", f"{new},{old}")
    assert cli("rekey", "--batch-size", "300") == 0
    out = capsys.readouterr().out
    counts = {
        match.group(1): (int(match.group(2)), int(match.group(3)), int(match.group(4)))
        for match in re.finditer(
            r"^(\S+): (\d+) re-encrypted, (\d+) already current, (\d+) unreadable$", out, re.M
        )
    }
    assert set(counts) == {
        "data_secret.wrapped",
        "nomination.id_number_enc",
        "nomination.phone_enc",
        "user_data.payload",
        "talk_log.topics_enc",
        "difficulty.description_enc",
        "difficulty.resolution_enc",
        "vetting_review.note_enc",
        "status_change.reason_enc",
        "inbound_update.payload",
    }, out
    assert counts["nomination.id_number_enc"][0] > 700 and counts["talk_log.topics_enc"][0] > 1000
    assert all(unreadable == 0 for _, _, unreadable in counts.values())
    assert "the other keys can now be removed" in out
    monkeypatch.setenv("DATA_KEY", new)
    assert cli("rekey") == 0
    again = capsys.readouterr().out
    assert " 0 re-encrypted" in again and not re.search(r" [1-9]\d* re-encrypted", again)
    # The figures read the talks and difficulties the new key opens.
    assert (
        cli("summary", "--scope", "county", "--since", "2024-01-01", "--until", "2024-12-31") == 0
    )
    assert "谈心谈话 1612 次" in capsys.readouterr().out
    monkeypatch.setenv("DATA_KEY", old)
    assert cli("rekey") == 2
    line = one_line(capsys.readouterr().err)
    assert "DATA_KEY" in line and old not in line


@pytest.mark.parametrize(
    "argv",
    [
        ("erase", "--nomination", "99999999999", "--yes"),
        ("erase", "--nomination", "-3", "--yes"),
        ("erase", "--telegram-id", "1e9", "--yes"),
        ("audit", "--person", "2147483648"),
        ("audit", "--actor", "99999999999999999999"),
    ],
)
def test_ids_out_of_their_columns_range_are_one_line_from_argparse(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Never a raw database error (PostgreSQL refuses a 12-digit INTEGER): exit 2, one line."""
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    assert stopped.value.code == 2
    assert "is not a valid" in capsys.readouterr().err.splitlines()[-1]
