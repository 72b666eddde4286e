"""The console's front pages, read in one statement each whatever the data size.

- ``tenant_home``: a tenant's state for its home page (the queue and its aging, outcomes in the
  last 24 h, budget burn against each limit, sends against the sending limits, kill switches,
  the heartbeat, the last webhook, and decisions and executions per day over 30 days).
- ``operator_home``: one row per active tenant for the platform operator, read from every tenant
  schema in one ``UNION ALL``.

Every count goes through an index: the queue index (status, deadline), the partial index of
outcome events by time, the webhook events by time, the budget and send counters by window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from approvals.models import OUTCOME_STATUSES as OUTCOMES  # the partial index's statuses

CHART_DAYS = 30
# The chart's closed days do not change: they are counted once and kept (per process, keyed by
# tenant, time zone and day) for this long, so a load counts only today's events. Without it a busy
# tenant's home grouped every outcome event of the month on every load (~240 000 events: 150 ms,
# bench/admin_pages.py). The bound is for events written into a past day later (a backfill).
CHART_CLOSED_DAYS_TTL = 15 * 60
# The heartbeat runs every minute: older than this, beat or the workers are not running.
HEARTBEAT_STALE = timedelta(minutes=3)
AGE_BUCKETS = (("under 1 h", 0, 1), ("1-4 h", 1, 4), ("4-24 h", 4, 24), ("over 24 h", 24, None))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_TENANT_SQL = """
SELECT
  (SELECT json_build_object(
      'pending', count(*),
      'overdue', count(*) FILTER (WHERE sla_due_at < %(now)s),
      'mine', count(*) FILTER (WHERE assigned_to_id = %(user)s
                               OR (assigned_to_id IS NULL AND assigned_role = %(role)s)),
      'unassigned', count(*) FILTER (WHERE assigned_to_id IS NULL AND assigned_role = ''),
      'ages', json_build_array(
          count(*) FILTER (WHERE created_at > %(now)s - interval '1 hour'),
          count(*) FILTER (WHERE created_at <= %(now)s - interval '1 hour'
                           AND created_at > %(now)s - interval '4 hours'),
          count(*) FILTER (WHERE created_at <= %(now)s - interval '4 hours'
                           AND created_at > %(now)s - interval '24 hours'),
          count(*) FILTER (WHERE created_at <= %(now)s - interval '24 hours')))
     FROM approvals_actionrequest WHERE status = 'pending'),
  (SELECT count(*) FROM approvals_actionrequest WHERE status = 'unknown'),
  (SELECT count(*) FROM approvals_actionrequest WHERE status = 'approved'),
  (SELECT coalesce(json_agg(d), '[]'::json) FROM (
      SELECT (created_at AT TIME ZONE %(tz)s)::date AS day, to_status, count(*) AS n
        FROM approvals_event
       WHERE created_at >= %(chart_since)s
         AND to_status IN ('approved', 'rejected', 'executed', 'failed')
       GROUP BY 1, 2) d),
  (SELECT count(*) FROM approvals_event
    WHERE created_at >= %(now)s - interval '24 hours' AND to_status = 'failed'),
  (SELECT row_to_json(r) FROM (
      SELECT phase, kill_switch, kill_switch_reason, safe_mode
        FROM policy_rolloutsettings ORDER BY id LIMIT 1) r),
  (SELECT row_to_json(p) FROM (
      SELECT global_kill_switch, kill_switch_reason FROM tenants_platformsettings ORDER BY id LIMIT 1) p),
  (SELECT row_to_json(h) FROM (
      SELECT ran_at, worker FROM policy_heartbeat ORDER BY ran_at DESC LIMIT 1) h),
  (SELECT max(received_at) FROM connectors_webhookevent),
  (SELECT row_to_json(q) FROM (
      SELECT daily_usd_limit, monthly_usd_limit, monthly_token_budget, daily_run_limit
        FROM policy_quotapolicy ORDER BY id LIMIT 1) q),
  (SELECT coalesce(json_object_agg(kind, json_build_object(
          'usd_spent', usd_spent, 'usd_reserved', usd_reserved, 'tokens_spent', tokens_spent,
          'tokens_reserved', tokens_reserved, 'runs', runs)), '{}'::json)
     FROM budget_budgetcounter
    WHERE (kind = 'day' AND period_start = %(day)s) OR (kind = 'month' AND period_start = %(month)s)),
  (SELECT count(*) FROM budget_budgetreservation WHERE status = 'open'),
  (SELECT row_to_json(s) FROM (
      SELECT monthly_limit, daily_limit, hourly_limit FROM policy_sendingpolicy ORDER BY id LIMIT 1) s),
  (SELECT coalesce(json_object_agg(scope, count), '{}'::json) FROM connectors_sendcounter
    WHERE domain = '' AND ((scope = 'month' AND window_start = %(month_start)s)
                           OR (scope = 'day' AND window_start = %(day_start)s)
                           OR (scope = 'hour' AND window_start = %(hour_start)s)))
"""


@dataclass(frozen=True)
class Gauge:
    """A figure against its limit (spent and reserved money, sends), for a bar on the page."""

    label: str
    used: Decimal
    allowed: Decimal
    reserved: Decimal = Decimal("0")
    money: bool = False
    link: str = ""

    @property
    def percent(self) -> int:
        return min(int((self.used + self.reserved) * 100 / self.allowed), 999) if self.allowed else 0

    @property
    def level(self) -> str:
        return "over" if self.percent >= 100 else "high" if self.percent >= 80 else "ok"


@dataclass(frozen=True)
class TenantHome:
    queue: dict[str, Any]
    ages: list[tuple[str, int]]
    unknown: int
    approved_waiting: int
    failed_24h: int
    rollout: dict[str, Any]
    platform: dict[str, Any]
    heartbeat_at: datetime | None
    heartbeat_worker: str
    last_webhook_at: datetime | None
    budget: list[Gauge]
    open_reservations: int
    sends: list[Gauge]
    chart: dict[str, Any] = field(default_factory=dict)

    @property
    def heartbeat_stale(self) -> bool:
        return self.heartbeat_at is None or timezone.now() - self.heartbeat_at > HEARTBEAT_STALE

    @property
    def halted(self) -> bool:
        return bool(self.rollout.get("kill_switch") or self.platform.get("global_kill_switch"))


def _chart(rows: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """Per day over CHART_DAYS (oldest first), a count per outcome: Chart.js's labels + datasets."""
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    counts = {(date.fromisoformat(row["day"]), row["to_status"]): row["n"] for row in rows}
    return {
        "labels": [day.isoformat() for day in days],
        "series": {outcome: [counts.get((day, outcome), 0) for day in days] for outcome in OUTCOMES},
        "totals": {outcome: sum(counts.get((day, outcome), 0) for day in days) for outcome in OUTCOMES},
    }


def _closed_days_key(tz: str, today: date) -> str:
    tenant_id = getattr(connection.tenant, "pk", "")
    return f"home-chart:{connection.schema_name}:{tenant_id}:{tz}:{today.isoformat()}"


def tenant_home(user, role: str, links: dict[str, str]) -> TenantHome:
    """The current tenant's state (call in its schema); ``links`` name the lists behind numbers."""
    now = timezone.now()
    utc = now.astimezone(UTC)
    hour = utc.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    month = day.replace(day=1)
    local_today = timezone.localtime(now).date()
    since = timezone.make_aware(
        datetime.combine(local_today - timedelta(days=CHART_DAYS - 1), datetime.min.time())
    )
    tz = timezone.get_current_timezone_name()
    closed_key = _closed_days_key(tz, local_today)
    closed_rows = cache.get(closed_key)
    today_start = timezone.make_aware(datetime.combine(local_today, datetime.min.time()))
    with connection.cursor() as cursor:
        cursor.execute(
            _TENANT_SQL,
            {
                "now": now,
                "user": user.pk,
                "role": role or "",
                "tz": tz,
                "chart_since": since if closed_rows is None else today_start,
                "day": day.date(),
                "month": month.date(),
                "day_start": day,
                "month_start": month,
                "hour_start": hour,
            },
        )
        (
            queue,
            unknown,
            approved,
            chart_rows,
            failed_24h,
            rollout,
            platform,
            heartbeat,
            last_webhook,
            quota,
            counters,
            open_reservations,
            sending,
            sends,
        ) = (_json(value) for value in cursor.fetchone())
    if closed_rows is None:
        today_iso = local_today.isoformat()
        closed_rows = [row for row in chart_rows if row["day"] != today_iso]
        cache.set(closed_key, closed_rows, CHART_CLOSED_DAYS_TTL)
        chart_rows = [row for row in chart_rows if row["day"] == today_iso]
    chart_rows = closed_rows + chart_rows
    quota, counters, sending, sends = quota or {}, counters or {}, sending or {}, sends or {}
    d, m = counters.get("day", {}), counters.get("month", {})

    def figure(values: dict, key: str) -> Decimal:
        return Decimal(str(values.get(key) or 0))

    budget = [
        Gauge("Today (USD)", figure(d, "usd_spent"), figure(quota, "daily_usd_limit"),
              figure(d, "usd_reserved"), money=True, link=links.get("budget", "")),
        Gauge("This month (USD)", figure(m, "usd_spent"), figure(quota, "monthly_usd_limit"),
              figure(m, "usd_reserved"), money=True, link=links.get("budget", "")),
        Gauge("Tokens this month", figure(m, "tokens_spent"), figure(quota, "monthly_token_budget"),
              figure(m, "tokens_reserved"), link=links.get("budget", "")),
        Gauge("Runs today", figure(d, "runs"), figure(quota, "daily_run_limit"), link=links.get("runs", "")),
    ]  # fmt: skip
    sent = [
        Gauge(f"Emails {period}", figure(sends, scope), figure(sending, limit), link=links.get("sending", ""))
        for period, scope, limit in (
            ("this hour", "hour", "hourly_limit"),
            ("today", "day", "daily_limit"),
            ("this month", "month", "monthly_limit"),
        )
    ]
    ages = list(zip((label for label, *_ in AGE_BUCKETS), queue["ages"], strict=True))
    return TenantHome(
        queue=queue,
        ages=ages,
        unknown=unknown,
        approved_waiting=approved,
        failed_24h=failed_24h,
        rollout=rollout or {},
        platform=platform or {},
        heartbeat_at=_when((heartbeat or {}).get("ran_at")),
        heartbeat_worker=(heartbeat or {}).get("worker", ""),
        last_webhook_at=last_webhook if isinstance(last_webhook, datetime) else _when(last_webhook),
        budget=budget,
        open_reservations=open_reservations,
        sends=sent,
        chart=_chart(chart_rows, local_today),
    )


# --- the operator's home -------------------------------------------------------------------------

_TENANT_ROW_SQL = """
SELECT %(id)s::bigint AS tenant_id,
  (SELECT row_to_json(r) FROM (SELECT phase, kill_switch, kill_switch_reason, safe_mode
                                 FROM {schema}.policy_rolloutsettings ORDER BY id LIMIT 1) r) AS rollout,
  (SELECT count(*) FROM {schema}.approvals_actionrequest WHERE status = 'pending') AS pending,
  (SELECT count(*) FROM {schema}.approvals_actionrequest
    WHERE status = 'pending' AND sla_due_at < %(now)s) AS overdue,
  (SELECT count(*) FROM {schema}.approvals_event
    WHERE created_at >= %(now)s - interval '24 hours' AND to_status = 'failed') AS failed_24h,
  (SELECT count(*) FROM {schema}.approvals_actionrequest WHERE status = 'unknown') AS unknown,
  (SELECT max(ran_at) FROM {schema}.policy_heartbeat) AS heartbeat_at,
  (SELECT max(received_at) FROM {schema}.connectors_webhookevent) AS webhook_at
"""


@dataclass(frozen=True)
class TenantRow:
    tenant: Any
    admin_url: str
    rollout: dict[str, Any]
    pending: int
    overdue: int
    failed_24h: int
    unknown: int
    heartbeat_at: datetime | None
    webhook_at: datetime | None

    @property
    def heartbeat_stale(self) -> bool:
        return self.heartbeat_at is None or timezone.now() - self.heartbeat_at > HEARTBEAT_STALE

    @property
    def trouble(self) -> list[str]:
        """What needs the operator, in words (empty: nothing)."""
        said = []
        if self.rollout.get("kill_switch"):
            said.append("kill switch on")
        if self.overdue:
            said.append(f"{self.overdue} overdue")
        if self.failed_24h:
            said.append(f"{self.failed_24h} failed in 24 h")
        if self.unknown:
            said.append(f"{self.unknown} outcome unknown")
        if self.heartbeat_stale:
            said.append("no recent heartbeat")
        return said


def operator_home(tenants: list[Any], *, request=None) -> list[TenantRow]:
    """One row per tenant (active ones, their domains prefetched; call on the public schema),
    tenants in trouble first; each with the link to its own admin."""
    from mh1.links import host_url

    if not tenants:
        return []
    now = timezone.now()
    parts, params = [], {"now": now}
    for n, tenant in enumerate(tenants):
        schema = connection.ops.quote_name(tenant.schema_name)
        parts.append(_TENANT_ROW_SQL.replace("%(id)s", f"%(id{n})s").format(schema=schema))
        params[f"id{n}"] = tenant.pk
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    result = []
    for tenant in tenants:
        rollout, pending, overdue, failed, unknown, heartbeat, webhook = rows[tenant.pk]
        primary = [d.domain for d in tenant.domains.all() if d.is_primary]
        result.append(
            TenantRow(
                tenant=tenant,
                admin_url=host_url(primary[0], "/admin/", request=request) if primary else "",
                rollout=_json(rollout) or {},
                pending=pending,
                overdue=overdue,
                failed_24h=failed,
                unknown=unknown,
                heartbeat_at=heartbeat,
                webhook_at=webhook,
            )
        )
    return sorted(result, key=lambda row: (not row.trouble, row.tenant.name.lower()))


def tenant_home_links() -> dict[str, str]:
    """The lists behind the home page's numbers (tenant admin URLs)."""
    from django.urls import reverse

    queue = reverse("admin:approvals_actionrequest_changelist")
    return {
        "pending": f"{queue}?status=pending",
        "overdue": f"{queue}?sla=overdue",
        "mine": f"{queue}?queue=mine",
        "unassigned": f"{queue}?queue=unassigned",
        "unknown": f"{queue}?status=unknown",
        "failed": f"{queue}?status=failed",
        "approved": f"{queue}?status=approved",
        "executed": f"{queue}?status=executed",
        "rejected": f"{queue}?status=rejected",
        "budget": reverse("admin:budget_spend"),
        "runs": reverse("admin:skills_skillrun_changelist"),
        "sending": reverse("admin:policy_sendingpolicy_changelist"),
        "rollout": reverse("admin:policy_rolloutsettings_changelist"),
        "heartbeat": reverse("admin:policy_heartbeat_changelist"),
        "webhooks": reverse("admin:connectors_webhookevent_changelist"),
    }
