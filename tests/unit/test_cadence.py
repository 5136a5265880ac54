"""The talk cadence and the talk-date window: pure rules, table-driven."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage.rules.cadence import (
    CadenceState,
    check_talk_date,
    due_date,
    due_threshold,
    local_date,
    overdue_threshold,
    parse_talk_date,
    talk_status,
)
from storage.rules.identity import RuleError

SHANGHAI = ZoneInfo("Asia/Shanghai")
OK, SOON, OVERDUE = CadenceState.OK, CadenceState.DUE_SOON, CadenceState.OVERDUE


def noon(day: date) -> datetime:
    """Noon in Shanghai on `day`, as an aware UTC moment."""
    return datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("last_talk", "paired_on", "expected"),
    [
        pytest.param(None, date(2026, 1, 31), date(2026, 3, 2), id="jan31+30-no-talk"),
        pytest.param(date(2026, 1, 31), date(2025, 12, 1), date(2026, 3, 2), id="jan31+30"),
        pytest.param(date(2028, 1, 30), date(2028, 1, 1), date(2028, 2, 29), id="leap-day-due"),
        pytest.param(date(2028, 2, 29), date(2028, 1, 1), date(2028, 3, 30), id="from-leap-day"),
        pytest.param(date(2027, 1, 30), date(2027, 1, 1), date(2027, 3, 1), id="no-leap-2027"),
        pytest.param(date(2026, 12, 15), date(2026, 1, 1), date(2027, 1, 14), id="year-end"),
        pytest.param(None, date(2026, 4, 30), date(2026, 5, 30), id="pairing-date-base"),
    ],
)
def test_due_date(last_talk: date | None, paired_on: date, expected: date) -> None:
    assert due_date(last_talk, paired_on) == expected
    status = talk_status(last_talk, paired_on, noon(paired_on), tz=SHANGHAI)
    assert status.due_date == expected


@pytest.mark.parametrize(
    ("today", "state", "days_left"),
    [
        pytest.param(date(2026, 3, 3), OVERDUE, -1, id="day-after-due"),
        pytest.param(date(2026, 4, 1), OVERDUE, -30, id="a-month-late"),
        pytest.param(date(2026, 3, 2), SOON, 0, id="on-due-date"),
        pytest.param(date(2026, 3, 1), SOON, 1, id="day-before"),
        pytest.param(date(2026, 2, 23), SOON, 7, id="soon-threshold-edge"),
        pytest.param(date(2026, 2, 22), OK, 8, id="one-day-before-soon"),
        pytest.param(date(2026, 1, 31), OK, 30, id="day-of-last-talk"),
    ],
)
def test_state_around_the_due_date(today: date, state: CadenceState, days_left: int) -> None:
    # Last talk 2026-01-31: due 2026-03-02.
    status = talk_status(date(2026, 1, 31), date(2026, 1, 1), noon(today), tz=SHANGHAI)
    assert (status.due_date, status.state, status.days_left) == (
        date(2026, 3, 2),
        state,
        days_left,
    )


@pytest.mark.parametrize(
    ("now", "state", "days_left"),
    [
        # 16:30 UTC on 1 March is 00:30 on 2 March in Shanghai: the due date has arrived.
        pytest.param(datetime(2026, 3, 1, 16, 30, tzinfo=UTC), SOON, 0, id="utc-still-mar1"),
        pytest.param(datetime(2026, 3, 1, 15, 59, tzinfo=UTC), SOON, 1, id="23:59-shanghai"),
        pytest.param(datetime(2026, 3, 2, 16, 0, tzinfo=UTC), OVERDUE, -1, id="midnight-mar3"),
        pytest.param(datetime(2026, 3, 2, 15, 59, 59, tzinfo=UTC), SOON, 0, id="last-second"),
        pytest.param(
            datetime(2026, 3, 2, 8, 0, tzinfo=ZoneInfo("America/Los_Angeles")),
            OVERDUE,
            -1,
            id="any-aware-zone",
        ),
    ],
)
def test_today_is_shanghai_date(now: datetime, state: CadenceState, days_left: int) -> None:
    status = talk_status(date(2026, 1, 31), date(2026, 1, 1), now, tz=SHANGHAI)
    assert (status.state, status.days_left) == (state, days_left)


def test_shanghai_vs_utc_gives_different_answers() -> None:
    now = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    # Due 2026-03-01: already overdue in Shanghai, still due today by UTC's date.
    shanghai = talk_status(date(2026, 1, 30), date(2026, 1, 1), now, tz=SHANGHAI)
    utc = talk_status(date(2026, 1, 30), date(2026, 1, 1), now, tz=ZoneInfo("UTC"))
    assert (shanghai.state, shanghai.days_left) == (OVERDUE, -1)
    assert (utc.state, utc.days_left) == (SOON, 0)


@pytest.mark.parametrize(
    ("every", "soon", "last", "today", "state"),
    [
        (14, 3, date(2026, 5, 1), date(2026, 5, 11), OK),
        (14, 3, date(2026, 5, 1), date(2026, 5, 12), SOON),
        (14, 3, date(2026, 5, 1), date(2026, 5, 15), SOON),
        (14, 3, date(2026, 5, 1), date(2026, 5, 16), OVERDUE),
        (30, 0, date(2026, 5, 1), date(2026, 5, 30), OK),
        (30, 0, date(2026, 5, 1), date(2026, 5, 31), SOON),
        (1, 0, date(2026, 5, 1), date(2026, 5, 3), OVERDUE),
    ],
)
def test_configurable_cadence(
    every: int, soon: int, last: date, today: date, state: CadenceState
) -> None:
    status = talk_status(
        last, date(2026, 1, 1), noon(today), every_days=every, soon_days=soon, tz=SHANGHAI
    )
    assert status.state == state


@pytest.mark.parametrize("every", [1, 7, 30, 45])
@pytest.mark.parametrize("soon", [0, 3, 7])
def test_thresholds_agree_with_talk_status(every: int, soon: int) -> None:
    """The SQL thresholds select exactly the bases that talk_status calls due/overdue."""
    today = date(2028, 3, 1)
    for offset in range(-80, 10):
        base = today + timedelta(days=offset)
        status = talk_status(
            base, base, noon(today), every_days=every, soon_days=soon, tz=SHANGHAI
        )
        due_or_overdue = base <= due_threshold(today, every_days=every, soon_days=soon)
        assert due_or_overdue == (status.state != OK), (base, status)
        assert (base <= overdue_threshold(today, every_days=every)) == (status.state == OVERDUE), (
            base,
            status,
        )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        talk_status(None, date(2026, 1, 1), datetime(2026, 1, 2, 12), tz=SHANGHAI)
    with pytest.raises(ValueError):
        talk_status(None, date(2026, 1, 1), noon(date(2026, 1, 2)), every_days=0, tz=SHANGHAI)
    with pytest.raises(ValueError):
        talk_status(None, date(2026, 1, 1), noon(date(2026, 1, 2)), soon_days=-1, tz=SHANGHAI)
    with pytest.raises(ValueError):
        local_date(datetime(2026, 1, 1), SHANGHAI)


TODAY = date(2026, 3, 2)


@pytest.mark.parametrize(
    ("raw", "today", "expected"),
    [
        ("2026-03-01", TODAY, date(2026, 3, 1)),
        (" 2026/3/1 ", TODAY, date(2026, 3, 1)),
        ("2026.3.1", TODAY, date(2026, 3, 1)),
        ("2026年3月1日", TODAY, date(2026, 3, 1)),
        ("２０２６－０３－０１", TODAY, date(2026, 3, 1)),
        ("3-1", TODAY, date(2026, 3, 1)),
        ("2/28", TODAY, date(2026, 2, 28)),
        ("3月2日", TODAY, date(2026, 3, 2)),
        # Without a year: the nearest one. Early January reaches back into December…
        ("12-31", date(2026, 1, 5), date(2025, 12, 31)),
        # …and a few days ahead stays ahead (a typo that check_talk_date refuses as future).
        ("3-5", TODAY, date(2026, 3, 5)),
        ("1-2", date(2025, 12, 30), date(2026, 1, 2)),
        # 29 February: the leap year nearest to today.
        ("2-29", date(2028, 3, 10), date(2028, 2, 29)),
    ],
)
def test_parse_talk_date(raw: str, today: date, expected: date) -> None:
    assert parse_talk_date(raw, today=today) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("yesterday", "talk_date.format"),
        ("", "talk_date.format"),
        ("2026-3", "talk_date.format"),
        ("20260301", "talk_date.format"),
        ("3-1-2026", "talk_date.format"),
        ("2026-02-30", "talk_date.invalid"),
        ("2026-13-01", "talk_date.invalid"),
        ("13-1", "talk_date.invalid"),
        ("2-29", "talk_date.invalid"),  # no leap year around 2026
    ],
)
def test_parse_talk_date_refuses(raw: str, code: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_talk_date(raw, today=TODAY)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("value", "not_before", "code"),
    [
        (TODAY, None, None),
        (TODAY - timedelta(days=30), None, None),
        (TODAY - timedelta(days=31), None, "talk_date.too_old"),
        (TODAY + timedelta(days=1), None, "talk_date.future"),
        (TODAY - timedelta(days=3), TODAY - timedelta(days=3), None),
        (TODAY - timedelta(days=4), TODAY - timedelta(days=3), "talk_date.before_pairing"),
    ],
)
def test_check_talk_date(value: date, not_before: date | None, code: str | None) -> None:
    if code is None:
        assert check_talk_date(value, today=TODAY, not_before=not_before) == value
        return
    with pytest.raises(RuleError) as caught:
        check_talk_date(value, today=TODAY, not_before=not_before)
    assert caught.value.code == code
    if code == "talk_date.too_old":
        assert caught.value.params == {"days": 30}


def test_check_talk_date_without_a_window_back() -> None:
    """An official recording on a mentor's behalf: any day back, still not in the future nor
    before the pairing."""
    old = TODAY - timedelta(days=400)
    assert check_talk_date(old, today=TODAY, back_days=None) == old
    for value, not_before, code in [
        (TODAY + timedelta(days=1), None, "talk_date.future"),
        (old, old + timedelta(days=1), "talk_date.before_pairing"),
    ]:
        with pytest.raises(RuleError) as caught:
            check_talk_date(value, today=TODAY, back_days=None, not_before=not_before)
        assert caught.value.code == code
