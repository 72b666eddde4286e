"""Seed the prices of the models the skills use.

These are the providers' public list prices as of 2025, in USD per million tokens (cached input:
prompt-cache reads); they are editable in the platform admin (Platform › Model prices), where a
change is a new row with its own effective date. "offline-deterministic" is the offline provider:
priced at zero, so its runs still reserve, count against the run limits and show in the ledger.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

EFFECTIVE_FROM = datetime(2025, 1, 1, tzinfo=UTC)
NOTE = "List price as of 2025 (seeded)"
# model: (input, output, cached input) USD per million tokens
PRICES = {
    "offline-deterministic": ("0", "0", "0"),
    "claude-sonnet-4-5": ("3.00", "15.00", "0.30"),
    "claude-haiku-4-5": ("1.00", "5.00", "0.10"),
    "claude-opus-4-1": ("15.00", "75.00", "1.50"),
    "gpt-4o": ("2.50", "10.00", "1.25"),
    "gpt-4o-mini": ("0.15", "0.60", "0.075"),
    # the OpenAI provider's default model (skills.providers.vendors)
    "gpt-4.1": ("2.00", "8.00", "0.50"),
}


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("tenants", "ModelPrice")
    for model, (inp, out, cached) in PRICES.items():
        ModelPrice.objects.get_or_create(
            model=model,
            effective_from=EFFECTIVE_FROM,
            defaults={
                "input_usd_per_mtok": Decimal(inp),
                "output_usd_per_mtok": Decimal(out),
                "cached_input_usd_per_mtok": Decimal(cached),
                "note": NOTE,
            },
        )


def unseed(apps, schema_editor):
    ModelPrice = apps.get_model("tenants", "ModelPrice")
    ModelPrice.objects.filter(effective_from=EFFECTIVE_FROM, note=NOTE, model__in=PRICES).delete()


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_modelprice")]

    operations = [migrations.RunPython(seed, unseed)]
