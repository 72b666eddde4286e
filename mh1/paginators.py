"""The one paginator of every high-volume admin list (the queue, webhook events, suppressions,
leads, the call ledger, enrichments, the audit log)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# Counting beyond this many rows costs time and tells a person nothing: "10 000+" is enough.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (``SELECT COUNT(*) FROM (... LIMIT 10001)``), so a list
    page costs the same at 1 000 or 1 000 000 rows."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()
