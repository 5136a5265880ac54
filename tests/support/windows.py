"""Counting sends in sliding windows, as Telegram's limits do."""

from __future__ import annotations


def max_in_window(times: list[float], window: float) -> int:
    """The most events that fall in any half-open interval [t, t + window)."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
