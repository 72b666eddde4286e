"""Tenant schema: the canonical lead, the lifecycle taxonomy, the per-system field maps and the
messaging pack."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from campaigns.icp_rules import domain_key_sql, email_domain_sql, value_key_sql
from mh1.addresses import AddressInvalid, domain_normalize, email_normalize


class SourceSystem(models.TextChoices):
    HUBSPOT = "hubspot", "HubSpot"
    GOHIGHLEVEL = "gohighlevel", "GoHighLevel"
    INSTANTLY = "instantly", "Instantly"
    CLAY = "clay", "Clay"
    CSV = "csv", "CSV import"
    SYNTHETIC = "synthetic", "Synthetic"
    MANUAL = "manual", "Manual"


class LegalBasis(models.TextChoices):
    """GDPR Art. 6(1) lawful bases for holding a person's data."""

    CONSENT = "consent", "Consent"
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"
    CONTRACT = "contract", "Contract"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"
    VITAL_INTEREST = "vital_interest", "Vital interest"
    PUBLIC_TASK = "public_task", "Public task"


class IcpTier(models.TextChoices):
    A = "A", "A"
    B = "B", "B"
    C = "C", "C"
    D = "D", "D"


class ValueKey(models.Func):
    """``campaigns.icp_rules.value_key`` in SQL (for the lead's stored keys)."""

    template = value_key_sql("%(expressions)s")
    output_field = models.TextField()


class DomainKey(models.Func):
    """``campaigns.icp_rules.domain_key`` in SQL."""

    template = domain_key_sql("%(expressions)s")
    output_field = models.TextField()


class EmailDomain(models.Func):
    """``campaigns.icp_rules.email_domain`` in SQL."""

    template = email_domain_sql("%(expressions)s")
    output_field = models.TextField()


def _stored_key(expression: models.Func) -> models.GeneratedField:
    return models.GeneratedField(expression=expression, output_field=models.TextField(), db_persist=True)


class LifecycleStage(models.Model):
    """One stage of this tenant's lead lifecycle, and the name its CRM uses for it."""

    key = models.SlugField(max_length=40, unique=True, help_text="Our name, e.g. mql.")
    label = models.CharField(max_length=80)
    crm_value = models.CharField(
        max_length=80,
        blank=True,
        help_text="The CRM's value for this stage (e.g. HubSpot's marketingqualifiedlead); "
        "blank means the same as the key.",
    )
    order = models.PositiveSmallIntegerField(default=0)
    is_terminal = models.BooleanField(default=False, help_text="Leads here are no longer prospected.")

    class Meta:
        ordering = ("order", "key")

    def __str__(self) -> str:
        return self.label

    @property
    def remote_value(self) -> str:
        return self.crm_value or self.key


class Lead(models.Model):
    """The canonical lead, whatever system it came from; unique by lower-cased email."""

    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company = models.CharField(max_length=200, blank=True)
    company_domain = models.CharField(max_length=253, blank=True)
    title = models.CharField(max_length=200, blank=True)
    seniority = models.CharField(max_length=50, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    company_size = models.PositiveIntegerField(null=True, blank=True, help_text="Employees.")
    country = models.CharField(max_length=100, blank=True)
    lifecycle_stage = models.CharField(
        max_length=40, default="lead", help_text="A key of this tenant's lifecycle stages."
    )
    source_system = models.CharField(max_length=16, choices=SourceSystem.choices, default=SourceSystem.MANUAL)
    source_id = models.CharField(max_length=200, blank=True, help_text="The record's id in its source.")
    icp_score = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    icp_tier = models.CharField(max_length=1, choices=IcpTier.choices, blank=True)
    # Why the lead has its score, one reason a dimension ("industry SaaS matches", "company size 40
    # below 50"): written with the score by campaigns.scoring, never edited by hand.
    icp_reasons = ArrayField(models.TextField(), default=list, blank=True)
    # Provenance (GDPR): where the data came from, when, and on what lawful basis we hold it.
    data_source = models.CharField(max_length=100, blank=True, help_text="E.g. clay, event list.")
    collected_at = models.DateTimeField(null=True, blank=True)
    legal_basis = models.CharField(max_length=32, choices=LegalBasis.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The keys the ICP scoring compares (campaigns.icp_rules), computed by PostgreSQL whenever the
    # lead is written, so that re-scoring a million leads does not normalise a million values again.
    industry_key = _stored_key(ValueKey("industry"))
    title_key = _stored_key(ValueKey("title"))
    seniority_key = _stored_key(ValueKey("seniority"))
    country_key = _stored_key(ValueKey("country"))
    email_domain = _stored_key(EmailDomain("email"))
    company_domain_key = _stored_key(DomainKey("company_domain"))

    class Meta:
        ordering = ("-created_at", "id")
        indexes = [
            models.Index(fields=["lifecycle_stage"], name="campaigns_lead_stage_idx"),
            models.Index(fields=["company_domain"], name="campaigns_lead_domain_idx"),
            # the lead list's order (newest first, then id): its page is read from the index
            models.Index(fields=["created_at", "id"], name="campaigns_lead_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(email=Lower("email")), name="%(app_label)s_%(class)s_email_lower"
            ),
            models.CheckConstraint(
                condition=Q(icp_score__isnull=True) | Q(icp_score__gte=0, icp_score__lte=100),
                name="%(app_label)s_%(class)s_icp_score_range",
            ),
            models.CheckConstraint(
                condition=Q(icp_tier__in=["", *IcpTier.values]), name="%(app_label)s_%(class)s_icp_tier"
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        """The one validation of a lead, for the admin form, ``lead_upsert`` (CRM pulls, the API)
        and the CSV import alike: the email and company domain are made canonical by
        ``mh1.addresses`` (as suppressions and recipients are), the stage must be the tenant's."""
        errors: dict[str, str] = {}
        try:
            self.email = email_normalize(self.email or "")
        except AddressInvalid as exc:
            errors["email"] = exc.message
        if (self.company_domain or "").strip():
            try:
                self.company_domain = domain_normalize(self.company_domain)
            except AddressInvalid as exc:
                errors["company_domain"] = exc.message
        else:
            self.company_domain = ""
        if not LifecycleStage.objects.filter(key=self.lifecycle_stage).exists():
            known = ", ".join(LifecycleStage.objects.values_list("key", flat=True)) or "none defined"
            errors["lifecycle_stage"] = (
                f"Unknown lifecycle stage “{self.lifecycle_stage}”; known stages: {known}."
            )
        if errors:
            raise ValidationError(errors)


class Direction(models.TextChoices):
    BOTH = "both", "Both ways"
    IN = "in", "In only (remote → lead)"
    OUT = "out", "Out only (lead → remote)"


class Transform(models.TextChoices):
    NONE = "none", "None"
    LOWER = "lower", "Lower case"
    UPPER = "upper", "Upper case"
    LIFECYCLE = "lifecycle", "Lifecycle stage ↔ the CRM's stage value"
    TIER_TAG = "tier_tag", "ICP tier ↔ a tier_N tag (A → tier_1)"


class FieldMap(models.Model):
    """Which remote field of a system holds a canonical lead field, and how values convert."""

    system = models.CharField(max_length=16, choices=SourceSystem.choices)
    canonical_field = models.CharField(max_length=40, help_text="A field of the lead, e.g. first_name.")
    remote_field = models.CharField(
        max_length=100, help_text="Dots address nested objects, e.g. customField.title."
    )
    direction = models.CharField(max_length=4, choices=Direction.choices, default=Direction.BOTH)
    transform = models.CharField(max_length=16, choices=Transform.choices, default=Transform.NONE)

    class Meta:
        ordering = ("system", "canonical_field")
        constraints = [
            models.UniqueConstraint(
                fields=["system", "canonical_field"], name="%(app_label)s_%(class)s_unique_field"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.system}: {self.canonical_field} → {self.remote_field}"

    def clean(self) -> None:
        names = {f.name for f in Lead._meta.get_fields() if f.concrete and not f.primary_key}
        if self.canonical_field not in names:
            raise ValidationError({"canonical_field": f"The lead has no field “{self.canonical_field}”."})


class MessagingPack(models.Model):
    """The tenant's voice for outreach, versioned: every save is a new version and runs cite the
    version they used. Campaign copy is written from it; the evaluation checks copy against it."""

    version = models.PositiveIntegerField(unique=True)
    is_active = models.BooleanField(default=True)
    company_name = models.CharField(max_length=200, help_text="Who the emails are from.")
    value_proposition = models.TextField(help_text="One or two sentences the copy builds on.")
    # tier (A/B/C) → {"subject": …, "body": …, "follow_ups": [{"after_days": 3, "subject": …, "body": …}]}
    # with {first_name}, {company}, {title}, {industry}, {pain_point}, {sender_name} placeholders
    tier_templates = models.JSONField(default=dict)
    personalisation_rules = models.JSONField(
        default=dict,
        blank=True,
        help_text='E.g. {"pain_points": {"SaaS": "…"}, "max_words": 120, "fallback_first_name": "there"}.',
    )
    forbidden_claims = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        help_text="Phrases copy must never contain.",
    )
    brand_words = ArrayField(
        models.CharField(max_length=100), default=list, blank=True, help_text="Words the brand voice uses."
    )
    avoid_words = ArrayField(
        models.CharField(max_length=100), default=list, blank=True, help_text="Words the brand voice avoids."
    )
    postal_address = models.CharField(
        max_length=300, help_text="The sender's physical postal address (CAN-SPAM): every email carries it."
    )
    sender_name = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-version",)
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="%(app_label)s_%(class)s_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"Messaging pack v{self.version}"


class IcpRescore(models.Model):
    """One re-scoring of every lead against the ICP, run after the ICP is saved.

    It runs in batches (``campaigns.scoring``) along one or more chains of lead-id ranges, each
    chain a Celery task that re-enqueues itself until its range is done. A newer ICP edit
    supersedes a rescore still running: its chains stop at their next batch.
    """

    icp_updated_at = models.DateTimeField(null=True, blank=True, help_text="The ICP version scored against.")
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    chains_open = models.PositiveSmallIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    leads_scanned = models.PositiveIntegerField(default=0)
    leads_changed = models.PositiveIntegerField(
        default=0, help_text="Leads whose score, tier or reasons changed."
    )

    class Meta:
        ordering = ("-requested_at",)
        verbose_name = "ICP re-scoring"

    def __str__(self) -> str:
        state = "finished" if self.finished_at else ("superseded" if self.superseded_at else "running")
        return f"ICP re-scoring #{self.pk} ({state})"


class IcpRescoreChain(models.Model):
    """One chain of an ICP re-scoring: the leads with ``after_id < id <= upto_id`` (no upper end when
    ``upto_id`` is null), done in id order; ``after_id`` is how far it got."""

    rescore = models.ForeignKey(IcpRescore, on_delete=models.CASCADE, related_name="chains")
    after_id = models.BigIntegerField()
    upto_id = models.BigIntegerField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("rescore", "after_id")

    def __str__(self) -> str:
        return f"chain {self.pk} of re-scoring #{self.rescore_id}"
