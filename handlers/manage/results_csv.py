"""Annual results from a CSV file (``id,year,result``): every row checked, then all applied or
none, answered with a report. Sent outside any flow, or in the middle of /results (which it
ends)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from handlers import notices
from handlers.chat.flow import Chat, Turn
from handlers.chat.screen import Screen
from handlers.chat.screens import Act, Upload, screen
from handlers.manage.kinds import OFFICIALS
from storage import grades
from storage.grades import CsvFileError, GradeError, ImportReport
from storage.people import Actor
from storage.rules.ladder import EARLIEST_YEAR, LadderPolicy, Result

# Outside /results only files that say they are CSV are taken: other documents are not ours.
CSV = Upload(extensions=("csv",), mime_types=("text/csv",))
CSV_MIME_TYPES = frozenset({"text/csv", "text/comma-separated-values", "application/csv"})
LIMITS = {"max_kb": grades.MAX_CSV_BYTES // 1024, "max_rows": grades.MAX_CSV_ROWS}


def _looks_like_csv(turn: Turn) -> bool:
    return turn.file_name.lower().endswith(".csv") or turn.mime_type.lower() in CSV_MIME_TYPES


def _file_error(error: CsvFileError) -> Screen:
    return Screen("grades/csv_file_error", {"code": error.code, "params": error.params, **LIMITS})


def _groups(report: ImportReport) -> list[dict[str, Any]]:
    """Bad rows grouped by reason, in the order of their first line."""
    groups: dict[str, dict[str, Any]] = {}
    for error in report.errors:
        group = groups.setdefault(error.code, {"code": error.code, "items": []})
        group["items"].append({"line": error.line, "other": error.other_line})
    for group in groups.values():
        group["count"] = len(group["items"])
    return list(groups.values())


def _report(report: ImportReport, this_year: int) -> Screen:
    if not report.ok:
        values = {"groups": _groups(report), "bad": report.bad_lines}
        return Screen(
            "grades/csv_rejected", {**values, "earliest": EARLIEST_YEAR, "latest": this_year}
        )
    moves = [a.move for a in report.applied]
    kinds = Counter(m.kind for m in moves)
    results = Counter(m.result for m in moves)
    return Screen(
        "grades/csv_applied",
        {
            "applied": len(moves),
            **{kind: kinds[kind] for kind in ("promoted", "demoted", "stayed")},
            "by_result": [(r.value, results[r]) for r in Result],
            "bonus_yuan": sum(m.bonus_yuan for m in moves),
        },
    )


async def import_file(chat: Chat, actor: Actor, turn: Turn) -> Screen:
    """Check the file, fetch it, apply every row or none; the report to show."""
    if not _looks_like_csv(turn):
        return _file_error(CsvFileError("csv.not_csv"))
    if turn.file_size > grades.MAX_CSV_BYTES:
        # Refused before fetching: the declared size is enough to know.
        return _file_error(CsvFileError("csv.too_big", max_kb=LIMITS["max_kb"]))
    policy: LadderPolicy = chat.service("grade_policy")
    this_year = datetime.now(chat.settings.tz).year
    data = await chat.download(turn)
    try:
        parsed = grades.parse_results_csv(data, this_year=this_year)
    except CsvFileError as error:
        return _file_error(error)
    try:
        async with chat.session() as session:
            report = await grades.import_results(
                session, actor, parsed, policy, this_year=this_year, now=datetime.now(UTC)
            )
            for applied in report.applied:
                await notices.assessed(chat, session, applied)
    except GradeError as error:
        # A result recorded by someone else while this file was applied: nothing was kept.
        return Screen("grades/error", {"code": error.code, "params": error.params})
    return _report(report, this_year)


@screen(upload=CSV, needs=frozenset(OFFICIALS))
async def upload(act: Act) -> Screen:
    """A CSV file sent outside any flow (inside /results the flow takes any file)."""
    assert act.turn is not None
    return await import_file(act.chat, act.actor, act.turn)


MENUS = (upload,)
