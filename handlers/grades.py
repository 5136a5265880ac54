"""Placeholder: filled in by the grades flow."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import BaseHandler

from bot.context import CadreContext


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    return []
