"""Insert synthetic leads into one tenant: the same leads for the same seed, never twice."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import get_tenant_model, schema_context

from campaigns.services import leads_generate_synthetic


class Command(BaseCommand):
    help = "Generate deterministic synthetic leads in a tenant (e.g. --schema acme --count 500)."

    def add_arguments(self, parser):
        parser.add_argument("--schema", required=True, help="The tenant's schema name, e.g. acme.")
        parser.add_argument("--count", type=int, default=100)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, schema: str, count: int, seed: int, **options):
        tenant = get_tenant_model().objects.filter(schema_name=schema).first()
        if tenant is None or tenant.is_public:
            raise CommandError(f"No tenant with schema “{schema}”.")
        if count < 0:
            raise CommandError("--count cannot be negative.")
        with schema_context(schema):
            created = leads_generate_synthetic(count, seed=seed)
        self.stdout.write(f"{schema}: {created} new synthetic leads ({count - created} already there).")
