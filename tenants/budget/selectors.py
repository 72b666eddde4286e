"""Reads of the budget ledger for the admin's Spend page and the status summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from tenants.budget.models import (
    BudgetAlert,
    BudgetCharge,
    BudgetCounter,
    BudgetReservation,
    PeriodKind,
    ReservationStatus,
)

ZERO = Decimal("0")


@dataclass(frozen=True)
class LimitUse:
    limit: str
    label: str
    spent: Decimal
    reserved: Decimal
    allowed: Decimal

    @property
    def used(self) -> Decimal:
        return self.spent + self.reserved

    @property
    def percent(self) -> int:
        return int(self.used * 100 / self.allowed) if self.allowed else 0


def budget_status() -> dict:
    """Where the tenant stands today and this month (UTC) against each limit."""
    from tenants.budget.services import limits_read, periods_of

    limits = limits_read()
    day, month = periods_of(timezone.now())
    counters = {
        c.kind: c
        for c in BudgetCounter.objects.filter(
            Q(kind=PeriodKind.DAY, period_start=day) | Q(kind=PeriodKind.MONTH, period_start=month)
        )
    }
    d = counters.get(PeriodKind.DAY) or BudgetCounter(kind=PeriodKind.DAY, period_start=day)
    m = counters.get(PeriodKind.MONTH) or BudgetCounter(kind=PeriodKind.MONTH, period_start=month)
    return {
        "day": day,
        "month": month,
        "limits": [
            LimitUse("daily_usd", "Daily USD", d.usd_spent, d.usd_reserved, limits.daily_usd),
            LimitUse("monthly_usd", "Monthly USD", m.usd_spent, m.usd_reserved, limits.monthly_usd),
            LimitUse(
                "monthly_tokens",
                "Monthly tokens",
                Decimal(m.tokens_spent),
                Decimal(m.tokens_reserved),
                Decimal(limits.monthly_tokens),
            ),
            LimitUse("daily_runs", "Runs today", Decimal(d.runs), ZERO, Decimal(limits.daily_runs)),
        ],
        "per_run_usd": limits.per_run_usd,
        "thresholds": list(limits.thresholds),
        "open_reservations": BudgetReservation.objects.filter(status=ReservationStatus.OPEN).count(),
    }


def spend_by_day(days: int = 30) -> list[BudgetCounter]:
    """The day counters of the last ``days`` days (UTC), newest first, missing days as zeros."""
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows = {
        c.period_start: c for c in BudgetCounter.objects.filter(kind=PeriodKind.DAY, period_start__gte=first)
    }
    return [
        rows.get(first + timedelta(days=n))
        or BudgetCounter(kind=PeriodKind.DAY, period_start=first + timedelta(days=n))
        for n in range(days - 1, -1, -1)
    ]


@dataclass(frozen=True)
class SkillSpend:
    skill: str
    name: str
    runs: int
    spent_usd: Decimal
    charged_usd: Decimal
    target_usd: Decimal | None
    max_usd: Decimal | None

    @property
    def average_usd(self) -> Decimal | None:
        if not self.runs:
            return None
        return ((self.spent_usd + self.charged_usd) / self.runs).quantize(Decimal("0.000001"))

    @property
    def verdict(self) -> str:
        average = self.average_usd
        if average is None or self.target_usd is None:
            return ""
        if self.max_usd is not None and average > self.max_usd:
            return "above maximum"
        if average > self.target_usd:
            return "above target"
        return "within target"


def spend_by_skill(since: date | None = None) -> list[SkillSpend]:
    """Each skill's ended runs since ``since`` (default: 30 days ago): their average cost (model
    calls plus priced actions charged to the skill) beside the contract's cost target."""
    from skills import registry

    since = since or timezone.now().date() - timedelta(days=29)
    ended = (
        BudgetReservation.objects.filter(created_at__date__gte=since)
        .exclude(status=ReservationStatus.OPEN)
        .values("skill")
        .annotate(runs=Count("id"), spent=Sum("spent_usd"))
    )
    charged = (
        BudgetCharge.objects.filter(at__date__gte=since)
        .exclude(skill="")
        .values("skill")
        .annotate(usd=Sum("usd"))
    )
    runs = {row["skill"]: (row["runs"], row["spent"] or ZERO) for row in ended}
    charges = {row["skill"]: row["usd"] or ZERO for row in charged}
    contracts = {s.contract.slug: s.contract for s in registry.all_skills()}
    result = []
    for slug in sorted(set(runs) | set(charges) | set(contracts)):
        contract = contracts.get(slug)
        count, spent = runs.get(slug, (0, ZERO))
        result.append(
            SkillSpend(
                skill=slug,
                name=contract.name if contract else slug or "(no skill)",
                runs=count,
                spent_usd=spent,
                charged_usd=charges.get(slug, ZERO),
                target_usd=contract.cost.target_usd if contract else None,
                max_usd=contract.cost.max_usd if contract else None,
            )
        )
    return result


def open_reservations(limit: int = 100):
    return BudgetReservation.objects.filter(status=ReservationStatus.OPEN).order_by("created_at")[:limit]


def recent_alerts(limit: int = 50):
    return BudgetAlert.objects.order_by("-created_at")[:limit]


@dataclass(frozen=True)
class TenantSpend:
    name: str
    schema_name: str
    status: dict
    top_skill: str


def spend_by_tenant() -> list[TenantSpend]:
    """Every active tenant's standing this month and today (read in each tenant's own schema: one
    short read per tenant), for the platform operator; the fullest monthly budget first."""
    from django_tenants.utils import schema_context

    from tenants.models import Tenant

    rows = []
    for tenant in Tenant.objects.clients().filter(is_active=True).order_by("name"):
        with schema_context(tenant.schema_name):
            status = budget_status()
            month = status["month"]
            top = (
                BudgetReservation.objects.filter(created_at__date__gte=month)
                .values("skill")
                .annotate(spent=Sum("spent_usd"))
                .order_by("-spent")
                .first()
            )
        rows.append(
            TenantSpend(
                name=tenant.name,
                schema_name=tenant.schema_name,
                status=status,
                top_skill=top["skill"] if top and top["spent"] else "",
            )
        )

    def monthly_percent(row: TenantSpend) -> int:
        return next(use.percent for use in row.status["limits"] if use.limit == "monthly_usd")

    return sorted(rows, key=lambda row: (-monthly_percent(row), row.name))
