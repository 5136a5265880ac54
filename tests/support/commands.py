"""Commands run in a child process the way the CLI tests need them."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_text(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` to its end with its output captured as UTF-8 text; the caller checks the
    exit status."""
    return subprocess.run(
        list(argv),
        input=input,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
