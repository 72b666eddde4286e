"""A no-op task for bench/approvals_throughput.py, loaded only by its worker (``--include``).

It does nothing but count itself in Redis, so the benchmark sees the last completion without
asking the result backend for every task id.
"""

from __future__ import annotations

import redis
from django.conf import settings

from mh1.celery import app

COUNTER = "bench:noop:done"
_redis = None


@app.task(name="bench.noop")
def noop() -> None:
    global _redis  # one connection per worker process
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL)
    _redis.incr(COUNTER)
