"""Geography: county → township → village. Imports are idempotent."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import County, Township, Village
from storage.scoped import page

# The county, township and village name columns are String(40): PostgreSQL refuses a longer
# name with a DBAPIError and SQLite silently stores it, so both are checked before any write.
NAME_MAX = 40


class PlaceNameError(ValueError):
    """A county, township or village name that cannot be stored; the message says why, and
    `index` which pair of an import held it (None for the county)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def check_place_name(raw: str, what: str = "name") -> str:
    """The name without surrounding spaces, or PlaceNameError (blank, too long, control or
    invisible characters, which would make two names that look the same differ)."""
    name = raw.strip()
    if not name or all(unicodedata.category(c) in ("Cf", "Zs") for c in name):
        raise PlaceNameError(f"{what} is blank")
    if len(name) > NAME_MAX:
        raise PlaceNameError(f"{what} is {len(name)} characters long (at most {NAME_MAX})")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise PlaceNameError(f"{what} holds a control or invisible character")
    return name


@dataclass(frozen=True, slots=True)
class ImportResult:
    townships_added: int
    villages_added: int


async def get_or_create_county(session: AsyncSession, name: str) -> County:
    county = await session.scalar(select(County).where(County.name == name))
    if county is None:
        county = County(name=name)
        session.add(county)
        await session.flush()
    return county


async def the_county(session: AsyncSession) -> County | None:
    """The deployment's county: one bot serves one county."""
    return await session.scalar(select(County).order_by(County.id).limit(1))


async def import_pairs(
    session: AsyncSession, county_name: str, pairs: Iterable[tuple[str, str]]
) -> ImportResult:
    """Add (township, village) pairs that are not there yet; existing ones are left alone.

    Every name is checked (check_place_name) before the first write; a PlaceNameError carries
    the 0-based index of the first bad pair.
    """
    county_name = check_place_name(county_name, "county")
    pairs = list(pairs)
    for index, (township_name, village_name) in enumerate(pairs):
        try:
            pairs[index] = (
                check_place_name(township_name, "township"),
                check_place_name(village_name, "village"),
            )
        except PlaceNameError as error:
            raise PlaceNameError(str(error), index) from None
    county = await get_or_create_county(session, county_name)
    townships = {
        t.name: t
        for t in await session.scalars(select(Township).where(Township.county_id == county.id))
    }
    existing = {
        (t, v)
        for t, v in (
            await session.execute(
                select(Township.name, Village.name)
                .join(Village, Village.township_id == Township.id)
                .where(Township.county_id == county.id)
            )
        ).all()
    }
    added_t = added_v = 0
    for township_name, village_name in pairs:
        township = townships.get(township_name)
        if township is None:
            township = Township(county_id=county.id, name=township_name)
            session.add(township)
            await session.flush()
            townships[township_name] = township
            added_t += 1
        if (township_name, village_name) not in existing:
            session.add(Village(township_id=township.id, name=village_name))
            existing.add((township_name, village_name))
            added_v += 1
    await session.flush()
    return ImportResult(added_t, added_v)


async def township_by_name(session: AsyncSession, name: str) -> Township | None:
    return await session.scalar(select(Township).where(Township.name == name))


async def list_townships(session: AsyncSession) -> list[Township]:
    return list(await session.scalars(select(Township).order_by(Township.id)))


async def list_villages(
    session: AsyncSession, township_id: int, *, offset: int = 0, limit: int = 50
) -> tuple[list[Village], int]:
    """One page of a township's villages, and how many there are in all."""
    in_township = Village.township_id == township_id
    rows, total = await page(
        session,
        select(Village).where(in_township).order_by(Village.id),
        select(func.count()).select_from(Village).where(in_township),
        offset=offset,
        limit=limit,
    )
    return [village for (village,) in rows], total
