"""The API's one pagination: ``limit`` and ``offset`` that the database can always serve.

DRF's LimitOffsetPagination passes any integer through: ``?limit=`` or ``?offset=`` beyond 64 bits
reached PostgreSQL as a bigint out of range and answered 500, and junk fell back to the default
silently. Here a limit above ``MAX_LIMIT`` is clamped to it (the page says so by its length and
``next``); a value that is not a whole number, or an offset past ``MAX_OFFSET``, is a 400 that
says what is accepted.
"""

from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500
# Deeper than any list of ours is read page by page (and an OFFSET scan costs its length).
MAX_OFFSET = 10_000_000
_WHOLE_NUMBER = re.compile(r"[0-9]+")


class CappedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def _param(self, request, name: str) -> int | None:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return None
        if not _WHOLE_NUMBER.fullmatch(raw):
            raise ValidationError({name: [f"{name} must be a whole number of at least 0."]})
        # No int() of a 5000-digit string (Python refuses those): past 19 digits it is huge anyway.
        return int(raw) if len(raw) <= 19 else 10**19

    def get_limit(self, request) -> int | None:
        limit = self._param(request, self.limit_query_param)
        if limit is None or limit == 0:
            return self.default_limit
        return min(limit, self.max_limit)

    def get_offset(self, request) -> int:
        offset = self._param(request, self.offset_query_param) or 0
        if offset > MAX_OFFSET:
            raise ValidationError({self.offset_query_param: [f"offset must be at most {MAX_OFFSET}."]})
        return offset
