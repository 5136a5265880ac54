"""Playing the people of an end-to-end test: wait for the one message a step needs.

Notices (through the outbox) and direct replies may arrive in any order relative to each
other, so a step waits for the message it needs instead of counting, and keeps the others
for later steps. Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from tests.e2e.conftest import POLL_STEP, REPLY_TIMEOUT, BotMessage, Emulator

if TYPE_CHECKING:
    from tests.e2e.conftest import BotProcess, Person


class Inbox:
    """A person's messages, read in order; the ones passed over wait for a later `wait`."""

    def __init__(self, person: Person) -> None:
        self.person = person
        self.stash: list[BotMessage] = []

    def _take(self, fits: Callable[[BotMessage], bool]) -> BotMessage | None:
        for index, message in enumerate(self.stash):
            if fits(message):
                return self.stash.pop(index)
        return None

    def wait(self, contains: str, timeout: float = REPLY_TIMEOUT, buttons: str = "") -> BotMessage:
        """The first message containing `contains` (and a button whose data starts so)."""

        def fits(message: BotMessage) -> bool:
            return contains in message.text and (
                not buttons or any(data.startswith(buttons) for _, data in message.buttons)
            )

        found = self._take(fits)
        if found is not None:
            return found
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [m.text for m in self.stash]
                raise AssertionError(f"no message with {contains!r} in {timeout} s; got {seen}")
            try:
                (message,) = self.person.receive(1, timeout=remaining)
            except AssertionError:
                seen = [m.text for m in self.stash]
                raise AssertionError(
                    f"no message with {contains!r} in {timeout} s; got {seen}"
                ) from None
            if fits(message):
                return message
            self.stash.append(message)

    def ask(self, text: str, contains: str, buttons: str = "") -> BotMessage:
        self.person.send(text)
        return self.wait(contains, buttons=buttons)

    @overload
    def press(self, message: BotMessage, data: str) -> None: ...

    @overload
    def press(
        self, message: BotMessage, data: str, contains: str, buttons: str = ""
    ) -> BotMessage: ...

    def press(
        self, message: BotMessage, data: str, contains: str | None = None, buttons: str = ""
    ) -> BotMessage | None:
        """Press a button; with `contains`, wait for the new message it brings."""
        self.person.press(message, data)
        return None if contains is None else self.wait(contains, buttons=buttons)


def stored_message(emulator: Emulator, bot: BotProcess, person: Person, message_id: int) -> Any:
    for item in emulator.history(bot.token):
        message = item.get("message") or {}
        if (
            str(message.get("chat_id")) == str(person.user_id)
            and int(item["messageId"]) == message_id
        ):
            return item
    return None


def edited_to(
    emulator: Emulator,
    bot: BotProcess,
    person: Person,
    message: BotMessage,
    contains: str,
    timeout: float = REPLY_TIMEOUT,
) -> BotMessage:
    """Wait (bounded) until the bot's `message` has been edited into one containing `contains`.

    A message can be edited several times (a queue becomes an item, the item becomes "sent"),
    so this waits for the text wanted, not for any edit.
    """
    deadline = time.monotonic() + timeout
    last = message.text
    while time.monotonic() < deadline:
        item = stored_message(emulator, bot, person, message.message_id)
        if item is not None:
            last = str(item["message"].get("text", ""))
            if item.get("editedAt") and contains in last:
                return BotMessage.from_stored(item)
        time.sleep(POLL_STEP)
    raise AssertionError(f"message {message.message_id} not edited to {contains!r}: {last!r}")


def button(message: BotMessage, label: str) -> str:
    """The callback data of the button labelled exactly `label` ("同意" is not "不同意")."""
    matches = [data for text, data in message.buttons if text == label]
    assert len(matches) == 1, f"no single button {label!r} in {message.buttons}"
    return matches[0]


def choose(person: Person, message: BotMessage, label: str) -> BotMessage:
    """Press the button labelled `label` under `message`; the one reply that follows."""
    person.press(message, button(message, label))
    (reply,) = person.receive()
    return reply


def data_starting(message: BotMessage, prefix: str) -> list[str]:
    return [data for _, data in message.buttons if data.startswith(prefix)]


def take_role(inbox: Inbox, code: str, granted: str) -> None:
    inbox.person.send(f"/start {code}")
    welcome = inbox.wait("邀请码有效")
    assert granted in welcome.text, welcome.text


def invite(bot: BotProcess, *args: str) -> str:
    (line,) = bot.cli("invite", *args).splitlines()
    code, link = line.split()
    assert link.endswith(f"?start={code}"), line
    return code
