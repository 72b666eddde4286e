"""A no-op task for bench/approvals_throughput.py, loaded only by its worker (``--include``).

It does nothing but count itself in Redis, so the benchmark sees the last completion without
asking the result backend for every task id.
"""

from __future__ import annotations

import redis
from django.conf import settings

from approvals import executors
from mh1.celery import app

# The throughput bench measures the approval path, not Clay: its enrichment.lookup requests run on
# the `log` executor in this worker (imported through --include, after the connectors registered).
executors.register("enrichment.lookup", executors.log_executor)

COUNTER = "bench:noop:done"
_redis = None


@app.task(name="bench.noop")
def noop() -> None:
    global _redis  # one connection per worker process
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL)
    _redis.incr(COUNTER)
