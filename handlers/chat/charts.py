"""The summary's chart, in one place: /summary and `cadrebot summary` draw it at once, the
planner of scheduled summaries puts its figures in an outbox row, and the dispatcher draws
them when it sends the row (so the picture shows exactly the figures that were planned).

The chart is drawn with matplotlib's object API on the Agg canvas (no pyplot state) in the
Noto Sans SC font that the `pylopdf-fonts-zh-cn` package installs, registered at first use,
so Chinese labels never render as empty boxes whatever fonts the server has. Nothing here
knows Telegram: a chart is a PNG and a caption.
"""

from __future__ import annotations

import html
import io
import threading
from dataclasses import astuple, dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from jinja2 import Environment

from storage.summary import Summary
from templates import build_environment, render

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
    # One township's summary: its talk chart is titled for it, not "per township".
    township_scope: bool = False
    # The figures panel under the chart: training person-times, difficulties resolved,
    # project funds and income of the period (yuan); empty for rows planned before it.
    panel: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, figures: Summary) -> ChartData:
        return cls(
            figures.scope_name,
            figures.funnel,
            tuple(
                ChartLine(t.township, t.talks_held, t.talks_due_soon, t.talks_overdue)
                for t in figures.townships
            ),
            figures.township_id is not None,
            (
                # The classes' person-times, as the text and the article count them.
                ("person_times", t.class_person_times if (t := figures.trainings) else 0),
                ("difficulties_resolved", figures.difficulties_resolved),
                ("funds_yuan", figures.funds_yuan),
                ("income_yuan", figures.income_yuan),
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope_name,
            "funnel": [list(step) for step in self.funnel],
            "townships": [list(astuple(line)) for line in self.townships],
            "township": self.township_scope,
            "panel": [list(item) for item in self.panel],
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
            # Rows planned before the field existed are the county's or a township's alike.
            bool(data.get("township", False)),
            tuple((str(code), int(n)) for code, n in data.get("panel", ())),
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
    """A PNG: the period's pipeline funnel, then talks held against talks due per township,
    and the figures panel under them."""
    from matplotlib import font_manager, rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not isinstance(figures, ChartData):
        figures = ChartData.of(figures)
    env = env or _default_env()
    labels = _chart_labels(env, locale)
    # Rendered as plain text for matplotlib, not Telegram HTML.
    township = figures.scope_name if figures.township_scope else None
    title = render(env, locale, "summary/chart_talks_title", township=township)
    talks_title = html.unescape(title)
    panel = html.unescape(render(env, locale, "summary/chart_panel", panel=dict(figures.panel)))
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
        if panel:
            figure.supxlabel(panel, fontsize=11)

        steps = figures.funnel
        names = [labels.get(f"summary.funnel.{code}", code) for code, _ in steps]
        values = [n for _, n in steps]
        bars = funnel_axes.barh(names, values, color=FUNNEL_COLOR)
        funnel_axes.invert_yaxis()
        funnel_axes.bar_label(bars, labels=[str(v) for v in values], padding=3)
        funnel_axes.set_title(labels.get("summary.chart.funnel", ""), loc="left")
        funnel_axes.set_xlim(0, max([*values, 1]) * 1.15)
        # People and talks come whole: no 0.5 ticks when the counts are small.
        funnel_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        funnel_axes.spines[["top", "right"]].set_visible(False)

        talk_axes.set_title(talks_title, loc="left")
        talk_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if lines:
            positions = list(range(len(lines)))
            width = 0.38
            held = [line.talks_held for line in lines]
            soon = [line.talks_due_soon for line in lines]
            overdue = [line.talks_overdue for line in lines]
            # Held above; overdue below, with due-soon stacked after it.
            for shift, counts, left, color, key in (
                (-width / 2, held, None, HELD_COLOR, "held"),
                (width / 2, overdue, None, OVERDUE_COLOR, "overdue"),
                (width / 2, soon, overdue, DUE_COLOR, "due_soon"),
            ):
                talk_axes.barh(
                    [p + shift for p in positions],
                    counts,
                    height=width,
                    left=left,
                    color=color,
                    label=labels.get(f"summary.chart.{key}", ""),
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


def caption_values(figures: Summary, tz: ZoneInfo) -> dict[str, Any]:
    """What summary/chart_caption.html.j2 shows."""
    return {
        "scope_name": figures.scope_name,
        "first_day": figures.since.astimezone(tz).date(),
        "last_day": (figures.until - timedelta(microseconds=1)).astimezone(tz).date(),
    }


def render_caption(env: Environment, locale: str, figures: Summary, tz: ZoneInfo) -> str:
    return render(env, locale, "summary/chart_caption", **caption_values(figures, tz))
