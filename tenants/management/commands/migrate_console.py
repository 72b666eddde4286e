"""Migrate everything: public schema, the tenant template schema, then every tenant."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django_tenants.utils import schema_exists

from tenants.services import public_tenant_ensure


class Command(BaseCommand):
    help = (
        "Migrate the public schema, the empty template schema new tenants are cloned from, "
        "and every tenant schema."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--executor",
            default=settings.TENANT_MIGRATION_EXECUTOR,
            help="standard, or multiprocessing for many tenants (pitfall 7).",
        )

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        template = settings.TENANT_BASE_SCHEMA
        if not schema_exists(template):
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA "{template}"')
        call_command(
            "migrate_schemas", tenant=True, schema_name=template, interactive=False, verbosity=verbosity
        )
        call_command(
            "migrate_schemas",
            tenant=True,
            interactive=False,
            executor=options["executor"],
            verbosity=verbosity,
        )
        connection.set_schema_to_public()
        public_tenant_ensure()
        self.stdout.write(self.style.SUCCESS("Public, template and tenant schemas are migrated."))
