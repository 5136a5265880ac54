"""The summary chart's axes count whole people and talks, and its funnel is the period's."""

from __future__ import annotations

from typing import Any

import pytest
from matplotlib.figure import Figure

from handlers.chat.charts import ChartData, ChartLine, render_chart
from templates import build_environment

ENV = build_environment()


def _drawn(monkeypatch: pytest.MonkeyPatch, data: ChartData) -> Figure:
    """Render the chart and keep the figure that was saved."""
    saved: list[Figure] = []
    real = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> None:
        saved.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    assert render_chart(data, "zh_CN", ENV).startswith(b"\x89PNG")
    (figure,) = saved
    return figure


def test_small_counts_get_whole_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    """One person and one talk: no "0.5 人" tick on either axis."""
    data = ChartData(
        "青山镇",
        (("nominated", 1), ("vetted", 1), ("pool", 1), ("paired", 0), ("elected", 0)),
        (ChartLine("青山镇", 1, 0, 1),),
        township_scope=True,
    )
    figure = _drawn(monkeypatch, data)
    funnel, talks = figure.axes
    for axes in (funnel, talks):
        ticks = list(axes.get_xticks())
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    # A township's talks are titled for it, not "各乡镇".
    assert talks.get_title(loc="left") == "青山镇谈心谈话（对/次）"
    county = _drawn(monkeypatch, ChartData("示例县", data.funnel, data.townships))
    assert county.axes[1].get_title(loc="left").startswith("各乡镇")


def test_an_outbox_row_planned_before_the_field_is_the_county_kind() -> None:
    old = {"scope": "木黄镇", "funnel": [["nominated", 5]], "townships": [["木黄镇", 3, 1, 0]]}
    assert not ChartData.from_json(old).township_scope


def test_the_figures_panel_is_under_the_chart(monkeypatch: pytest.MonkeyPatch) -> None:
    panel = (
        ("person_times", 1800),
        ("difficulties_resolved", 89),
        ("funds_yuan", 52_330_000),
        ("income_yuan", 2_126_000),
    )
    data = ChartData("示例县", (("nominated", 849),), (), panel=panel)
    assert ChartData.from_json(data.to_json()) == data
    figure = _drawn(monkeypatch, data)
    assert figure.get_supxlabel() == (
        "培训 1800 人次 · 解决困难 89 件 · 项目资金 5233 万元 · 本期增收 212.6 万元"
    )
    # A row planned before the panel existed draws no panel.
    assert _drawn(monkeypatch, ChartData("示例县", data.funnel, ())).get_supxlabel() == ""
