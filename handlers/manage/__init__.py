"""Manage: the reserve pool, one-person-one-file, adjusting out, grades, posts."""
