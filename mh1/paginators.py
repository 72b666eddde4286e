"""The one paginator of every high-volume admin list (the queue, webhook events, suppressions,
leads, the call ledger, enrichments, the audit log)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# Counting beyond this many rows costs time and tells a person nothing: "10 000+" is enough.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (``SELECT COUNT(*) FROM (... LIMIT 10001)``), so a list
    page costs the same at 1 000 or 1 000 000 rows.

    The count drops the list's ordering: which 10 001 rows are counted does not matter, and without
    an ORDER BY PostgreSQL counts them from any index (1-2 ms) instead of reading them in the list's
    order with a heap fetch each, or sorting the table (30-700 ms at 1 000 000 rows,
    ``bench/admin_pages.py``)."""

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if hasattr(rows, "order_by"):
            rows = rows.order_by()
        return rows[: COUNT_CAP + 1].count()
