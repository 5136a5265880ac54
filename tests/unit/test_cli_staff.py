"""`cadrebot invite` and `cadrebot seed --demo` (issue 12, items 4 and 8): a department must be
one of VETTING_DEPARTMENTS, `--days` is 1 to 365, and the demo's people have work waiting."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.unit.test_cli import USERNAME, cli, one_line, workdir  # noqa: F401 - fixture

LABELLED = "police (公安), discipline (纪检监察), judicial (司法) (VETTING_DEPARTMENTS)"


def rows(workdir: Path, query: str) -> list[tuple[object, ...]]:  # noqa: F811
    with sqlite3.connect(workdir / "cli.sqlite3") as connection:
        return connection.execute(query).fetchall()


def stored_invites(workdir: Path) -> list[tuple[object, ...]]:  # noqa: F811
    """(role, department, days from now until it expires, rounded) of every stored code."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return [
        (role, department, round((datetime.fromisoformat(str(expires)) - now) / timedelta(days=1)))
        for role, department, expires in rows(
            workdir, "SELECT role, department, expires_at FROM invite_code ORDER BY id"
        )
    ]


@pytest.fixture(autouse=True)
def username(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_USERNAME", USERNAME)


# -- invite: the department ------------------------------------------------------------------


@pytest.mark.parametrize("department", ["司法", "Police", "tax"])
def test_invite_refuses_an_unknown_department_with_the_valid_ones(
    workdir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    department: str,
) -> None:
    """`--department 司法` made a reviewer whose queue stayed empty forever."""
    assert cli("invite", "--role", "reviewer", "--department", department) == 1
    out, err = capsys.readouterr()
    line = one_line(err)
    assert out == ""
    assert f"unknown department {department!r}: use one of {LABELLED}" in line
    assert stored_invites(workdir) == []


def test_a_reviewer_invite_without_a_department_names_the_valid_ones(
    workdir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli("invite", "--role", "reviewer") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"a reviewer invite needs --department: one of {LABELLED}" in one_line(err)
    assert stored_invites(workdir) == []


def test_the_departments_are_the_deployments_own(
    workdir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VETTING_DEPARTMENTS", "police,tax")
    assert cli("invite", "--role", "reviewer", "--department", "judicial") == 1
    assert "use one of police (公安), tax (VETTING_DEPARTMENTS)" in one_line(
        capsys.readouterr().err
    )
    assert cli("invite", "--role", "reviewer", "--department", "tax") == 0
    assert stored_invites(workdir) == [("reviewer", "tax", 7)]


def test_every_listed_department_is_accepted(workdir: Path) -> None:  # noqa: F811
    for department in ("police", "discipline", "judicial"):
        assert cli("invite", "--role", "reviewer", "--department", department) == 0
    assert [d for _, d, _ in stored_invites(workdir)] == ["police", "discipline", "judicial"]


# -- invite: the days ------------------------------------------------------------------------


@pytest.mark.parametrize("days", ["0", "-1", "366"])
def test_invite_refuses_days_outside_1_to_365(
    workdir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    days: str,
) -> None:
    """`--days 0` silently gave the default 7 days; now it is refused, and says why."""
    assert cli("invite", "--role", "admin", "--days", days) == 1
    out, err = capsys.readouterr()
    line = one_line(err)
    assert out == ""
    assert "--days must be between 1 and 365" in line and "0 days" in line
    assert stored_invites(workdir) == []


def test_invite_days_are_honoured_and_default_to_invite_days(
    workdir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli("invite", "--role", "admin", "--days", "1") == 0
    assert cli("invite", "--role", "admin", "--days", "365") == 0
    assert cli("invite", "--role", "admin") == 0
    monkeypatch.setenv("INVITE_DAYS", "3")
    assert cli("invite", "--role", "admin") == 0
    assert [days for _, _, days in stored_invites(workdir)] == [1, 365, 7, 3]


def test_invite_help_says_what_days_take(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli("invite", "--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert "1 to 365 (default INVITE_DAYS, 7); 0 is refused" in help_text
    assert "one of VETTING_DEPARTMENTS" in help_text


# -- seed --demo -----------------------------------------------------------------------------

WORK = {
    "nominations": "SELECT status, count(*) FROM nomination GROUP BY status ORDER BY status",
    "pairings": "SELECT count(*) FROM pairing WHERE ended_at IS NULL",
    "talks": "SELECT count(*) FROM talk_log",
    "difficulties": "SELECT status, count(*) FROM difficulty GROUP BY status",
    "consented": "SELECT count(*) FROM nomination WHERE consent_at IS NOT NULL "
    "AND sensitive_consent_at IS NOT NULL AND id_number_enc IS NOT NULL",
}


def work(workdir: Path) -> dict[str, list[tuple[object, ...]]]:  # noqa: F811
    return {what: rows(workdir, query) for what, query in WORK.items()}


def test_seed_demo_adds_the_files_once_and_the_tallies_agree(
    workdir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATA_KEY", Fernet.generate_key().decode())
    expected = {
        "nominations": [("in_pool", 2), ("new", 1), ("vetting", 1)],
        "pairings": [(2,)],
        "talks": [(1,)],
        "difficulties": [("open", 1)],
        "consented": [(4,)],
    }
    assert cli("seed", "--demo") == 0
    assert work(workdir) == expected
    assert cli("seed", "--demo") == 0  # fresh codes, the same files
    assert work(workdir) == expected
    assert len(capsys.readouterr().out.strip().split("\n")) == 10
    assert cli("db", "tallies") == 0
    assert one_line(capsys.readouterr().out) == "tallies agree with the facts"


def test_seed_demo_needs_data_key_for_its_files(
    workdir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The files hold ID numbers and phones: without DATA_KEY nothing is written."""
    assert cli("seed", "--demo") == 2
    out, err = capsys.readouterr()
    assert out == "" and "DATA_KEY is not set" in one_line(err)
    assert rows(workdir, "SELECT count(*) FROM township") == [(0,)]
    # The staff alone need no key: the county, five invites, no files.
    assert cli("seed", "--demo", "--staff-only") == 0
    assert len(capsys.readouterr().out.strip().split("\n")) == 5
    assert rows(workdir, "SELECT count(*) FROM township") == [(3,)]
    assert rows(workdir, "SELECT count(*) FROM nomination") == [(0,)]
