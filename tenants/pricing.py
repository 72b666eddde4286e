"""Model prices (public schema): what one million tokens of each model cost, from a date on.

The price in force at time t is the row of that model with the latest ``effective_from`` <= t, so
a price change is a new row and past runs keep the price they were charged at.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class ModelPrice(models.Model):
    """USD per million tokens of one model, in force from ``effective_from`` until the next row."""

    model = models.CharField(max_length=100, help_text="As the provider names it, e.g. claude-sonnet-4-5.")
    input_usd_per_mtok = models.DecimalField(
        "input USD / million tokens", max_digits=12, decimal_places=6, validators=[MinValueValidator(0)]
    )
    output_usd_per_mtok = models.DecimalField(
        "output USD / million tokens", max_digits=12, decimal_places=6, validators=[MinValueValidator(0)]
    )
    cached_input_usd_per_mtok = models.DecimalField(
        "cached input USD / million tokens",
        max_digits=12,
        decimal_places=6,
        default=Decimal("0"),
        validators=[MinValueValidator(0)],
        help_text="Prompt-cache reads.",
    )
    effective_from = models.DateTimeField(help_text="In force from this moment (UTC) until the next price.")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        app_label = "tenants"
        ordering = ("model", "-effective_from")
        verbose_name = "model price"
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="%(app_label)s_%(class)s_once"),
            models.CheckConstraint(
                condition=Q(input_usd_per_mtok__gte=0)
                & Q(output_usd_per_mtok__gte=0)
                & Q(cached_input_usd_per_mtok__gte=0),
                name="%(app_label)s_%(class)s_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from:%Y-%m-%d}"
