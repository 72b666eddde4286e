"""A small helper for the hot path's raw statements."""

from __future__ import annotations

from typing import Any

from django.db import connection


def fetchone(sql: str, params: dict[str, Any]) -> tuple | None:
    """Run ``sql`` (``%(name)s`` placeholders) in the current schema; its first row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
