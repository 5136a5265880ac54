"""`cadrebot summary`: the summary officials get, printed on the terminal (and its chart).

    cadrebot summary --scope county|township:NAME [--since YYYY-MM-DD] [--until YYYY-MM-DD]
                     [--chart FILE.png] [--html]

Dates are county days (TIMEZONE) and both ends are included: `--since 2024-01-01 --until
2024-12-31` is the year 2024. Without them the period is the one /summary uses: this month
so far for the county, this week so far for a township. Stock figures (pool, pairings, talks
due) are as of now, unless `--until` names a day before today: then they are as of that day's
end, and those no dated record rebuilds are left out with a note. The text is printed without
its Telegram HTML tags (entities unescaped); `--html` prints it as the bot sends it.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.settings import Settings
from handlers.chat.charts import render_chart
from handlers.oversight.summary import PERIOD_NAMES, render_summary
from storage import summary
from storage.db import Database
from templates import build_environment

EXIT_FAILURE = 1
_TAG = re.compile(r"<[^>]+>")


def add_parser(sub: Any) -> None:
    """Add `summary` to the `cadrebot` subcommands."""
    parser = sub.add_parser("summary", help="print a summary of the county or a township")
    parser.add_argument("--scope", default="county", help="county (default) or township:NAME")
    parser.add_argument("--since", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    parser.add_argument("--until", type=date.fromisoformat, help="last day (included)")
    parser.add_argument("--chart", type=Path, help="also write the chart to this PNG file")
    parser.add_argument("--html", action="store_true", help="print Telegram HTML as is")


def plain(text: str) -> str:
    """Telegram HTML → terminal text."""
    return html.unescape(_TAG.sub("", text))


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


def _fail(message: str) -> int:
    print(f"cadrebot: {message}", file=sys.stderr)
    return EXIT_FAILURE


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    tz = settings.tz
    now = datetime.now(UTC)
    scope: str = args.scope
    if scope != "county" and not scope.startswith("township:"):
        return _fail("--scope must be county or township:NAME")
    cadence = summary.MONTHLY if scope == "county" else summary.WEEKLY
    since, until = summary.current_period(cadence, now, tz)
    period = PERIOD_NAMES[cadence]
    if args.since is not None or args.until is not None:
        period = "range"
        if args.since is not None:
            since = datetime.combine(args.since, time(), tzinfo=tz)
        if args.until is not None:
            until = datetime.combine(args.until + timedelta(days=1), time(), tzinfo=tz)
    if until <= since:
        return _fail("--until is before --since")
    database = Database(settings.database_url)
    try:
        async with database.sessionmaker() as session:
            township_id = None
            if scope != "county":
                name = scope.removeprefix("township:")
                township_id = await summary.township_by_name(session, name)
                if township_id is None:
                    return _fail(f"no township named {name!r}")
            figures = await summary.build_summary(
                session,
                township_id=township_id,
                since=since,
                until=until,
                now=now,
                tz=tz,
                talk_every_days=settings.talk_every_days,
                talk_soon_days=settings.talk_soon_days,
                stocks_at_end=args.until is not None,
            )
    finally:
        await database.close()
    env = build_environment()
    body = render_summary(
        env,
        settings.locale,
        figures,
        tz=tz,
        period=period,
        soon_days=settings.talk_soon_days,
    )
    print(body if args.html else plain(body))
    if args.chart is not None:
        picture = render_chart(figures, settings.locale, env)
        args.chart.write_bytes(picture)
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0
