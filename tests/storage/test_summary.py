"""Summary figures on SQLite and PostgreSQL against a data set counted by hand; schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from storage import figures, geo, grades, mentoring, models, outcomes, summary
from storage.db import Database
from storage.summary import Schedule, Summary
from tests.support.county import grade_move, pair
from tests.support.county import person as _person

TZ = ZoneInfo("Asia/Shanghai")
# Wednesday 25 November 2026, 10:00 in Shanghai.
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SINCE = datetime(2026, 11, 1, tzinfo=TZ)  # this month, county time


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=TZ)


@dataclass
class County:
    a: int
    b: int
    n: dict[int, int]  # hand number → nomination id
    mentors: dict[str, int]  # name → person id


# (township, channel, key group, education, status, created)
NOMINATIONS: dict[int, tuple[str, str, str, str | None, str, datetime]] = {
    1: ("a", "self", "veteran", "college", "in_pool", at(11, 10)),
    2: ("a", "mass", "wealth_leader", "high_school", "in_pool", at(10, 10)),
    3: ("a", "organization", "veteran", "bachelor", "vetting", at(11, 12)),
    4: ("a", "self", "doctor_teacher", None, "new", at(11, 20)),
    5: ("a", "mass", "veteran", "postgraduate", "elected", at(9, 1)),
    6: ("b", "self", "returning_graduate", "college", "in_pool", at(11, 2)),
    7: ("b", "organization", "coop_leader", "junior_or_below", "rejected", at(11, 3)),
    8: ("b", "self", "veteran", "bachelor", "adjusted", at(8, 1)),
}


async def build_county(db: Database) -> County:
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村"), ("木黄镇", "木黄村")])
        a = await geo.township_by_name(session, "青山镇")
        b = await geo.township_by_name(session, "木黄镇")
        assert a is not None and b is not None
        villages = {t.id: (await geo.list_villages(session, t.id))[0][0].id for t in (a, b)}
        township = {"a": a.id, "b": b.id}
        unreachable = {"unreachable_at": at(11, 1)}
        n: dict[int, int] = {}
        for number, (t, channel, group, education, status, created) in NOMINATIONS.items():
            extra = unreachable if number in (1, 7) else {}
            telegram_id = 5000 + number if number in (1, 2, 7) else None
            nomination = models.Nomination(
                person_id=await _person(session, f"候选人{number}", telegram_id, **extra),
                channel=channel,
                status=status,
                township_id=township[t],
                village_id=villages[township[t]],
                education=education,
                key_group=group,
                created_at=created,
            )
            session.add(nomination)
            await session.flush()
            n[number] = nomination.id
        mentors = {
            "甲": await _person(session, "导师甲", 6001),
            "乙": await _person(session, "导师乙", 6002),
            "丙": await _person(session, "导师丙", 6003, **unreachable),
        }
        for name, tid, slot in (
            ("甲", a.id, "township"),
            ("乙", a.id, "village"),
            ("丙", b.id, "village"),
        ):
            session.add(
                models.RoleGrant(
                    person_id=mentors[name], role="mentor", township_id=tid, mentor_slot=slot
                )
            )
        # Real target statuses: a past period's stocks are rebuilt from them.
        for number, event, when, status in (
            (1, "vetting_approved", at(11, 5), "in_pool"),
            (2, "vetting_approved", at(10, 20), "in_pool"),
            (5, "vetting_approved", at(9, 10), "in_pool"),
            (5, "elect", at(11, 15), "elected"),
            (6, "vetting_approved", at(11, 12), "in_pool"),
            (7, "vetting_rejected", at(11, 15), "rejected"),
            (8, "adjust_out", at(11, 20), "adjusted"),
        ):
            session.add(
                models.StatusChange(
                    nomination_id=n[number], to_status=status, event=event, at=when
                )
            )
        sep = at(9, 1)
        pairings: dict[str, int] = {}
        for key, number, mentor, slot, assigned, ended in (
            ("P1", 1, "甲", "township", sep, None),
            ("P2", 1, "乙", "village", sep, None),
            ("P3", 2, "甲", "township", sep, None),
            ("P4", 2, "乙", "village", at(11, 20), None),
            ("P5", 6, "丙", "village", sep, None),
            ("P6", 6, "甲", "township", sep, at(11, 10)),
            ("P7", 5, "丙", "township", sep, None),
        ):
            pairing = await pair(
                session, n[number], mentors[mentor], slot, assigned_at=assigned, ended_at=ended
            )
            pairings[key] = pairing.id
        owner = {"P1": 1, "P2": 1, "P3": 2, "P4": 2, "P6": 6, "P7": 5}
        for key, day in (
            ("P1", date(2026, 11, 20)),
            ("P1", date(2026, 10, 15)),
            ("P2", date(2026, 10, 1)),
            ("P3", date(2026, 10, 30)),
            ("P6", date(2026, 11, 3)),
            ("P7", date(2026, 11, 24)),
            ("P4", date(2026, 11, 25)),  # today: held although the period ends at 10:00
        ):
            session.add(
                models.TalkLog(
                    pairing_id=pairings[key],
                    nomination_id=n[owner[key]],
                    mentor_person_id=mentors["甲"],
                    talk_date=day,
                    mode="face",
                    topics={},
                )
            )
        # Talks inserted as rows, not through save_talk: the pairings' dates are recomputed.
        await session.flush()
        await mentoring.refresh_last_talks(session)
        for number, raised, resolved in (
            (1, at(11, 10), None),
            (2, at(10, 1), at(11, 12)),
            (6, at(11, 2), at(11, 3)),
            (6, at(9, 1), None),
        ):
            session.add(
                models.Difficulty(
                    nomination_id=n[number],
                    description="缺资金",
                    status="resolved" if resolved else "open",
                    raised_at=raised,
                    resolved_at=resolved,
                )
            )
        for number, kind, start, end in (
            (1, "intern", date(2026, 11, 1), None),
            (6, "grid", date(2026, 9, 1), date(2026, 10, 1)),
            (2, "hard_post", date(2026, 11, 30), None),
        ):
            session.add(
                models.PracticePost(
                    nomination_id=n[number], kind=kind, start_date=start, end_date=end
                )
            )
        for number, year, result, before, after in (
            (1, 2025, "excellent", 1, 2),
            (2, 2025, "competent", 1, 1),
            (6, 2024, "incompetent", 2, 1),
        ):
            session.add(grade_move(n[number], year, result, (before, after), (1, 0)))
        for kind, starts, township_id, invited in (
            ("order", at(11, 10), None, {1: True, 6: True, 2: False}),
            ("integrity", at(11, 12), a.id, {1: True}),
            ("order", at(10, 1), None, {1: True}),
            ("study_tour", at(12, 1), None, {1: False}),
        ):
            training = models.Training(
                kind=kind,
                topic="party_building",
                title="培训",
                place="县委党校",
                starts_at=starts,
                ends_at=starts + timedelta(hours=2),
                township_id=township_id,
                checkin_code="ABCDEF",
            )
            session.add(training)
            await session.flush()
            for number, attended in invited.items():
                session.add(
                    models.TrainingInvite(
                        training_id=training.id,
                        nomination_id=n[number],
                        rsvp="yes",
                        attended_at=starts if attended else None,
                    )
                )
        projects = {}
        for key, village, funds, status, leads in (
            ("PR1", villages[a.id], 30_000_000, "done", (1, 2)),
            ("PR2", villages[a.id], 22_330_000, "under_way", (1,)),
            ("PR3", villages[b.id], 1_000_000, "planned", (6, 1)),
        ):
            project = models.Project(village_id=village, name=key, funds_yuan=funds, status=status)
            session.add(project)
            await session.flush()
            projects[key] = project.id
            for number in leads:
                session.add(models.ProjectLead(project_id=project.id, nomination_id=n[number]))
        for key, day, income in (
            ("PR1", date(2026, 11, 10), 1_500_000),
            ("PR1", date(2026, 10, 1), 300_000),
            ("PR3", date(2026, 11, 25), 200_000),
        ):
            session.add(
                models.ProjectReport(project_id=projects[key], report_date=day, income_yuan=income)
            )
        for number, day in ((5, date(2026, 11, 15)), (6, date(2025, 6, 1))):
            session.add(
                models.Election(nomination_id=n[number], position="村委委员", elected_on=day)
            )
    return County(a.id, b.id, n, mentors)


async def _summary(db: Database, township_id: int | None) -> Summary:
    async with db.sessionmaker() as session:
        return await summary.build_summary(
            session,
            township_id=township_id,
            since=SINCE,
            until=NOW,
            now=NOW,
            tz=TZ,
            talk_every_days=30,
            talk_soon_days=7,
        )


async def test_county_summary_has_the_figures_counted_by_hand(db: Database) -> None:
    county = await build_county(db)
    s = await _summary(db, None)
    assert s.scope_name == "示例县"
    # Select.
    assert s.nominations == 5
    assert s.by_channel == {"self": 3, "organization": 2}
    assert s.by_key_group == {
        "veteran": 2,
        "doctor_teacher": 1,
        "returning_graduate": 1,
        "coop_leader": 1,
    }
    assert s.key_groups_ranked[0] == ("veteran", 2)
    assert s.college_or_higher == 3 and s.college_share == pytest.approx(0.6)
    assert s.by_status == {
        "in_pool": 3,
        "vetting": 1,
        "new": 1,
        "elected": 1,
        "rejected": 1,
        "adjusted": 1,
    }
    assert (s.pool, s.pool_college_or_higher, s.vetting_pending) == (3, 2, 1)
    assert (s.vetting_approved, s.vetting_rejected, s.adjusted_out) == (2, 1, 1)
    # Cultivate.
    assert s.trainings is not None
    assert (s.trainings.sessions, s.trainings.person_times) == (2, 3)
    assert s.trainings.integrity_visits == 1
    assert (s.pairings, s.cadres_paired) == (5, 3)
    assert s.posts_active == 1 and s.posts_active_by_kind == {"intern": 1}
    # Manage.
    assert (s.talks_held, s.talks_due_soon, s.talks_overdue) == (4, 1, 2)
    assert [(m.name, m.overdue) for m in s.overdue_mentors] == [("导师乙", 1), ("导师丙", 1)]
    assert (s.difficulties_raised, s.difficulties_resolved, s.difficulties_open) == (2, 2, 2)
    assert (s.grade_year, s.grade_promoted, s.grade_demoted, s.grade_stayed) == (2025, 1, 0, 1)
    # Use.
    assert (s.projects, s.projects_done, s.project_leads) == (3, 1, 3)
    assert s.funds_yuan == 53_330_000
    assert (s.income_yuan, s.income_total_yuan) == (1_700_000, 2_000_000)
    assert (s.elected, s.elected_total) == (1, 2)
    assert (s.unreachable_candidates, s.unreachable_mentors) == (1, 1)
    # Per township, for the chart.
    lines = {line.township_id: line for line in s.townships}
    assert (lines[county.a].talks_held, lines[county.a].talks_due_soon) == (3, 1)
    assert (lines[county.a].talks_overdue, lines[county.a].cadres_paired) == (1, 2)
    assert (lines[county.b].talks_held, lines[county.b].talks_overdue) == (1, 1)
    assert (lines[county.a].nominations, lines[county.a].pool) == (3, 2)
    # The funnel is the period's (issue 12: the chart's caption names the period): received
    # 1, 3, 4, 6, 7; vetted 1, 6, 7; into the pool 1, 6; a mentor given to 2 (P4); 5 elected.
    assert s.funnel == (
        ("nominated", 5),
        ("vetted", 3),
        ("pool", 2),
        ("paired", 1),
        ("elected", 1),
    )
    # Headline, "2+1" as groups and mentors, unknown education apart, villages covered.
    assert (s.selected, s.cadres_paired, s.mentors) == (2, 3, 3)
    assert s.education_unknown == 1
    assert s.structure == summary.PoolStructure(college_or_higher=2)
    assert (s.villages, s.villages_without_cadre, s.past) == (2, 0, False)


async def test_township_summary_counts_that_township_only(db: Database) -> None:
    county = await build_county(db)
    a = await _summary(db, county.a)
    assert a.scope_name == "青山镇"
    assert (a.nominations, a.pool, a.vetting_pending, a.vetting_approved) == (3, 2, 1, 1)
    assert a.trainings is not None
    assert (a.trainings.sessions, a.trainings.person_times) == (2, 2)
    assert (a.pairings, a.cadres_paired, a.talks_held) == (4, 2, 3)
    assert (a.talks_due_soon, a.talks_overdue) == (1, 1)
    assert [(m.name, m.overdue) for m in a.overdue_mentors] == [("导师乙", 1)]
    assert (a.projects, a.project_leads, a.funds_yuan) == (2, 2, 52_330_000)
    assert (a.income_yuan, a.income_total_yuan, a.elected, a.elected_total) == (
        1_500_000,
        1_800_000,
        1,
        1,
    )
    assert (a.unreachable_candidates, a.unreachable_mentors) == (1, 0)
    assert (a.grade_year, a.grade_promoted) == (2025, 1)
    b = await _summary(db, county.b)
    assert (b.nominations, b.pool, b.vetting_rejected, b.adjusted_out) == (2, 1, 1, 1)
    assert (b.projects, b.project_leads, b.income_yuan) == (1, 2, 200_000)
    assert (b.grade_year, b.grade_demoted) == (2024, 1)
    assert (b.unreachable_candidates, b.unreachable_mentors) == (0, 1)
    assert [line.township_id for line in b.townships] == [county.b]


async def test_summary_agrees_with_the_figures_of_the_other_modules(db: Database) -> None:
    """The summary's own (faster) queries keep storage.figures' and mentoring's definitions."""
    county = await build_county(db)
    for township_id in (None, county.a, county.b):
        s = await _summary(db, township_id)
        async with db.sessionmaker() as session:
            select_figures = await figures.select_figures(
                session, township_id=township_id, since=SINCE, until=NOW
            )
            talks = await mentoring.talk_counts(
                session,
                now=NOW,
                township_id=township_id,
                since=SINCE,
                until=datetime(2026, 11, 26, tzinfo=TZ),
            )
            difficulties = await mentoring.difficulty_counts(
                session, township_id=township_id, since=SINCE, until=NOW
            )
            moves = [
                m
                for m in await grades.move_counts(session, township_id=township_id)
                if m.year <= 2026
            ]
        total = select_figures.total
        assert (s.nominations, s.college_or_higher, s.pool) == (
            total.nominations,
            total.college_or_higher,
            total.pool,
        )
        assert dict(s.by_channel) == dict(total.by_channel)
        assert dict(s.by_status) == dict(total.by_status)
        assert (s.vetting_approved, s.vetting_rejected, s.adjusted_out) == (
            total.vetting_approved,
            total.vetting_rejected,
            total.adjusted_out,
        )
        assert s.pool_college_or_higher == total.pool_college_or_higher
        assert s.talks_held == sum(t.talks for t in talks)
        assert s.pairings == sum(t.pairings for t in talks)
        assert s.cadres_paired == sum(t.cadres_paired for t in talks)
        assert s.talks_due_soon == sum(t.due_soon for t in talks)
        assert s.talks_overdue == sum(t.overdue for t in talks)
        assert (s.difficulties_raised, s.difficulties_resolved, s.difficulties_open) == (
            sum(d.raised for d in difficulties),
            sum(d.resolved for d in difficulties),
            sum(d.open for d in difficulties),
        )
        # The latest assessment year up to the period's, and its moves.
        year = max((m.year for m in moves), default=None)
        assert s.grade_year == year and year is not None
        assert (s.grade_promoted, s.grade_demoted, s.grade_stayed) == (
            sum(m.promoted for m in moves if m.year == year),
            sum(m.demoted for m in moves if m.year == year),
            sum(m.stayed for m in moves if m.year == year),
        )


async def _outcomes_dated(db: Database, county: County, day: date) -> None:
    """One award, one media report and one election, dated `day`, for cadres of 青山镇."""
    async with db.sessionmaker.begin() as session:
        session.add(
            models.Award(nomination_id=county.n[1], kind="award", title="先进个人", awarded_on=day)
        )
        session.add(
            models.Publicity(
                nomination_id=county.n[2], outlet="铜仁日报", title="报道", published_on=day
            )
        )
        session.add(
            models.Election(nomination_id=county.n[1], position="村委委员", elected_on=day)
        )


async def test_outcomes_dated_today_count_in_a_period_ending_now(db: Database) -> None:
    """A period ending now (10:00 in the county) holds today's dated outcomes (finding 16)."""
    county = await build_county(db)
    await _outcomes_dated(db, county, NOW.astimezone(TZ).date())
    for township_id in (None, county.a):
        s = await _summary(db, township_id)
        assert (s.awards, s.publicity) == (1, 1)
        assert (s.elected, s.elected_total) == ((2, 3) if township_id is None else (2, 2))
    async with db.sessionmaker() as session:
        ending_now = await outcomes.outcome_figures(session, since=SINCE, until=NOW)
        ending_today = await outcomes.outcome_figures(
            session, since=SINCE, until=datetime(2026, 11, 25, tzinfo=TZ)
        )
    assert (ending_now.total.awards, ending_now.total.publicity) == (1, 1)
    assert (ending_now.total.elections, ending_now.total.elected) == (2, 2)
    # A period ending at today's midnight stops before today, as before.
    assert (ending_today.total.awards, ending_today.total.publicity) == (0, 0)
    assert ending_today.total.elections == 1


async def test_empty_county_summary(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
    s = await _summary(db, None)
    assert (s.nominations, s.pool, s.talks_held, s.projects, s.funds_yuan) == (0, 0, 0, 0, 0)
    assert s.college_share is None and s.pool_college_share is None
    assert s.grade_year is None and s.overdue_mentors == ()
    assert summary.key_figures(s)["pool"] == 0


def test_key_figures_and_changes() -> None:
    current = {"pool": 10, "talks_overdue": 2, "funds_yuan": 5}
    assert summary.changes(current, None) == {}
    assert summary.changes(current, {"pool": 7, "talks_overdue": 4, "other": 1}) == {
        "pool": 3,
        "talks_overdue": -2,
    }
    schedule = Schedule("weekly", 0, last_figures={"scopes": {"county": {"pool": 7}}})
    assert summary.previous_figures(schedule, "county") == {"pool": 7}
    assert summary.previous_figures(schedule, "township:3") is None
    assert summary.previous_figures(None, "county") is None


# -- schedules and periods (no database) ------------------------------------------------------

WEEKLY = Schedule("weekly", 0, 8 * 60 + 30)
MONTHLY = Schedule("monthly", 1, 8 * 60 + 30)


def test_period_keys_follow_iso_weeks_and_months() -> None:
    assert summary.period_key("weekly", date(2026, 11, 23)) == "2026-W48"
    assert summary.period_key("weekly", date(2027, 1, 1)) == "2026-W53"
    assert summary.period_key("weekly", date(2025, 12, 29)) == "2026-W01"
    assert summary.period_key("monthly", date(2026, 11, 30)) == "2026-11"


def test_due_period_is_county_time_not_utc() -> None:
    # Monday 08:30 in Shanghai is Monday 00:30 UTC.
    assert summary.due_period(WEEKLY, datetime(2026, 11, 23, 0, 29, tzinfo=UTC), TZ) is None
    assert summary.due_period(WEEKLY, datetime(2026, 11, 23, 0, 30, tzinfo=UTC), TZ) == "2026-W48"
    # Monday 00:30 in Shanghai is still Sunday 16:30 UTC: already the new week.
    midnight = Schedule("weekly", 0, 0)
    sunday_utc = datetime(2026, 11, 22, 16, 30, tzinfo=UTC)
    assert summary.due_period(midnight, sunday_utc, TZ) == "2026-W48"
    assert summary.due_period(midnight, sunday_utc - timedelta(hours=1), TZ) == "2026-W47"
    done = Schedule("weekly", 0, 0, last_period="2026-W48")
    assert summary.due_period(done, sunday_utc, TZ) is None
    assert summary.due_period(Schedule("off", 0), sunday_utc, TZ) is None
    # Monthly on the 1st: 1 December 00:30 UTC is 08:30 in Shanghai.
    assert summary.due_period(MONTHLY, datetime(2026, 12, 1, 0, 30, tzinfo=UTC), TZ) == "2026-12"
    assert summary.due_period(MONTHLY, datetime(2026, 12, 1, 0, 29, tzinfo=UTC), TZ) is None
    # A bot that was down on Monday catches up on Wednesday of the same week.
    assert summary.due_period(WEEKLY, NOW, TZ) == "2026-W48"


def test_reported_and_current_periods() -> None:
    since, until = summary.reported_period("weekly", NOW, TZ)
    assert (since, until) == (datetime(2026, 11, 16, tzinfo=TZ), datetime(2026, 11, 23, tzinfo=TZ))
    since, until = summary.reported_period("monthly", datetime(2027, 1, 1, 1, tzinfo=UTC), TZ)
    assert (since, until) == (datetime(2026, 12, 1, tzinfo=TZ), datetime(2027, 1, 1, tzinfo=TZ))
    assert summary.current_period("weekly", NOW, TZ) == (datetime(2026, 11, 23, tzinfo=TZ), NOW)
    assert summary.current_period("monthly", NOW, TZ)[0] == datetime(2026, 11, 1, tzinfo=TZ)


def test_next_moment() -> None:
    sent = Schedule("weekly", 0, 8 * 60 + 30, last_period="2026-W48")
    assert summary.next_moment(sent, NOW, TZ) == datetime(2026, 11, 30, 8, 30, tzinfo=TZ)
    friday = Schedule("weekly", 4, 18 * 60)
    assert summary.next_moment(friday, NOW, TZ) == datetime(2026, 11, 27, 18, 0, tzinfo=TZ)
    assert summary.next_moment(Schedule("monthly", 28, 7 * 60), NOW, TZ) == datetime(
        2026, 11, 28, 7, 0, tzinfo=TZ
    )
    assert summary.next_moment(Schedule("off", 0), NOW, TZ) is None


def test_defaults_and_checks() -> None:
    county = summary.default_schedule(county_official=True, township_official=True)
    assert county is not None and (county.cadence, county.day, county.at_minute) == (
        "monthly",
        1,
        510,
    )
    township = summary.default_schedule(county_official=False, township_official=True)
    assert township is not None and (township.cadence, township.day) == ("weekly", 0)
    assert summary.default_schedule(county_official=False, township_official=False) is None
    for bad in (("weekly", 7, 0), ("monthly", 29, 0), ("monthly", 0, 0), ("hourly", 1, 0)):
        with pytest.raises(ValueError):
            summary.check_schedule(*bad)
    summary.check_schedule("monthly", 28, 18 * 60)


async def test_claim_period_once_and_schedule_kept(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        person = await _person(session, "县干部", 7001)
    for expected in (True, False):
        async with db.sessionmaker.begin() as session:
            assert await summary.claim_period(session, person, "2026-11", MONTHLY) is expected
    async with db.sessionmaker.begin() as session:
        await summary.record_figures(session, person, {"county": {"pool": 3}})
        await summary.save_schedule(session, person, Schedule("weekly", 4, 18 * 60))
    async with db.sessionmaker() as session:
        stored = await summary.load_schedule(session, person)
    assert stored is not None
    assert (stored.cadence, stored.day, stored.at_minute) == ("weekly", 4, 1080)
    # The period already sent and its figures survive a change of schedule.
    assert stored.last_period == "2026-11"
    assert summary.previous_figures(stored, "county") == {"pool": 3}
    async with db.sessionmaker.begin() as session:
        assert await summary.claim_period(session, person, "2026-W48", stored) is True


# -- the command line -------------------------------------------------------------------------


def test_cli_prints_the_summary_and_writes_the_chart(
    sqlite_database: Database, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import asyncio

    from bot import cli_summary
    from tests.conftest import make_settings

    async def prepare() -> None:
        await build_county(sqlite_database)
        await sqlite_database.close()

    asyncio.run(prepare())
    parser = argparse.ArgumentParser()
    cli_summary.add_parser(parser.add_subparsers(dest="command"))
    settings = make_settings(sqlite_database)
    chart = tmp_path / "chart.png"
    args = parser.parse_args(
        ["summary", "--scope", "township:青山镇", "--since", "2026-11-01", "--until",
         "2026-11-30", "--chart", str(chart)]
    )  # fmt: skip
    assert cli_summary.run(args, settings) == 0
    out = capsys.readouterr().out
    assert "青山镇村级后备干部工作简报" in out and "<b>" not in out
    assert "统计期：2026年11月1日—2026年11月30日" in out
    assert "后备干部资源库 2 名" in out
    assert chart.read_bytes().startswith(b"\x89PNG")
    args = parser.parse_args(["summary", "--html"])
    assert cli_summary.run(args, settings) == 0
    assert "<b>示例县村级后备干部工作简报</b>" in capsys.readouterr().out
    for bad in (["--scope", "township:无此镇"], ["--scope", "city"]):
        assert cli_summary.run(parser.parse_args(["summary", *bad]), settings) == 1
    assert "无此镇" in capsys.readouterr().err


def test_cli_default_period_counts_outcomes_dated_today(
    sqlite_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cadrebot summary` with no dates (this month so far) holds today's outcomes."""
    import argparse
    import asyncio

    from bot import cli_summary
    from tests.conftest import make_settings

    async def prepare() -> None:
        county = await build_county(sqlite_database)
        await _outcomes_dated(sqlite_database, county, datetime.now(TZ).date())
        await sqlite_database.close()

    asyncio.run(prepare())
    parser = argparse.ArgumentParser()
    cli_summary.add_parser(parser.add_subparsers(dest="command"))
    settings = make_settings(sqlite_database)
    assert cli_summary.run(parser.parse_args(["summary"]), settings) == 0
    out = capsys.readouterr().out
    assert "本期表彰后备干部 1 人次，先进事迹获媒体宣传报道 1 篇。" in out
