"""Create a tenant (schema, domain, first admin) from the command line."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.errors import TenantError
from tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant: its schema (cloned from the template), its host and its first admin."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True, help="Host becomes <slug>.<TENANT_BASE_DOMAIN>.")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-name", default="")
        parser.add_argument("--admin-password", default=None, help="Generated when omitted.")

    def handle(self, *args, **options):
        try:
            provisioned = tenant_create(
                acting_user=None,
                name=options["name"],
                slug=options["slug"],
                admin_email=options["admin_email"],
                admin_full_name=options["admin_name"],
                admin_password=options["admin_password"],
            )
        except TenantError as exc:
            raise CommandError(exc.message) from exc
        except ValidationError as exc:  # the admin password failed AUTH_PASSWORD_VALIDATORS
            raise CommandError(f"Admin password refused: {' '.join(exc.messages)}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Created tenant {provisioned.tenant.name} in {provisioned.seconds:.2f} s: "
                f"http://{provisioned.domain.domain}:8000/admin/"
            )
        )
        self.stdout.write(f"First admin: {provisioned.admin_username}")
        if provisioned.admin_password:
            self.stdout.write(f"Password (shown once): {provisioned.admin_password}")
