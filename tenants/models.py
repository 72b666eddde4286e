"""Public-schema models: tenants, their domains, access grants and platform settings."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin
from solo.models import SingletonModel
from timezone_field import TimeZoneField

from tenants.roles import Role

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$",
    "Use 3-40 lowercase letters, digits and hyphens, starting with a letter.",
)
RESERVED_SLUGS = frozenset({"public", "www", "admin", "api", "static", "tenant-template", "healthz"})


class TenantQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True).exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)

    def clients(self):
        return self.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)


class Tenant(TenantMixin):
    """A client company: one PostgreSQL schema, served on its own host."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=40, unique=True, validators=[SLUG_VALIDATOR])
    is_active = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Every page of the tenant's admin shows times here (UTC on hover); stored times stay UTC.
    time_zone = TimeZoneField(
        default="UTC", help_text="The tenant's pages show times in this zone, e.g. Europe/Berlin."
    )

    auto_create_schema = True
    auto_drop_schema = False

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == settings.PUBLIC_SCHEMA_NAME


class Domain(DomainMixin):
    """A host name that serves one tenant's admin and API."""

    class Meta:
        ordering = ("domain",)

    def __str__(self) -> str:
        return self.domain


class TenantAccessGrant(models.Model):
    """A person's access to one tenant with one role, granted by a platform operator.

    The grant is the operator's record; the login itself is the user row in the tenant's schema,
    which the grant service creates, updates and deactivates.
    """

    email = models.EmailField()
    full_name = models.CharField(max_length=200, blank=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="access_grants")
    role = models.CharField(max_length=32, choices=Role.tenant_choices())
    is_active = models.BooleanField(default=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("email", "tenant__name")
        constraints = [
            models.UniqueConstraint(fields=("email", "tenant"), name="%(app_label)s_%(class)s_one_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant} ({self.get_role_display()})"


class PlatformSettings(SingletonModel):
    """Platform-wide switches; the global kill switch stops every external effect everywhere."""

    global_kill_switch = models.BooleanField(
        default=False,
        help_text="When on, no tenant executes any external action (CRM write, email, enrichment).",
    )
    kill_switch_reason = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "platform settings"
        verbose_name_plural = "platform settings"

    def __str__(self) -> str:
        return "Platform settings"


# Model prices live beside the budget code that reads them; the table is public (shared app).
from tenants.pricing import ModelPrice  # noqa: E402, F401
