"""Telegram → calls: each module is one flow and exposes the handlers that bot/ registers."""
