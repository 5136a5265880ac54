"""Argument types the CLI shares: ids checked against their columns' range."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def bounded(name: str, most: int) -> Callable[[str], int]:
    """An argparse type: a positive whole number that fits its column on both engines, so a
    mistyped id is one line from argparse, never a database error."""

    def parse(raw: str) -> int:
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= most:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a valid {name}")
        return int(raw)

    parse.__name__ = name
    return parse


row_id = bounded("id", 2**31 - 1)
telegram_id = bounded("Telegram id", 2**63 - 1)
