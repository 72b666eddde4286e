"""What a model call costs: the price in force at a moment times the tokens, in dollars.

Streamed and non-streamed calls are priced the same: by the tokens the provider reports.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from tenants.budget.errors import Unpriced

MILLION = Decimal(1_000_000)
CENT_MILLIONTHS = Decimal("0.000001")  # the ledger's precision
# Providers answer with dated snapshot names ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06");
# a snapshot is priced as its model when it has no price of its own.
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def price_in_force(model: str, at: datetime):
    """The ModelPrice row of ``model`` in force at ``at`` (or of its undated name), or None."""
    from tenants.models import ModelPrice

    names = [model]
    undated = _SNAPSHOT.sub("", model)
    if undated != model:
        names.append(undated)
    rows = {
        row.model: row
        for row in ModelPrice.objects.filter(model__in=names, effective_from__lte=at)
        .order_by("model", "-effective_from")
        .distinct("model")
    }
    for name in names:
        if name in rows:
            return rows[name]
    return None


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
    usd = (
        input_tokens * price.input_usd_per_mtok
        + output_tokens * price.output_usd_per_mtok
        + cached_input_tokens * price.cached_input_usd_per_mtok
    ) / MILLION
    return usd.quantize(CENT_MILLIONTHS, rounding=ROUND_HALF_UP)
