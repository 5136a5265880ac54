"""`pip install .` ships every data file and prints no setuptools warning (finding 19)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _copy_of_the_project(into: Path) -> Path:
    """What a fresh clone holds for packaging (pip builds in the tree: not in ours)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in ("bot", "handlers", "storage", "templates"):
        shutil.copytree(ROOT / folder, into / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, into / name)
    return into


def test_the_wheel_holds_the_data_files_and_builds_without_warnings(tmp_path: Path) -> None:
    source = _copy_of_the_project(tmp_path / "src")
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "Warning" not in output and "is absent from the `packages`" not in output, output
    (wheel,) = wheels.glob("cadrebot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in sorted((ROOT / "storage" / "data").iterdir()):
        assert f"storage/data/{data.name}" in names
    templates = {str(p.relative_to(ROOT)) for p in (ROOT / "templates").rglob("*.j2")}
    assert templates and templates <= names
    migrations = {
        str(p.relative_to(ROOT)) for p in (ROOT / "storage" / "migrations").rglob("*.py")
    }
    assert migrations <= names and "storage/migrations/script.py.mako" in names
    # `cadrebot shell` is a package, and its fake Bot API checks calls against methods.json.
    assert {"bot/shell/repl.py", "bot/fakeapi/core.py", "bot/fakeapi/methods.json"} <= names
    assert not {n for n in names if n.startswith(("tests/", "bench/")) or "__pycache__" in n}
