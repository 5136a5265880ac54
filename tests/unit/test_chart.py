"""The summary chart: a PNG whose Chinese text is drawn in a font that has the glyphs (no tofu)."""

from __future__ import annotations

import io
import json
import warnings
from datetime import UTC, datetime
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from handlers.chat.charts import chart_font, render_chart
from storage.summary import OverdueMentor, Summary, TownshipLine, TrainingFigures
from templates import build_environment

ENV = build_environment()
TOWNSHIPS = ("峨岭街道", "木黄镇", "沙子坡镇", "罗场乡", "永义乡")


def make_summary(**overrides: Any) -> Summary:
    now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "township_id": None,
        "scope_name": "印江自治县",
        "since": datetime(2026, 10, 31, 16, 0, tzinfo=UTC),
        "until": now,
        "now": now,
        "nominations": 812,
        "by_channel": {"self": 300, "mass": 212, "organization": 300},
        "by_key_group": {"veteran": 300},
        "college_or_higher": 571,
        "by_status": {"in_pool": 754, "vetting": 15, "rejected": 10, "elected": 6},
        "vetting_pending": 15,
        "vetting_approved": 60,
        "vetting_rejected": 4,
        "pool": 754,
        "pool_college_or_higher": 531,
        "adjusted_out": 0,
        "trainings": TrainingFigures(21, 1800, {"order": 8}, {"order": 1800}),
        "pairings": 1508,
        "cadres_paired": 754,
        "posts_active": 0,
        "posts_active_by_kind": {},
        "talks_held": 160,
        "talks_due_soon": 30,
        "talks_overdue": 5,
        "overdue_mentors": (OverdueMentor(1, "张三", 3),),
        "difficulties_raised": 9,
        "difficulties_resolved": 8,
        "difficulties_open": 1,
        "grade_year": 2025,
        "grade_promoted": 1,
        "grade_demoted": 0,
        "grade_stayed": 2,
        "projects": 66,
        "projects_done": 20,
        "project_leads": 35,
        "funds_yuan": 52_330_000,
        "income_yuan": 200_000,
        "income_total_yuan": 2_000_000,
        "elected": 1,
        "elected_total": 6,
        "unreachable_candidates": 0,
        "unreachable_mentors": 0,
        "townships": tuple(
            TownshipLine(i + 1, name, 40 + i, 40 + i, 40, 10 * i, 2, i)
            for i, name in enumerate(TOWNSHIPS)
        ),
    }
    values.update(overrides)
    return Summary(**values)


def chart_texts(locale: str) -> str:
    """Every string the chart draws for the sample summary."""
    labels: dict[str, str] = dict(ENV.get_template(f"{locale}/_labels.html.j2").module.labels)  # type: ignore[attr-defined]
    drawn = [v for k, v in labels.items() if k.startswith(("summary.funnel.", "summary.chart."))]
    return "".join([*drawn, *TOWNSHIPS, "印江自治县", "0123456789"])


def test_the_font_has_a_glyph_for_every_character_the_chart_draws() -> None:
    path = chart_font()
    assert path.is_file() and path.suffix == ".otf"
    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap()
    missing = {ch for ch in chart_texts("zh_CN") + chart_texts("en") if ord(ch) not in cmap}
    assert missing == set()
    # matplotlib resolves the family name to this very file, not to a fallback.
    name = font_manager.FontProperties(fname=str(path)).get_name()
    found = font_manager.findfont(
        font_manager.FontProperties(family=name), fallback_to_default=False
    )
    assert found == str(path)


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_chart_is_a_png_drawn_without_missing_glyphs(locale: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        picture = render_chart(make_summary(), locale, ENV)
    assert not [w for w in caught if "missing" in str(w.message).lower()]
    image = Image.open(io.BytesIO(picture))
    assert image.format == "PNG"
    assert image.width > 600 and image.height > 400


def test_township_chart_and_empty_county() -> None:
    line = TownshipLine(1, "木黄镇", 1, 1, 1, 0, 0, 0)
    one = make_summary(township_id=1, scope_name="木黄镇", townships=(line,))
    assert render_chart(one, "zh_CN", ENV).startswith(b"\x89PNG")
    empty = make_summary(townships=(), by_status={}, cadres_paired=0, elected_total=0)
    assert render_chart(empty, "zh_CN", ENV).startswith(b"\x89PNG")


def test_a_missing_glyph_would_be_caught() -> None:
    """The check above is not vacuous: a character the font lacks raises a warning."""
    chart_font()
    name = font_manager.FontProperties(fname=str(chart_font())).get_name()
    figure = Figure()
    FigureCanvasAgg(figure)
    figure.text(0.5, 0.5, "\U0001f600", family=name)
    with pytest.warns(UserWarning, match="missing from font"):
        figure.savefig(io.BytesIO(), format="png")


def test_a_chart_planned_into_the_outbox_draws_the_same_picture_later() -> None:
    from handlers.chat.charts import ChartData, chart_photo, draw_photo

    figures = make_summary()
    photo = chart_photo(figures, "zh_CN", "📈 印江自治县")
    # The row's body is JSON: what travels is the figures, not the PNG.
    stored = json.loads(json.dumps(photo))
    assert ChartData.from_json(stored["chart"]) == ChartData.of(figures)
    picture, caption = draw_photo(stored)
    assert caption == "📈 印江自治县"
    assert picture == render_chart(figures, "zh_CN", ENV)
    with pytest.raises(ValueError, match="unknown outbox photo kind"):
        draw_photo({**stored, "kind": "selfie"})
