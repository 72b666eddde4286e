"""What a model call costs: the price in force at a moment times the tokens, in dollars.

Streamed and non-streamed calls are priced the same: by the tokens the provider reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

from tenants.budget.errors import Unpriced

MILLION = Decimal(1_000_000)
CENT_MILLIONTHS = Decimal("0.000001")  # the ledger's precision
# Providers answer with dated snapshot names ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06");
# a snapshot is priced as its model when it has no price of its own.
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens of a model, as in force at a moment."""

    model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    cached_input_usd_per_mtok: Decimal


def price_names(model: str) -> list[str]:
    """The names a model is priced under, preferred first: its own, then its undated name."""
    undated = _SNAPSHOT.sub("", model)
    return [model] if undated == model else [model, undated]


# The ModelPrice row in force at %(at)s of the first of %(names)s that has one (public schema, on
# every tenant's search path). Also a lateral part of the budget's one-statement read.
PRICE_SQL = """
SELECT model, input_usd_per_mtok, output_usd_per_mtok, cached_input_usd_per_mtok
  FROM public.tenants_modelprice
 WHERE model = ANY(%(names)s::text[]) AND effective_from <= %(at)s::timestamptz
 ORDER BY array_position(%(names)s::text[], model::text), effective_from DESC
 LIMIT 1
"""


def price_in_force(model: str, at: datetime) -> Price | None:
    """The price of ``model`` in force at ``at`` (or of its undated name), or None."""
    with connection.cursor() as cursor:
        cursor.execute(PRICE_SQL, {"names": price_names(model), "at": at})
        row = cursor.fetchone()
    return Price(*row) if row else None


def usd_of(price: Price, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> Decimal:
    """Dollars (to the millionth) of the tokens at ``price``."""
    if min(input_tokens, output_tokens, cached_input_tokens) < 0:
        raise ValueError("token counts cannot be negative")
    usd = (
        input_tokens * price.input_usd_per_mtok
        + output_tokens * price.output_usd_per_mtok
        + cached_input_tokens * price.cached_input_usd_per_mtok
    ) / MILLION
    return usd.quantize(CENT_MILLIONTHS, rounding=ROUND_HALF_UP)


def cost_of(
    *, model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0, at: datetime
) -> Decimal:
    """Dollars (to the millionth) of a call; raises Unpriced when no price is in force at ``at``.

    ``input_tokens`` excludes the cached ones, as the providers report them.
    """
    if at.tzinfo is None:
        raise ValueError("cost_of needs an aware datetime")
    if min(input_tokens, output_tokens, cached_input_tokens) < 0:
        raise ValueError("token counts cannot be negative")
    price = price_in_force(model, at)
    if price is None:
        raise Unpriced(model, at)
    return usd_of(
        price, input_tokens=input_tokens, output_tokens=output_tokens, cached_input_tokens=cached_input_tokens
    )
