"""Budget alerts: when spend plus reservations passes a threshold of a limit (the QuotaPolicy's
``alert_thresholds``, e.g. 80 % and 95 %) for the first time in its period, a BudgetAlert row is
written and, once the transaction commits, the tenant's escalation contacts are emailed (and its
Slack channel told) through ``approvals.notify``.

The row's unique constraint (limit, threshold, period) makes each alert fire once even when two
workers pass the threshold at the same moment; an alert written in a transaction that rolls back
(a refused or failed run) disappears with it and fires again on the next crossing.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from tenants.budget.errors import LIMIT_LABELS, usd
from tenants.budget.models import BudgetAlert

logger = logging.getLogger(__name__)

# limit → (QuotaPolicy attribute of ``Limits``, which period it counts)
_WATCHED = {"daily_usd": "day", "monthly_usd": "month", "monthly_tokens": "month"}


def alerts_check(limits, *, day: date, month: date, used: dict[str, Decimal]) -> list[BudgetAlert]:
    """Write the alerts ``used`` (spent + reserved per limit, just after a change) has earned and
    not had yet in this period, and email them on commit. Returns the new ones."""
    if not limits.thresholds:
        return []
    candidates = []
    for limit, period in _WATCHED.items():
        allowed = Decimal(getattr(limits, limit))
        value = Decimal(used.get(limit, 0))
        if allowed <= 0:
            continue
        for threshold in limits.thresholds:
            if value * 100 >= allowed * threshold:
                candidates.append((limit, threshold, day if period == "day" else month, value, allowed))
    if not candidates:
        return []
    now = timezone.now()
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(candidates))
    params = [p for c in candidates for p in (*c, now)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {BudgetAlert._meta.db_table}
                   ("limit", threshold, period_start, used, allowed, created_at)
            VALUES {values}
            ON CONFLICT ("limit", threshold, period_start) DO NOTHING
            RETURNING id, "limit", threshold, period_start, used, allowed
            """,  # noqa: S608 - the table name is the model's own, the values are parameters
            params,
        )
        rows = cursor.fetchall()
    fired = [
        BudgetAlert(
            id=row[0],
            limit=row[1],
            threshold=row[2],
            period_start=row[3],
            used=row[4],
            allowed=row[5],
            created_at=now,
        )
        for row in rows
    ]
    if fired:
        schema = connection.schema_name
        transaction.on_commit(lambda: alerts_notify(fired, schema=schema), robust=True)
    return fired


def alert_text(alert: BudgetAlert) -> str:
    label, money = LIMIT_LABELS[alert.limit]
    fmt = usd if money else (lambda n: f"{int(n):,} tokens")
    when = (
        f"on {alert.period_start:%Y-%m-%d} (UTC)"
        if alert.limit.startswith("daily")
        else f"in {alert.period_start:%B %Y} (UTC)"
    )
    return (
        f"{label}: {alert.threshold}% reached {when}: {fmt(alert.used)} spent or reserved "
        f"of {fmt(alert.allowed)}."
    )


def alerts_notify(alerts: list[BudgetAlert], *, schema: str) -> None:
    """Email the escalation contacts (best effort: a failing mail server is logged)."""
    from approvals.notify import escalation_contacts, notice_send

    try:
        recipients = escalation_contacts()
    except Exception:
        logger.exception("budget alerts in %s: reading the escalation contacts failed", schema)
        return
    for alert in alerts:
        text = alert_text(alert)
        if not recipients:
            logger.warning("budget alert in %s with no escalation contact to email: %s", schema, text)
        notice_send(
            subject=f"[MH1 {schema}] Budget alert: {LIMIT_LABELS[alert.limit][0]} at {alert.threshold}%",
            body=text + "\nRuns are refused once a limit is reached. Limits: Admin > Quotas and budgets.",
            recipients=recipients,
            what=f"budget alert {alert.limit} {alert.threshold}%",
        )
