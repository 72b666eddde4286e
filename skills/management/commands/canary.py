"""``manage.py canary --schema S``: a synthetic lead through every skill and the release policy;
prints each guardrail it hit. Everything is rolled back: nothing remains, nothing is sent."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from skills.services.canary import canary_run


class Command(BaseCommand):
    help = "Run a synthetic lead through every skill and the release policy; report the guardrails hit."

    def add_arguments(self, parser):
        parser.add_argument("--schema", required=True, help="The tenant's schema name.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")

    def handle(self, *args, schema: str, as_json: bool = False, **options):
        from tenants.models import Tenant

        if not Tenant.objects.filter(schema_name=schema).exclude(schema_name="public").exists():
            raise CommandError(f"No tenant with schema {schema!r}.")
        with schema_context(schema):
            results = canary_run()
        if as_json:
            self.stdout.write(_json([r.__dict__ for r in results]))
            return
        for result in results:
            self.stdout.write(
                f"{result.skill}: {result.status}; score {result.score}; release {result.decision}; "
                f"cost ${result.cost_usd or '0'}"
            )
            for guardrail in result.guardrails or ["no guardrail hit"]:
                self.stdout.write(f"  - {guardrail}")


def _json(value) -> str:
    return json.dumps(value, indent=2, default=str)
