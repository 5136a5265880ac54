"""The Bot API's methods and their parameters, to refuse a call Telegram would not understand.

`methods.json` is extracted from the machine-readable Bot API description (api.json of
PaulSonOfLars/telegram-bot-api-spec, see /work/shared/telegram-bot-api-spec/SOURCE.md) by
`python -m bot.fakeapi.spec PATH/api.json`: per method, what it returns and each parameter's
types and whether it is required. It ships inside the package because `cadrebot shell` checks
calls too, where that folder does not exist.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

METHODS_FILE = Path(__file__).with_name("methods.json")


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    returns: tuple[str, ...]
    # parameter name → (its types as the API names them, required)
    params: dict[str, tuple[tuple[str, ...], bool]]


@cache
def methods() -> dict[str, Method]:
    data = json.loads(METHODS_FILE.read_text(encoding="utf-8"))
    return {
        name: Method(
            name,
            tuple(entry["returns"]),
            {p: (tuple(types), bool(req)) for p, (types, req) in entry["params"].items()},
        )
        for name, entry in data["methods"].items()
    }


def version() -> str:
    return str(json.loads(METHODS_FILE.read_text(encoding="utf-8"))["version"])


def _fits(value: Any, kind: str) -> bool:
    """Whether a parameter value, as PTB hands it to the transport, can be of this API type."""
    if kind.startswith("Array of "):
        return isinstance(value, list | str)  # a list, or its JSON text
    if kind == "Integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        return isinstance(value, str) and value.lstrip("-").isdigit()
    if kind == "Float":
        return isinstance(value, int | float | str) and not isinstance(value, bool)
    if kind == "Boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if kind == "String":
        return isinstance(value, str | int)
    if kind == "InputFile":
        return isinstance(value, str)  # a file_id, a URL or attach://name
    # An object (InlineKeyboardMarkup, ReplyParameters…): a dict, or its JSON text.
    return isinstance(value, dict | str)


# PTB sends its Defaults' parse_mode with calls that have no such parameter (an edit of the
# buttons alone); Telegram ignores it, and it is not the bot's mistake.
_PTB_DEFAULTS = frozenset({"parse_mode"})


def problem(
    method: str, params: dict[str, Any], uploaded: Collection[str] = ()
) -> tuple[int, str] | None:
    """(status, description) Telegram would answer with, or None when the call is well formed.

    `uploaded`: the multipart parts (a photo sent as a file fills its parameter there).
    Telegram ignores a parameter it does not know; the fake refuses it on purpose, because a
    misspelt `reply_markup` is a button that silently never shows.
    """
    spec = methods().get(method)
    if spec is None:
        return 404, "Not Found: method not found"
    for name, value in params.items():
        declared = spec.params.get(name)
        if declared is None and name in _PTB_DEFAULTS:
            continue
        if declared is None:
            return 400, f"Bad Request: {method} has no parameter {name!r}"
        if value is not None and not any(_fits(value, kind) for kind in declared[0]):
            kinds = " or ".join(declared[0])
            return 400, f"Bad Request: {method}: {name} must be {kinds}, not {value!r}"[:300]
    for name, (_types, required) in spec.params.items():
        if required and params.get(name) in (None, "") and name not in uploaded:
            return 400, f"Bad Request: {method}: parameter {name!r} is required"
    return None


def extract(api_json: Path) -> dict[str, Any]:
    data = json.loads(api_json.read_text(encoding="utf-8"))
    return {
        "version": data["version"],
        "methods": {
            name: {
                "returns": method["returns"],
                "params": {
                    f["name"]: [f["types"], f["required"]] for f in method.get("fields", [])
                },
            }
            for name, method in sorted(data["methods"].items())
        },
    }


def main(argv: list[str] | None = None) -> None:
    (source,) = sys.argv[1:] if argv is None else argv
    data = extract(Path(source))
    # One method a line: a new Bot API version then reads as a short diff.
    lines = [
        f"  {json.dumps(name)}: {json.dumps(entry, ensure_ascii=False)}"
        for name, entry in data["methods"].items()
    ]
    text = f'{{"version": {json.dumps(data["version"])}, "methods": {{\n'
    METHODS_FILE.write_text(text + ",\n".join(lines) + "\n}}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
