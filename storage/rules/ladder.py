"""The 13-grade ladder (职级管理) as plain functions: the policy, one year applied, what is next.

The rules themselves are documented in `storage/data/grade_policy.toml`, next to the numbers
they use. No SQL, no Telegram: the storage layer and the handlers call these.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "data" / "grade_policy.toml"
GRADES = 13
# Assessment years accepted at all; the upper bound is the current year (Asia/Shanghai).
EARLIEST_YEAR = 2000


class Result(StrEnum):
    """An annual assessment result (年度考核结果), best first."""

    EXCELLENT = "excellent"  # 优秀
    COMPETENT = "competent"  # 称职
    BASIC = "basic"  # 基本称职
    INCOMPETENT = "incompetent"  # 不称职


# What officials type in a CSV file: the official Chinese terms or our codes. Input
# vocabulary, not output: what a person reads comes from the templates.
RESULT_ALIASES: Mapping[str, Result] = MappingProxyType(
    {
        "优秀": Result.EXCELLENT,
        "称职": Result.COMPETENT,
        "基本称职": Result.BASIC,
        "不称职": Result.INCOMPETENT,
        **{r.value: r for r in Result},
    }
)

IncompetentAction = Literal["demote", "reset"]
TopGradeYears = Literal["count", "hold"]
SubsidyPeriod = Literal["month", "year"]
MoveKind = Literal["promoted", "demoted", "stayed"]


class PolicyError(ValueError):
    """The policy file is unusable. The message is one line for the operator; `code` for tests."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class GradeRule:
    grade: int
    # Credited years needed to leave this grade upwards; None at the top grade.
    years_to_promote: int | None
    subsidy_yuan: int


@dataclass(frozen=True, slots=True)
class LadderPolicy:
    grades: tuple[GradeRule, ...]
    credits: Mapping[Result, int]
    excellent_bonus_yuan: int
    incompetent: IncompetentAction
    top_grade_years: TopGradeYears
    subsidy_period: SubsidyPeriod

    @property
    def top(self) -> int:
        return len(self.grades)

    def rule(self, grade: int) -> GradeRule:
        if not 1 <= grade <= self.top:
            raise ValueError(f"grade {grade} is not on the ladder (1–{self.top})")
        return self.grades[grade - 1]

    def subsidy(self, grade: int) -> int:
        return self.rule(grade).subsidy_yuan

    def bonus(self, result: Result) -> int:
        return self.excellent_bonus_yuan if result == Result.EXCELLENT else 0


@dataclass(frozen=True, slots=True)
class LadderState:
    grade: int
    years: int


def move_kind(from_grade: int, to_grade: int) -> MoveKind:
    """Up, down or level: for a move computed here and for one read back from the database."""
    if to_grade > from_grade:
        return "promoted"
    return "demoted" if to_grade < from_grade else "stayed"


def initial_state() -> LadderState:
    """Where everyone starts when they enter the reserve pool (入库)."""
    return LadderState(grade=1, years=0)


@dataclass(frozen=True, slots=True)
class Move:
    """One result applied: from where to where, and the money that goes with it."""

    result: Result
    from_grade: int
    from_years: int
    to_grade: int
    to_years: int
    # The grade's standing subsidy after the move, per the policy's subsidy_period.
    subsidy_yuan: int
    # One-off subsidy for this year's result (excellent only, by default).
    bonus_yuan: int

    @property
    def kind(self) -> MoveKind:
        return move_kind(self.from_grade, self.to_grade)

    @property
    def reset(self) -> bool:
        """Years went back to zero without a promotion (incompetent)."""
        return self.kind != "promoted" and self.to_years == 0 and self.from_years > 0

    @property
    def state(self) -> LadderState:
        return LadderState(self.to_grade, self.to_years)


def _check_state(state: LadderState, policy: LadderPolicy) -> None:
    if not 1 <= state.grade <= policy.top or state.years < 0:
        raise ValueError(f"not a ladder state: grade {state.grade}, years {state.years}")


def apply_result(state: LadderState, result: Result, policy: LadderPolicy) -> Move:
    """Apply one annual result to a state; at most one grade up or down per year."""
    _check_state(state, policy)
    grade, years = state.grade, state.years
    if result == Result.INCOMPETENT:
        if policy.incompetent == "demote" and grade > 1:
            to_grade, to_years = grade - 1, 0
        else:  # "reset", or demotion from grade 1: nowhere lower to go
            to_grade, to_years = grade, 0
    else:
        credit = policy.credits[result]
        needed = policy.rule(grade).years_to_promote
        if needed is None:  # the top grade
            to_grade = grade
            to_years = years + credit if policy.top_grade_years == "count" else years
        elif credit > 0 and years + credit >= needed:
            to_grade, to_years = grade + 1, 0
        else:
            to_grade, to_years = grade, years + credit
    return Move(
        result=result,
        from_grade=grade,
        from_years=years,
        to_grade=to_grade,
        to_years=to_years,
        subsidy_yuan=policy.subsidy(to_grade),
        bonus_yuan=policy.bonus(result),
    )


@dataclass(frozen=True, slots=True)
class NextStep:
    """What it takes to reach the next grade, for /grade. `at_top`: nothing further."""

    at_top: bool
    next_grade: int | None
    years_needed: int
    years_to_go: int
    # Annual results of each kind needed from now on, if every year had that result.
    competent_years: int
    excellent_years: int
    next_subsidy_yuan: int | None


def next_step(state: LadderState, policy: LadderPolicy) -> NextStep:
    _check_state(state, policy)
    needed = policy.rule(state.grade).years_to_promote
    if needed is None:
        return NextStep(True, None, 0, 0, 0, 0, None)
    to_go = max(needed - state.years, 0)
    # A year counts at least once toward the next grade even if the years already suffice.
    years_left = max(to_go, 1)
    return NextStep(
        at_top=False,
        next_grade=state.grade + 1,
        years_needed=needed,
        years_to_go=to_go,
        competent_years=math.ceil(years_left / policy.credits[Result.COMPETENT]),
        excellent_years=math.ceil(years_left / policy.credits[Result.EXCELLENT]),
        next_subsidy_yuan=policy.subsidy(state.grade + 1),
    )


def parse_result(raw: str) -> Result | None:
    """A result as typed in a CSV cell (优秀/称职/基本称职/不称职 or the codes), else None."""
    cleaned = raw.strip().replace("\u3000", "").lower()
    return RESULT_ALIASES.get(cleaned)


def valid_year(year: int, this_year: int) -> bool:
    """An assessment year we accept: not before EARLIEST_YEAR, not in the future."""
    return EARLIEST_YEAR <= year <= this_year


# ---------------------------------------------------------------------------------------------
# Loading and checking the policy file.

_TOP_KEYS = frozenset({"subsidy_period", "top_grade_years", "results", "grades"})
_RESULT_KEYS: Mapping[Result, frozenset[str]] = MappingProxyType(
    {
        Result.EXCELLENT: frozenset({"credit", "bonus_yuan"}),
        Result.COMPETENT: frozenset({"credit"}),
        Result.BASIC: frozenset({"credit"}),
        Result.INCOMPETENT: frozenset({"action"}),
    }
)
_GRADE_KEYS = frozenset({"grade", "years_to_promote", "subsidy_yuan"})


def _int(value: object, *, minimum: int) -> int | None:
    # bool is an int in Python; `true` in TOML is not a number of years.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return None
    return value


def _unknown(table: Mapping[str, Any], allowed: frozenset[str], where: str, source: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise PolicyError(
            "policy.unknown_key",
            f"{source}: {where}: unknown key(s) {', '.join(extra)}; "
            f"allowed: {', '.join(sorted(allowed))}",
        )


def parse_policy(data: Mapping[str, Any], source: str = "grade policy") -> LadderPolicy:
    """Check a policy read from TOML; any problem is one PolicyError naming the key."""
    _unknown(dict(data), _TOP_KEYS, "top level", source)

    period = data.get("subsidy_period", "month")
    if period not in ("month", "year"):
        raise PolicyError("policy.period", f'{source}: subsidy_period must be "month" or "year"')
    top_years = data.get("top_grade_years", "count")
    if top_years not in ("count", "hold"):
        raise PolicyError("policy.top", f'{source}: top_grade_years must be "count" or "hold"')

    results = data.get("results")
    if not isinstance(results, dict):
        raise PolicyError("policy.results", f"{source}: a [results.*] table is required")
    known = {r.value for r in Result}
    unknown = sorted(set(results) - known)
    if unknown:
        raise PolicyError(
            "policy.result_unknown",
            f"{source}: unknown result(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
        )
    missing = [r.value for r in Result if r.value not in results]
    if missing:
        raise PolicyError("policy.result_missing", f"{source}: missing [results.{missing[0]}]")
    for result, allowed in _RESULT_KEYS.items():
        if not isinstance(results[result.value], dict):
            raise PolicyError(
                "policy.results", f"{source}: results.{result.value} must be a table"
            )
        _unknown(results[result.value], allowed, f"results.{result.value}", source)

    credits: dict[Result, int] = {}
    for result in (Result.EXCELLENT, Result.COMPETENT, Result.BASIC):
        credit = _int(results[result.value].get("credit"), minimum=0)
        if credit is None:
            raise PolicyError(
                "policy.credit",
                f"{source}: results.{result.value}.credit must be a whole number of years ≥ 0",
            )
        credits[result] = credit
    if credits[Result.COMPETENT] < 1:
        raise PolicyError(
            "policy.credit", f"{source}: results.competent.credit must be at least 1"
        )
    if not credits[Result.EXCELLENT] >= credits[Result.COMPETENT] >= credits[Result.BASIC]:
        raise PolicyError(
            "policy.credit",
            f"{source}: credits must not rise as results get worse "
            "(excellent ≥ competent ≥ basic)",
        )
    credits[Result.INCOMPETENT] = 0

    bonus = _int(results[Result.EXCELLENT.value].get("bonus_yuan", 0), minimum=0)
    if bonus is None:
        raise PolicyError(
            "policy.bonus", f"{source}: results.excellent.bonus_yuan must be yuan ≥ 0"
        )
    action = results[Result.INCOMPETENT.value].get("action")
    if action not in ("demote", "reset"):
        raise PolicyError(
            "policy.action",
            f'{source}: results.incompetent.action must be "demote" or "reset"',
        )

    grades = data.get("grades")
    if not isinstance(grades, list) or len(grades) != GRADES:
        count = len(grades) if isinstance(grades, list) else 0
        raise PolicyError(
            "policy.grades_count",
            f"{source}: exactly {GRADES} [[grades]] tables are needed, found {count}",
        )
    rules: list[GradeRule] = []
    for index, table in enumerate(grades, start=1):
        if not isinstance(table, dict):
            raise PolicyError("policy.grade_order", f"{source}: grades[{index}] is not a table")
        _unknown(table, _GRADE_KEYS, f"grade {index}", source)
        if table.get("grade") != index or isinstance(table.get("grade"), bool):
            raise PolicyError(
                "policy.grade_order",
                f"{source}: the grades must be listed 1 to {GRADES} in order; "
                f"table {index} says grade = {table.get('grade')!r}",
            )
        years = table.get("years_to_promote")
        if index < GRADES:
            if _int(years, minimum=1) is None:
                raise PolicyError(
                    "policy.years",
                    f"{source}: grade {index}: years_to_promote must be a whole number ≥ 1",
                )
        elif years is not None:
            raise PolicyError(
                "policy.years",
                f"{source}: grade {GRADES} is the top: it takes no years_to_promote",
            )
        subsidy = _int(table.get("subsidy_yuan"), minimum=0)
        if subsidy is None:
            raise PolicyError(
                "policy.subsidy", f"{source}: grade {index}: subsidy_yuan must be yuan ≥ 0"
            )
        rules.append(GradeRule(index, years, subsidy))

    return LadderPolicy(
        grades=tuple(rules),
        credits=MappingProxyType(credits),
        excellent_bonus_yuan=bonus,
        incompetent=action,
        top_grade_years=top_years,
        subsidy_period=period,
    )


def load_policy(path: Path | str | None = None) -> LadderPolicy:
    """Read and check the policy file (default: storage/data/grade_policy.toml)."""
    file = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise PolicyError("policy.missing", f"{file}: grade policy file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("policy.syntax", f"{file}: not valid TOML: {exc}") from None
    return parse_policy(data, str(file))
