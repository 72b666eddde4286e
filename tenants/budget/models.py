"""The budget ledger in each tenant schema: counters per day and month, reservations of runs,
charges of priced actions, and alerts sent.

Counters change only by conditional SQL (``tenants.budget.services``); reservations and charges
are the record the counters are reconciled from. Periods are days and months in UTC.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.budget.errors import LIMIT_LABELS

USD = {"max_digits": 14, "decimal_places": 6}
ZERO = Decimal("0")


class PeriodKind(models.TextChoices):
    DAY = "day", "Day (UTC)"
    MONTH = "month", "Month (UTC)"


class BudgetCounter(models.Model):
    """Spend and outstanding reservations of one day or month (UTC), and runs admitted in it."""

    kind = models.CharField(max_length=5, choices=PeriodKind.choices)
    period_start = models.DateField(help_text="The day, or the first day of the month (UTC).")
    usd_spent = models.DecimalField(**USD, default=ZERO, db_default=ZERO)
    usd_reserved = models.DecimalField(**USD, default=ZERO, db_default=ZERO)
    tokens_spent = models.BigIntegerField(default=0, db_default=0)
    tokens_reserved = models.BigIntegerField(default=0, db_default=0)
    runs = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ("-period_start", "kind")
        verbose_name = "budget counter"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "period_start"], name="%(app_label)s_%(class)s_one_per_period"
            ),
            models.CheckConstraint(
                condition=Q(usd_spent__gte=0)
                & Q(usd_reserved__gte=0)
                & Q(tokens_spent__gte=0)
                & Q(tokens_reserved__gte=0)
                & Q(runs__gte=0),
                name="%(app_label)s_%(class)s_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.period_start}"


class ReservationStatus(models.TextChoices):
    OPEN = "open", "Open (the run is under way)"
    SETTLED = "settled", "Settled (the run ended)"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired (the run died; released by the sweep)"


class BudgetReservation(models.Model):
    """The worst case of one run, held against the budget until the run ends."""

    # unique by a constraint, not unique=True: no second (LIKE) index to maintain on every insert
    key = models.CharField(max_length=200)
    skill = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=100, blank=True)
    reserved_usd = models.DecimalField(**USD, default=ZERO)
    reserved_tokens = models.BigIntegerField(default=0)
    spent_usd = models.DecimalField(**USD, default=ZERO, db_default=ZERO)
    spent_tokens = models.BigIntegerField(default=0, db_default=0)
    status = models.CharField(
        max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.OPEN
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(help_text="Open past this moment: the run died; the sweep releases it.")
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "budget reservation"
        constraints = [
            models.CheckConstraint(
                condition=Q(reserved_usd__gte=0)
                & Q(reserved_tokens__gte=0)
                & Q(spent_usd__gte=0)
                & Q(spent_tokens__gte=0),
                name="%(app_label)s_%(class)s_not_negative",
            ),
            models.UniqueConstraint(fields=["key"], name="budget_reservation_key_uniq"),
        ]
        # Few indexes: every run inserts a row while it holds the day's counter. The sweep reads
        # the open ones by expiry; the admin and the Spend page read by time.
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(status="open"), name="budget_reservation_open_exp"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"

    @property
    def outstanding_usd(self) -> Decimal:
        """What is still held: the reservation less what was spent (never below zero)."""
        if self.status != ReservationStatus.OPEN:
            return ZERO
        return max(self.reserved_usd - self.spent_usd, ZERO)


class BudgetCharge(models.Model):
    """A priced action charged when it executed (e.g. a Clay enrichment row): a cost incurred."""

    key = models.CharField(max_length=200, unique=True, help_text="Idempotency: one charge per key.")
    usd = models.DecimalField(**USD)
    tokens = models.BigIntegerField(default=0)
    skill = models.CharField(max_length=64, blank=True, db_index=True)
    source = models.CharField(max_length=64, blank=True, help_text="E.g. clay.")
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-at",)
        verbose_name = "budget charge"
        constraints = [
            models.CheckConstraint(
                condition=Q(usd__gte=0) & Q(tokens__gte=0), name="%(app_label)s_%(class)s_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source or 'charge'} {self.key}"


LIMIT_CHOICES = [(name, label) for name, (label, _) in LIMIT_LABELS.items()]


class BudgetAlert(models.Model):
    """Spend plus reservations passed a threshold of a limit: sent once per threshold and period."""

    limit = models.CharField(max_length=20, choices=LIMIT_CHOICES)
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the limit.")
    period_start = models.DateField()
    used = models.DecimalField(**USD, help_text="Spent plus reserved when it fired.")
    allowed = models.DecimalField(**USD, help_text="The limit then.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "budget alert"
        constraints = [
            models.UniqueConstraint(
                fields=["limit", "threshold", "period_start"], name="%(app_label)s_%(class)s_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_limit_display()} {self.threshold}% ({self.period_start})"
