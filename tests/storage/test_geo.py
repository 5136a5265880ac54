"""Geography import and village paging on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from storage import geo
from storage.db import Database
from storage.models import County, Township, Village

PAIRS = [
    ("青山镇", "青山村"),
    ("青山镇", "石桥村"),
    ("白水乡", "白水村"),
    ("青山镇", "青山村"),  # repeated within one import
    ("白水乡", "石桥村"),  # same village name, another township
    ("红岩镇", "红岩村"),
]


async def _counts(db: Database) -> tuple[int, int, int]:
    async with db.sessionmaker() as session:
        return (
            int(await session.scalar(select(func.count()).select_from(County)) or 0),
            int(await session.scalar(select(func.count()).select_from(Township)) or 0),
            int(await session.scalar(select(func.count()).select_from(Village)) or 0),
        )


async def _pairs(db: Database) -> set[tuple[str, str]]:
    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(Township.name, Village.name).join(Village, Village.township_id == Township.id)
        )
        return {(t, v) for t, v in rows.all()}


async def test_import_pairs_counts_and_is_idempotent(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        result = await geo.import_pairs(session, "示例县", PAIRS)
    assert result == geo.ImportResult(townships_added=3, villages_added=5)
    assert await _counts(db) == (1, 3, 5)
    assert await _pairs(db) == set(PAIRS)

    async with db.sessionmaker.begin() as session:
        again = await geo.import_pairs(session, "示例县", PAIRS)
    assert again == geo.ImportResult(0, 0)
    assert await _counts(db) == (1, 3, 5)

    # A later import adds only what is new, under the existing township.
    async with db.sessionmaker.begin() as session:
        more = await geo.import_pairs(
            session, "示例县", [("青山镇", "青山村"), ("青山镇", "新村"), ("绿水镇", "绿水村")]
        )
    assert more == geo.ImportResult(townships_added=1, villages_added=2)
    assert await _counts(db) == (1, 4, 7)
    async with db.sessionmaker() as session:
        qingshan = await geo.township_by_name(session, "青山镇")
        assert qingshan is not None
        villages, total = await geo.list_villages(session, qingshan.id)
    assert total == 3
    assert [v.name for v in villages] == ["青山村", "石桥村", "新村"]


async def test_import_of_nothing_still_creates_the_county(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        assert await geo.import_pairs(session, "示例县", []) == geo.ImportResult(0, 0)
        county = await geo.the_county(session)
        assert county is not None
        assert county.name == "示例县"
    assert await _counts(db) == (1, 0, 0)


async def test_list_townships_in_import_order(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", PAIRS)
    async with db.sessionmaker() as session:
        names = [t.name for t in await geo.list_townships(session)]
        assert await geo.township_by_name(session, "不存在镇") is None
    assert names == ["青山镇", "白水乡", "红岩镇"]


async def test_list_villages_pages(db: Database) -> None:
    names = [f"第{i:02d}村" for i in range(7)]
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(
            session, "示例县", [("青山镇", n) for n in names] + [("白水乡", "白水村")]
        )
    async with db.sessionmaker() as session:
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        pages = []
        for offset in range(0, 9, 3):
            villages, total = await geo.list_villages(session, township.id, offset=offset, limit=3)
            assert total == 7
            assert all(v.township_id == township.id for v in villages)
            pages.append([v.name for v in villages])
        beyond, total_beyond = await geo.list_villages(session, township.id, offset=7, limit=3)
        everything, total_all = await geo.list_villages(session, township.id)
        missing, total_missing = await geo.list_villages(session, township.id + 1000)

    assert pages == [names[0:3], names[3:6], names[6:7]]
    assert (beyond, total_beyond) == ([], 7)
    assert ([v.name for v in everything], total_all) == (names, 7)
    assert (missing, total_missing) == ([], 0)


async def test_names_are_checked_before_any_write(db: Database) -> None:
    """A 51-character township is refused on both engines, naming the pair (finding 17)."""
    long_name = "镇" * 51
    bad_pairs = [
        ([("青山镇", "青山村"), (long_name, "某村")], 1, "51 characters"),
        ([("青山镇", "青山村"), ("木黄镇", "村" * 41)], 1, "village is 41 characters"),
        ([("\u3000", "青山村")], 0, "township is blank"),
        ([("青山镇", "\u200b")], 0, "village is blank"),
        ([("青山\u200b镇", "青山村")], 0, "invisible"),
        ([("青山镇", "青山\n村")], 0, "control"),
    ]
    for pairs, index, why in bad_pairs:
        async with db.sessionmaker.begin() as session:
            try:
                await geo.import_pairs(session, "示例县", pairs)
            except geo.PlaceNameError as error:
                assert why in str(error) and error.index == index
            else:
                raise AssertionError(f"{pairs!r} was accepted")
    async with db.sessionmaker.begin() as session:
        try:
            await geo.import_pairs(session, "县" * 41, [("青山镇", "青山村")])
        except geo.PlaceNameError as error:
            assert "county" in str(error) and error.index is None
        else:
            raise AssertionError("a 41-character county was accepted")
    assert await _counts(db) == (0, 0, 0)
    # Exactly 40 characters, with spaces around them, is fine.
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [(" " + "镇" * 40 + " ", "村" * 40)])
    assert await _pairs(db) == {("镇" * 40, "村" * 40)}
