"""Budget test fixtures: the alpha tenant with limits set for the test, and a test model's price."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from tenants.models import ModelPrice
from tenants.policy.models import QuotaPolicy

# $1 per million input tokens, $2 per million output tokens: 100 000 input tokens cost $0.10.
TEST_MODEL = "test-model"


def set_limits(**limits) -> QuotaPolicy:
    """Generous limits, with the ones a test is about overridden."""
    values = {
        "daily_usd_limit": Decimal("25.00"),
        "monthly_usd_limit": Decimal("500.00"),
        "per_run_usd_limit": Decimal("2.00"),
        "monthly_token_budget": 100_000_000,
        "daily_run_limit": 1000,
        "alert_thresholds": [],
        **limits,
    }
    policy = QuotaPolicy.get_solo()
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    return policy


def tokens_for(usd: str) -> int:
    """Input tokens of TEST_MODEL that cost ``usd``."""
    return int(Decimal(usd) * 1_000_000)


@pytest.fixture
def tenant(alpha):
    connection.set_tenant(alpha)
    ModelPrice.objects.create(
        model=TEST_MODEL,
        input_usd_per_mtok=Decimal("1"),
        output_usd_per_mtok=Decimal("2"),
        cached_input_usd_per_mtok=Decimal("0.10"),
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
    )
    set_limits()
    return alpha
