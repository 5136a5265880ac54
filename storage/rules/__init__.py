"""Pure domain rules: plain functions and values, no SQL and no Telegram.

Errors carry short machine codes (``RuleError.code``); templates turn codes into words.
"""
