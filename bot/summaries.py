"""Push summaries: the text and the chart of a scope, and the planner of scheduled summaries.

Scheduled summaries go through the outbox like every proactive message: the row carries the
rendered text and, for each scope, the chart's figures (not the picture: a row stays a few
hundred bytes); the dispatcher draws the chart when it sends the row, after the text, so the
picture shows exactly the figures that were planned. /summary sends the same two for the
period so far.

The chart is drawn with matplotlib's object API on the Agg canvas (no pyplot state) in the
Noto Sans SC font that the `pylopdf-fonts-zh-cn` package installs, registered at first use,
so Chinese labels never render as empty boxes whatever fonts the server has.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler import planner
from bot.settings import Settings
from handlers.chat.context import CadreContext
from storage import outbox, summary
from storage.summary import Official, Schedule, Summary
from templates import build_environment, normalize_locale, render, split_message

log = logging.getLogger("cadrebot.summaries")

PERIOD_NAMES = {summary.WEEKLY: "week", summary.MONTHLY: "month"}
REPORTED_NAMES = {summary.WEEKLY: "last_week", summary.MONTHLY: "last_month"}


# ---------------------------------------------------------------------------------------------
# Text.


async def summary_of(
    session: AsyncSession,
    settings: Settings,
    township_id: int | None,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
) -> Summary:
    """build_summary with the deployment's time zone and talk cadence."""
    return await summary.build_summary(
        session,
        township_id=township_id,
        since=since,
        until=until,
        now=now,
        tz=settings.tz,
        talk_every_days=settings.talk_every_days,
        talk_soon_days=settings.talk_soon_days,
    )


def render_summary(
    env: Environment,
    locale: str,
    figures: Summary,
    *,
    tz: ZoneInfo,
    period: str,
    soon_days: int,
    change: dict[str, int] | None = None,
    scheduled: bool = False,
) -> str:
    """The summary message (Telegram HTML, not yet split)."""
    return render(
        env,
        locale,
        "summary/summary",
        s=figures,
        change=change or {},
        period=period,
        first_day=figures.since.astimezone(tz).date(),
        last_day=(figures.until - timedelta(microseconds=1)).astimezone(tz).date(),
        as_of=figures.now.astimezone(tz),
        soon_days=soon_days,
        scheduled=scheduled,
    )


def render_caption(env: Environment, locale: str, figures: Summary, tz: ZoneInfo) -> str:
    return render(
        env,
        locale,
        "summary/chart_caption",
        scope_name=figures.scope_name,
        first_day=figures.since.astimezone(tz).date(),
        last_day=(figures.until - timedelta(microseconds=1)).astimezone(tz).date(),
    )


# ---------------------------------------------------------------------------------------------
# Chart.

_draw_lock = threading.Lock()
HELD_COLOR, DUE_COLOR, OVERDUE_COLOR, FUNNEL_COLOR = "#2e7d32", "#f9a825", "#c62828", "#1565c0"


@cache
def chart_font() -> Path:
    """The CJK font file, registered with matplotlib once per process."""
    import pylopdf_fonts_zh_cn
    from matplotlib import font_manager

    path = Path(pylopdf_fonts_zh_cn.sans_path())
    font_manager.fontManager.addfont(str(path))
    return path


@cache
def _chart_labels(env: Environment, locale: str) -> dict[str, str]:
    module: Any = env.get_template(f"{locale}/_labels.html.j2").module
    return dict(module.labels)


@cache
def _default_env() -> Environment:
    return build_environment()


@dataclass(frozen=True, slots=True)
class ChartLine:
    township: str
    talks_held: int
    talks_due_soon: int
    talks_overdue: int


@dataclass(frozen=True, slots=True)
class ChartData:
    """What the chart shows, and nothing else: small enough to travel in an outbox row."""

    scope_name: str
    funnel: tuple[tuple[str, int], ...]
    townships: tuple[ChartLine, ...]

    @classmethod
    def of(cls, figures: Summary) -> ChartData:
        return cls(
            figures.scope_name,
            figures.funnel,
            tuple(
                ChartLine(t.township, t.talks_held, t.talks_due_soon, t.talks_overdue)
                for t in figures.townships
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope_name,
            "funnel": [[code, n] for code, n in self.funnel],
            "townships": [
                [t.township, t.talks_held, t.talks_due_soon, t.talks_overdue]
                for t in self.townships
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChartData:
        return cls(
            str(data["scope"]),
            tuple((str(code), int(n)) for code, n in data["funnel"]),
            tuple(
                ChartLine(str(name), int(held), int(soon), int(overdue))
                for name, held, soon, overdue in data["townships"]
            ),
        )


# The outbox photo kind of a summary chart (see chart_photo / draw_photo).
CHART_PHOTO = "summary-chart"


def chart_photo(figures: Summary, locale: str, caption: str) -> dict[str, Any]:
    """An outbox photo: the chart of `figures`, drawn when the row is sent."""
    return {
        "kind": CHART_PHOTO,
        "locale": locale,
        "caption": caption,
        "chart": ChartData.of(figures).to_json(),
    }


def draw_photo(photo: dict[str, Any]) -> tuple[bytes, str]:
    """The PNG and caption of an outbox photo (CPU-bound: call it off the event loop)."""
    if photo.get("kind") != CHART_PHOTO:
        raise ValueError(f"unknown outbox photo kind {photo.get('kind')!r}")
    picture = render_chart(ChartData.from_json(photo["chart"]), str(photo["locale"]))
    return picture, str(photo["caption"])


def render_chart(
    figures: Summary | ChartData, locale: str, env: Environment | None = None
) -> bytes:
    """A PNG: the pipeline funnel, then talks held against talks due per township."""
    from matplotlib import font_manager, rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(figures, ChartData):
        figures = ChartData.of(figures)
    labels = _chart_labels(env or _default_env(), locale)
    family = font_manager.FontProperties(fname=str(chart_font())).get_name()
    lines = figures.townships
    height = 3.2 + 0.42 * max(3, len(lines))
    rc = {"font.family": [family], "axes.unicode_minus": False, "font.size": 10}
    # rcParams are process-wide: one drawing at a time.
    with _draw_lock, rc_context(cast(Any, rc)):
        figure = Figure(figsize=(8, height), dpi=110, layout="constrained")
        FigureCanvasAgg(figure)
        funnel_axes, talk_axes = figure.subplots(
            2, 1, gridspec_kw={"height_ratios": [2.6, max(3, len(lines)) * 0.42]}
        )
        figure.suptitle(figures.scope_name, fontsize=13)

        steps = figures.funnel
        names = [labels.get(f"summary.funnel.{code}", code) for code, _ in steps]
        values = [n for _, n in steps]
        bars = funnel_axes.barh(names, values, color=FUNNEL_COLOR)
        funnel_axes.invert_yaxis()
        funnel_axes.bar_label(bars, labels=[str(v) for v in values], padding=3)
        funnel_axes.set_title(labels.get("summary.chart.funnel", ""), loc="left")
        funnel_axes.set_xlim(0, max([*values, 1]) * 1.15)
        funnel_axes.spines[["top", "right"]].set_visible(False)

        talk_axes.set_title(labels.get("summary.chart.talks", ""), loc="left")
        if lines:
            positions = list(range(len(lines)))
            width = 0.38
            held = [line.talks_held for line in lines]
            soon = [line.talks_due_soon for line in lines]
            overdue = [line.talks_overdue for line in lines]
            talk_axes.barh(
                [p - width / 2 for p in positions],
                held,
                height=width,
                color=HELD_COLOR,
                label=labels.get("summary.chart.held", ""),
            )
            talk_axes.barh(
                [p + width / 2 for p in positions],
                overdue,
                height=width,
                color=OVERDUE_COLOR,
                label=labels.get("summary.chart.overdue", ""),
            )
            talk_axes.barh(
                [p + width / 2 for p in positions],
                soon,
                height=width,
                left=overdue,
                color=DUE_COLOR,
                label=labels.get("summary.chart.due_soon", ""),
            )
            talk_axes.set_yticks(positions, [line.township for line in lines])
            talk_axes.invert_yaxis()
            talk_axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, frameon=False)
            top = max([*held, *(a + b for a, b in zip(soon, overdue, strict=True)), 1])
            talk_axes.set_xlim(0, top * 1.1)
        else:
            talk_axes.text(0.5, 0.5, labels.get("summary.chart.empty", ""), ha="center")
            talk_axes.set_yticks([])
        talk_axes.spines[["top", "right"]].set_visible(False)

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Scheduled summaries.


@dataclass(frozen=True, slots=True)
class _Key:
    township_id: int | None
    since: datetime
    until: datetime


async def _plan_one(
    session: AsyncSession,
    context: CadreContext,
    official: Official,
    schedule: Schedule,
    period: str,
    now: datetime,
    built: dict[_Key, Summary],
) -> int:
    settings = context.settings
    tz = settings.tz
    if not await summary.claim_period(session, official.person_id, period, schedule):
        return 0  # another tick or process took this period
    since, until = summary.reported_period(schedule.cadence, now, tz)
    locale = normalize_locale(official.language, settings.locale)
    texts: list[str] = []
    photos: list[dict[str, Any]] = []
    key_figures: dict[str, dict[str, int]] = {}
    for township_id in official.scopes:
        key = _Key(township_id, since, until)
        if key not in built:
            built[key] = await summary_of(
                session, settings, township_id, since=since, until=until, now=now
            )
        figures = built[key]
        scope = summary.scope_key(township_id)
        key_figures[scope] = summary.key_figures(figures)
        previous = summary.previous_figures(official.schedule, scope)
        texts.append(
            render_summary(
                context.jinja,
                locale,
                figures,
                tz=tz,
                period=REPORTED_NAMES[schedule.cadence],
                soon_days=settings.talk_soon_days,
                change=summary.changes(key_figures[scope], previous),
                scheduled=True,
            )
        )
        caption = render_caption(context.jinja, locale, figures, tz)
        photos.append(chart_photo(figures, locale, caption))
    added = await outbox.plan(
        session,
        key=f"summary:{official.person_id}:{period}",
        chat_id=official.telegram_id,
        kind="summary/summary",
        parts=split_message("\n\n".join(texts)),
        photos=photos,
    )
    await summary.record_figures(session, official.person_id, key_figures)
    return int(added)


@planner("summaries")
async def plan_summaries(session: AsyncSession, context: CadreContext, now: datetime) -> int:
    """Queue each official's summary once their scheduled moment of this period has passed.

    The summary sent in a period reports the calendar period before it. `claim_period` and
    the outbox key `summary:{person}:{period}` each make a second tick, a restart or a second
    process plan nothing more. One official's failure does not stop the others (savepoints).
    """
    built: dict[_Key, Summary] = {}
    planned = 0
    for official in await summary.officials(session):
        schedule = official.effective_schedule()
        if schedule is None:
            continue
        period = summary.due_period(schedule, now, context.settings.tz)
        if period is None:
            continue
        try:
            async with session.begin_nested():
                planned += await _plan_one(
                    session, context, official, schedule, period, now, built
                )
        except Exception:
            log.exception("summary for person %d (%s) failed", official.person_id, period)
    return planned
