"""The sending policy, enforced when a send runs.

Each window's counter changes by one conditional UPDATE (``count < limit``) inside the transaction
that records the send, so every worker sees the same count and none can overshoot. A send over
any limit — or sooner than the minimum delay after the previous one — is deferred to the moment
it becomes allowed: never dropped, never sent early.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from approvals.errors import DeferExecution
from connectors.selectors import domain_of
from tenants.policy.models import SendingPolicy


def _windows(now: datetime, domain: str, policy: SendingPolicy):
    """(scope, window start, window end, domain, limit) for every limit of the policy."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return [
        ("month", month, next_month, "", policy.monthly_limit),
        ("day", day, day + timedelta(days=1), "", policy.daily_limit),
        ("hour", hour, hour + timedelta(hours=1), "", policy.hourly_limit),
        ("domain_hour", hour, hour + timedelta(hours=1), domain, policy.per_domain_hourly_limit),
    ]


def _claim_pacing(cursor, now: datetime, min_delay_seconds: int) -> None:
    """Claim the one pacing row if the minimum delay has passed, else DeferExecution to then."""
    cursor.execute(
        "INSERT INTO connectors_sendcounter (scope, window_start, domain, count) "
        "VALUES ('pacing', '1970-01-01T00:00:00Z', '', 0) ON CONFLICT DO NOTHING"
    )
    cursor.execute(
        "UPDATE connectors_sendcounter SET last_sent_at = %s, count = count + 1 "
        "WHERE scope = 'pacing' AND (last_sent_at IS NULL OR last_sent_at <= %s) RETURNING id",
        [now, now - timedelta(seconds=min_delay_seconds)],
    )
    if cursor.fetchone() is None:
        cursor.execute("SELECT last_sent_at FROM connectors_sendcounter WHERE scope = 'pacing'")
        last = cursor.fetchone()[0]
        raise DeferExecution(
            f"Sending policy: at least {min_delay_seconds} s between sends.",
            last + timedelta(seconds=min_delay_seconds),
        )


def reserve_send(recipient: str, now: datetime | None = None) -> None:
    """Count one send to ``recipient`` in every window, or raise DeferExecution (nothing counted
    once the caller's transaction rolls back). Call inside the transaction that records the send."""
    now = now or timezone.now()
    policy = SendingPolicy.get_solo()
    domain = domain_of(recipient)
    with connection.cursor() as cursor:
        # minimum delay between two sends: one pacing row, claimed only if the gap has passed.
        # Without a minimum there is nothing to pace (and a send whose clock was read just before
        # another's commit must not be deferred to a moment already past).
        if policy.min_delay_seconds:
            _claim_pacing(cursor, now, policy.min_delay_seconds)
        for scope, start, end, window_domain, limit in _windows(now, domain, policy):
            cursor.execute(
                "INSERT INTO connectors_sendcounter (scope, window_start, domain, count) "
                "VALUES (%s, %s, %s, 0) ON CONFLICT DO NOTHING",
                [scope, start, window_domain],
            )
            cursor.execute(
                "UPDATE connectors_sendcounter SET count = count + 1, last_sent_at = %s "
                "WHERE scope = %s AND window_start = %s AND domain = %s AND count < %s RETURNING count",
                [now, scope, start, window_domain, limit],
            )
            if cursor.fetchone() is None:
                label = {
                    "month": "monthly",
                    "day": "daily",
                    "hour": "hourly",
                    "domain_hour": f"per-domain hourly ({domain})",
                }[scope]
                raise DeferExecution(f"Sending policy: the {label} limit of {limit} is reached.", end)
