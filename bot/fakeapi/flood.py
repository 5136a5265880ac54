"""Telegram's sending limits, as sliding windows: the fake answers 429 past them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class Flood:
    """Telegram's sending limits: bot-wide per second, per private chat, per group a minute."""

    rate: float = 30.0
    per_chat_seconds: float = 1.0
    group_per_minute: int = 20


@dataclass
class Windows:
    """The sends accepted lately: bot-wide, per private chat, per group."""

    bot: deque[float] = field(default_factory=deque)
    chat_last: dict[int, float] = field(default_factory=dict)
    groups: dict[int, deque[float]] = field(default_factory=dict)

    def wait(self, flood: Flood, chat_id: int, now: float) -> float:
        """Seconds until this send would keep every limit; 0 when it may go now."""
        rate, window = flood.rate, self.bot
        while window and window[0] <= now - 1.0:
            window.popleft()
        wait = 0.0
        if len(window) >= rate:
            wait = window[len(window) - int(rate)] + 1.0 - now
        if chat_id < 0:
            group = self.groups.setdefault(chat_id, deque())
            while group and group[0] <= now - 60.0:
                group.popleft()
            if len(group) >= flood.group_per_minute:
                oldest = group[len(group) - flood.group_per_minute]
                wait = max(wait, oldest + 60.0 - now)
        else:
            last = self.chat_last.get(chat_id)
            if last is not None and now - last < flood.per_chat_seconds:
                wait = max(wait, last + flood.per_chat_seconds - now)
        return wait

    def admit(self, chat_id: int, now: float) -> None:
        self.bot.append(now)
        if chat_id < 0:
            self.groups.setdefault(chat_id, deque()).append(now)
        else:
            self.chat_last[chat_id] = now
