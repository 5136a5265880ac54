"""The grade ladder rules: every grade × result, the edges, the policy file's checks."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from storage.rules.ladder import (
    DEFAULT_POLICY_PATH,
    EARLIEST_YEAR,
    LadderPolicy,
    LadderState,
    PolicyError,
    Result,
    apply_result,
    initial_state,
    load_policy,
    next_step,
    parse_policy,
    parse_result,
    valid_year,
)

E, C, B, N = Result.EXCELLENT, Result.COMPETENT, Result.BASIC, Result.INCOMPETENT
POLICY = load_policy()
RAW: dict[str, Any] = tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def subsidy(grade: int) -> int:
    """The default file's subsidies: 200 yuan a month at grade 1, 50 more per grade."""
    return 200 + 50 * (grade - 1)


# Default policy, from 0 years in each grade: (to_grade, to_years) for
# excellent, competent, basic, incompetent. Grades 1–4 need 1 year, 5–8 two, 9–12 three;
# excellent credits 2 years, competent 1, basic 0; incompetent goes down one grade.
FROM_ZERO: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((2, 0), (2, 0), (1, 0), (1, 0)),
    2: ((3, 0), (3, 0), (2, 0), (1, 0)),
    3: ((4, 0), (4, 0), (3, 0), (2, 0)),
    4: ((5, 0), (5, 0), (4, 0), (3, 0)),
    5: ((6, 0), (5, 1), (5, 0), (4, 0)),
    6: ((7, 0), (6, 1), (6, 0), (5, 0)),
    7: ((8, 0), (7, 1), (7, 0), (6, 0)),
    8: ((9, 0), (8, 1), (8, 0), (7, 0)),
    9: ((9, 2), (9, 1), (9, 0), (8, 0)),
    10: ((10, 2), (10, 1), (10, 0), (9, 0)),
    11: ((11, 2), (11, 1), (11, 0), (10, 0)),
    12: ((12, 2), (12, 1), (12, 0), (11, 0)),
    13: ((13, 2), (13, 1), (13, 0), (12, 0)),
}

# One credited year short of promotion (grades needing 2 or 3 years), and the top grade with
# years already counted: the same four results.
ONE_SHORT: dict[tuple[int, int], tuple[tuple[int, int], ...]] = {
    (5, 1): ((6, 0), (6, 0), (5, 1), (4, 0)),
    (6, 1): ((7, 0), (7, 0), (6, 1), (5, 0)),
    (7, 1): ((8, 0), (8, 0), (7, 1), (6, 0)),
    (8, 1): ((9, 0), (9, 0), (8, 1), (7, 0)),
    (9, 2): ((10, 0), (10, 0), (9, 2), (8, 0)),
    (10, 2): ((11, 0), (11, 0), (10, 2), (9, 0)),
    (11, 2): ((12, 0), (12, 0), (11, 2), (10, 0)),
    (12, 2): ((13, 0), (13, 0), (12, 2), (11, 0)),
    # Two short of three: excellent's double year promotes, a competent year does not.
    (9, 1): ((10, 0), (9, 2), (9, 1), (8, 0)),
    (12, 1): ((13, 0), (12, 2), (12, 1), (11, 0)),
    # The top: years keep counting ("count"), incompetent still demotes.
    (13, 5): ((13, 7), (13, 6), (13, 5), (12, 0)),
}


def _cases(
    table: dict[Any, tuple[tuple[int, int], ...]],
) -> list[Any]:
    cases = []
    for key, expected in table.items():
        grade, years = (key, 0) if isinstance(key, int) else key
        for result, (to_grade, to_years) in zip((E, C, B, N), expected, strict=True):
            cases.append(
                pytest.param(
                    grade, years, result, to_grade, to_years, id=f"g{grade}y{years}-{result}"
                )
            )
    return cases


@pytest.mark.parametrize(
    ("grade", "years", "result", "to_grade", "to_years"), _cases(FROM_ZERO) + _cases(ONE_SHORT)
)
def test_every_grade_and_result(
    grade: int, years: int, result: Result, to_grade: int, to_years: int
) -> None:
    move = apply_result(LadderState(grade, years), result, POLICY)
    assert (move.from_grade, move.from_years) == (grade, years)
    assert (move.to_grade, move.to_years) == (to_grade, to_years)
    assert move.subsidy_yuan == subsidy(to_grade)
    assert move.bonus_yuan == (1000 if result == E else 0)
    expected_kind = "promoted" if to_grade > grade else "demoted" if to_grade < grade else "stayed"
    assert move.kind == expected_kind
    assert move.state == LadderState(to_grade, to_years)


def test_the_tables_cover_every_grade_and_result() -> None:
    assert set(FROM_ZERO) == set(range(1, 14))
    assert all(len(row) == len(Result) for row in [*FROM_ZERO.values(), *ONE_SHORT.values()])


def test_grade_one_incompetent_resets_years_and_stays() -> None:
    move = apply_result(LadderState(1, 0), N, POLICY)
    assert (move.to_grade, move.to_years, move.kind, move.reset) == (1, 0, "stayed", False)
    # Years can only be 0 at grade 1 under the default policy (1 year promotes), but a policy
    # with a longer first grade keeps years there: incompetent clears them.
    slow = _variant(lambda d: d["grades"][0].update(years_to_promote=3))
    move = apply_result(LadderState(1, 2), N, slow)
    assert (move.to_grade, move.to_years, move.kind, move.reset) == (1, 0, "stayed", True)


def test_top_grade_is_never_left_upwards() -> None:
    state = LadderState(13, 0)
    for _ in range(5):
        move = apply_result(state, E, POLICY)
        assert move.to_grade == 13
        state = move.state
    assert state.years == 10


def test_top_grade_hold_keeps_years() -> None:
    hold = _variant(lambda d: d.update(top_grade_years="hold"))
    assert apply_result(LadderState(13, 0), E, hold).state == LadderState(13, 0)
    assert apply_result(LadderState(13, 3), C, hold).state == LadderState(13, 3)
    assert apply_result(LadderState(13, 3), N, hold).state == LadderState(12, 0)


@pytest.mark.parametrize("grade", range(1, 14))
def test_incompetent_reset_mode_keeps_the_grade(grade: int) -> None:
    reset = _variant(lambda d: d["results"]["incompetent"].update(action="reset"))
    move = apply_result(LadderState(grade, 1), N, reset)
    assert (move.to_grade, move.to_years, move.kind, move.reset) == (grade, 0, "stayed", True)
    assert move.subsidy_yuan == subsidy(grade)


def test_basic_never_promotes_even_when_years_already_suffice() -> None:
    # After a policy change shortened grade 9, years on record may exceed the threshold.
    move = apply_result(LadderState(9, 3), B, POLICY)
    assert move.state == LadderState(9, 3)
    assert apply_result(LadderState(9, 3), C, POLICY).state == LadderState(10, 0)


def test_promotion_is_one_grade_and_credit_is_not_carried() -> None:
    triple = _variant(lambda d: d["results"]["excellent"].update(credit=5))
    assert apply_result(LadderState(1, 0), E, triple).state == LadderState(2, 0)


def test_bad_state_is_refused() -> None:
    with pytest.raises(ValueError):
        apply_result(LadderState(0, 0), C, POLICY)
    with pytest.raises(ValueError):
        apply_result(LadderState(14, 0), C, POLICY)
    with pytest.raises(ValueError):
        apply_result(LadderState(3, -1), C, POLICY)


def test_initial_state() -> None:
    assert initial_state() == LadderState(1, 0)


@pytest.mark.parametrize(
    ("grade", "years", "needed", "to_go", "competent", "excellent"),
    [
        (1, 0, 1, 1, 1, 1),
        (4, 0, 1, 1, 1, 1),
        (5, 0, 2, 2, 2, 1),
        (5, 1, 2, 1, 1, 1),
        (9, 0, 3, 3, 3, 2),
        (9, 1, 3, 2, 2, 1),
        (12, 2, 3, 1, 1, 1),
        # Years already enough (a policy change): one more counting year promotes.
        (9, 4, 3, 0, 1, 1),
    ],
)
def test_next_step(
    grade: int, years: int, needed: int, to_go: int, competent: int, excellent: int
) -> None:
    step = next_step(LadderState(grade, years), POLICY)
    assert not step.at_top
    assert step.next_grade == grade + 1
    assert (step.years_needed, step.years_to_go) == (needed, to_go)
    assert (step.competent_years, step.excellent_years) == (competent, excellent)
    assert step.next_subsidy_yuan == subsidy(grade + 1)


def test_next_step_at_the_top() -> None:
    step = next_step(LadderState(13, 4), POLICY)
    assert step.at_top and step.next_grade is None and step.next_subsidy_yuan is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("优秀", E),
        (" 称职 ", C),
        ("基本称职", B),
        ("不称职", N),
        ("\u3000优秀\u3000", E),
        ("excellent", E),
        ("Competent", C),
        ("BASIC", B),
        ("incompetent", N),
        ("良好", None),
        ("", None),
        ("excellent!", None),
    ],
)
def test_parse_result(raw: str, expected: Result | None) -> None:
    assert parse_result(raw) == expected


def test_valid_year() -> None:
    assert valid_year(EARLIEST_YEAR, 2026) and valid_year(2026, 2026)
    assert not valid_year(EARLIEST_YEAR - 1, 2026) and not valid_year(2027, 2026)


# -- the policy file --------------------------------------------------------------------------


def _variant(change: Any) -> LadderPolicy:
    data = copy.deepcopy(RAW)
    change(data)
    return parse_policy(data)


def test_default_policy_values() -> None:
    assert POLICY.top == 13
    assert [g.years_to_promote for g in POLICY.grades] == [1] * 4 + [2] * 4 + [3] * 4 + [None]
    assert POLICY.credits[E] == 2 and POLICY.credits[C] == 1 and POLICY.credits[B] == 0
    assert POLICY.excellent_bonus_yuan == 1000
    assert POLICY.incompetent == "demote"
    assert POLICY.top_grade_years == "count"
    assert POLICY.subsidy_period == "month"


def _drop(key: str) -> Any:
    return lambda d: d.pop(key)


def _set(where: str, **values: Any) -> Any:
    """A change that updates one table of the policy: "" the top, "grades.2", "results.basic"."""

    def change(data: Any) -> None:
        for part in filter(None, where.split(".")):
            data = data[int(part)] if part.isdigit() else data[part]
        data.update(values)

    return change


# (id, change, error code, words the message must name)
POLICY_ERRORS: list[tuple[str, Any, str, str]] = [
    ("12", lambda d: d["grades"].pop(), "policy.grades_count", "found 12"),
    ("14", lambda d: d["grades"].append(dict(d["grades"][-1])), "policy.grades_count", "found 14"),
    ("no-grades", _drop("grades"), "policy.grades_count", "found 0"),
    ("order", _set("grades.4", grade=7), "policy.grade_order", "grade = 7"),
    ("0y", _set("grades.4", years_to_promote=0), "policy.years", "grade 5"),
    ("-1", _set("grades.2", years_to_promote=-1), "policy.years", "grade 3"),
    ("float", _set("grades.2", years_to_promote=1.5), "policy.years", "grade 3"),
    ("bool", _set("grades.2", years_to_promote=True), "policy.years", "grade 3"),
    ("none", lambda d: d["grades"][2].pop("years_to_promote"), "policy.years", "grade 3"),
    ("top", _set("grades.12", years_to_promote=3), "policy.years", "top"),
    ("s", _set("grades.0", subsidy_yuan=-5), "policy.subsidy", "grade 1"),
    ("typo", _set("grades.0", subsidy=5), "policy.unknown_key", "subsidy"),
    ("unknown-result", _set("results", good={"credit": 1}), "policy.result_unknown", "good"),
    ("missing", lambda d: d["results"].pop("basic"), "policy.result_missing", "basic"),
    ("competent-0", _set("results.competent", credit=0), "policy.credit", "at least 1"),
    (
        "basic-over",
        _set("results.basic", credit=2),
        "policy.credit",
        "excellent ≥ competent ≥ basic",
    ),
    ("text", _set("results.excellent", credit="2"), "policy.credit", "excellent.credit"),
    ("bonus", _set("results.excellent", bonus_yuan=-1), "policy.bonus", "bonus_yuan"),
    ("action", _set("results.incompetent", action="fire"), "policy.action", "demote"),
    ("basic-bonus", _set("results.basic", bonus_yuan=5), "policy.unknown_key", "results.basic"),
    ("top-mode", _set("", top_grade_years="cap"), "policy.top", "top_grade"),
    ("wk", _set("", subsidy_period="week"), "policy.period", "subsidy_period"),
    ("top-typo", _set("", grade=3), "policy.unknown_key", "grade"),
    ("no-results", _drop("results"), "policy.results", "results"),
]


@pytest.mark.parametrize(
    ("change", "code", "words"), [pytest.param(*case[1:], id=case[0]) for case in POLICY_ERRORS]
)
def test_policy_errors_name_the_problem(change: Any, code: str, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        _variant(change)
    assert caught.value.code == code
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_policy_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "nope.toml")
    assert caught.value.code == "policy.missing"
    broken = tmp_path / "broken.toml"
    broken.write_text("subsidy_period = \n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(broken)
    assert caught.value.code == "policy.syntax" and str(broken) in str(caught.value)
    short = tmp_path / "short.toml"
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    short.write_text(text.replace("[[grades]]\ngrade = 13\nsubsidy_yuan = 800\n", ""), "utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(short)
    assert caught.value.code == "policy.grades_count" and str(short) in str(caught.value)


def test_policy_file_can_choose_the_other_modes(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    text = text.replace('action = "demote"', 'action = "reset"')
    text = text.replace('top_grade_years = "count"', 'top_grade_years = "hold"')
    text = text.replace('subsidy_period = "month"', 'subsidy_period = "year"')
    path = tmp_path / "other.toml"
    path.write_text(text, encoding="utf-8")
    policy = load_policy(path)
    assert (policy.incompetent, policy.top_grade_years, policy.subsidy_period) == (
        "reset",
        "hold",
        "year",
    )
