"""Tenant-schema connector state: credentials, the suppression list, inbound webhook events."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from connectors.crypto import EncryptedJSONField


class System(models.TextChoices):
    HUBSPOT = "hubspot", "HubSpot"
    GOHIGHLEVEL = "gohighlevel", "GoHighLevel"
    INSTANTLY = "instantly", "Instantly"
    CLAY = "clay", "Clay"
    SMTP = "smtp", "SMTP"
    MH1 = "mh1", "MH1 (our own links)"
    ANTHROPIC = "anthropic", "Anthropic (LLM)"
    OPENAI = "openai", "OpenAI (LLM)"


class Credential(models.Model):
    """How this tenant reaches one system; the secret is encrypted and never shown back."""

    system = models.CharField(max_length=16, choices=System.choices, unique=True)
    base_url = models.URLField(blank=True, help_text="Empty: the vendor's real API.")
    secret = EncryptedJSONField(help_text='Token and settings, e.g. {"token": "…"}; write-only.')
    timeout_seconds = models.PositiveSmallIntegerField(default=30)
    rotated_at = models.DateTimeField(default=timezone.now)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("system",)

    def __str__(self) -> str:
        return f"{self.get_system_display()} credentials"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from connectors.egress import url_refusal

        if refusal := url_refusal(self.system, self.base_url):
            raise ValidationError({"base_url": refusal})


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Spam complaint"
    DNC = "dnc", "Do-not-contact tag"
    MANUAL = "manual", "Manual"
    GDPR_ERASURE = "gdpr_erasure", "GDPR erasure"


class Suppression(models.Model):
    """One source of truth per tenant: an address or a whole domain nobody may contact."""

    email = models.EmailField(blank=True, help_text="Lower case; empty for a domain entry.")
    domain = models.CharField(max_length=253, blank=True, help_text="Lower case; empty for an address.")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    source = models.CharField(max_length=32, help_text="Where it came from: instantly, hubspot, admin, link…")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    pushed_to = models.JSONField(default=dict, blank=True, help_text="System → time it was synced there.")

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=(Q(email="") & ~Q(domain="")) | (~Q(email="") & Q(domain="")),
                name="%(app_label)s_%(class)s_email_xor_domain",
            ),
            models.UniqueConstraint(
                fields=("email",), condition=~Q(email=""), name="%(app_label)s_%(class)s_unique_email"
            ),
            models.UniqueConstraint(
                fields=("domain",), condition=~Q(domain=""), name="%(app_label)s_%(class)s_unique_domain"
            ),
        ]
        # the suppression list's order (newest first, then id): its page is read from the index
        indexes = [models.Index(fields=("created_at", "id"), name="connectors_suppr_created_idx")]

    def __str__(self) -> str:
        return self.email or f"@{self.domain}"


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    """A tenant's inbound webhook for one system, with its own secret."""

    system = models.CharField(max_length=16, choices=System.choices, unique=True)
    secret = EncryptedJSONField(default=_new_secret)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("system",)

    def __str__(self) -> str:
        return f"{self.get_system_display()} webhook"


class WebhookEvent(models.Model):
    """An inbound event, stored once by (system, event id); replays are acknowledged and ignored."""

    system = models.CharField(max_length=16, choices=System.choices)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=64)
    email = models.EmailField(blank=True, db_index=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    outcome = models.CharField(max_length=200, blank=True)
    # Its effect waits for data we could not read yet (e.g. a HubSpot opt-out's contact email): a
    # task resolves it, and a sweep the ones whose task was lost. db_default: the lean accept path
    # (connectors.ingest) inserts rows without naming this column.
    pending = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ("-received_at",)
        constraints = [
            models.UniqueConstraint(fields=("system", "event_id"), name="%(app_label)s_%(class)s_once")
        ]
        indexes = [
            models.Index(
                fields=("received_at",), condition=Q(pending=True), name="connectors_webhook_pending_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.system}:{self.event_type} {self.email}"


class CallStatus(models.TextChoices):
    STARTED = "started", "Started (outcome not yet known)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Outcome unknown"


class CallLedger(models.Model):
    """Every external write, recorded by idempotency key before the call and its outcome after."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    system = models.CharField(max_length=16, choices=System.choices)
    operation = models.CharField(max_length=64)
    request = models.JSONField()
    status = models.CharField(max_length=16, choices=CallStatus.choices, default=CallStatus.STARTED)
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-started_at",)
        indexes = [models.Index(fields=("system", "started_at"), name="connectors_ledger_sys_idx")]

    def __str__(self) -> str:
        return f"{self.system}.{self.operation} {self.idempotency_key} ({self.status})"


class SendCounter(models.Model):
    """Emails sent in one window (month, day, hour, or one recipient domain's hour)."""

    scope = models.CharField(max_length=16)
    window_start = models.DateTimeField()
    domain = models.CharField(max_length=253, blank=True)
    count = models.PositiveIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("scope", "window_start", "domain"), name="%(app_label)s_%(class)s_one_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.window_start:%Y-%m-%d %H:%M} {self.domain}: {self.count}"


class ClaySource(models.Model):
    """Lifetime submissions to one Clay webhook source (Clay accepts 50 000, then refuses).

    The source is known by a fingerprint of its URL: the URL itself is a credential.
    """

    fingerprint = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, help_text="The URL's host and the last characters of its path.")
    submissions = models.PositiveIntegerField(default=0)
    first_used_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-last_used_at",)

    def __str__(self) -> str:
        return f"Clay source {self.label}: {self.submissions} submissions"


class EnrichmentStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted, waiting for results"
    RECEIVED = "received", "Results received"


class Enrichment(models.Model):
    """One enrichment lookup: the row sent to the provider, and what came back.

    ``ref`` travels in the row as ``mh1_ref``; the provider's results carry it back to us.
    """

    ref = models.UUIDField(unique=True, editable=False)
    request = models.OneToOneField(
        "approvals.ActionRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="enrichment"
    )
    provider = models.CharField(max_length=16, choices=System.choices, default=System.CLAY)
    email = models.EmailField(db_index=True)  # the admin's exact search
    requested_fields = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=EnrichmentStatus.choices, default=EnrichmentStatus.SUBMITTED
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    applied = models.JSONField(default=dict, blank=True, help_text="Lead field → [before, after].")

    class Meta:
        ordering = ("-submitted_at",)
        indexes = [models.Index(fields=("status", "submitted_at"), name="connectors_enrich_status_idx")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} enrichment of {self.email} ({self.status})"


class CrmPull(models.Model):
    """Where the lead pull from one CRM stands: the next page's cursor and the last run's result.

    A run reads a bounded number of pages and leaves the cursor for the next run; a sweep that
    reaches the last page starts over at the next run.
    """

    system = models.CharField(max_length=16, choices=System.choices, unique=True)
    cursor = models.JSONField(
        null=True, blank=True, help_text="Empty: the next run starts at the first page."
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_sweep_completed_at = models.DateTimeField(null=True, blank=True)
    leads_pulled = models.PositiveBigIntegerField(default=0, help_text="Records read into leads, all runs.")
    last_result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("system",)
        verbose_name = "CRM lead pull"

    def __str__(self) -> str:
        return f"Lead pull from {self.get_system_display()}"


class WebhookDeadLetter(models.Model):
    """A webhook body from a proven sender that could never be stored as an event, and why.

    Answered 4xx so the vendor stops retrying it; kept here so nothing it sent is lost silently.
    The body is trimmed (``connectors.api.DEAD_LETTER_BODY_BYTES``) and made storable (invalid
    UTF-8 and NUL replaced with U+FFFD); ``body_bytes`` is its size as received.
    """

    system = models.CharField(max_length=16, choices=System.choices)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    reason = models.CharField(max_length=500)
    body = models.TextField(blank=True)
    body_bytes = models.PositiveIntegerField(default=0)
    content_type = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ("-received_at",)
        indexes = [models.Index(fields=("system", "received_at"), name="connectors_deadletter_sys_idx")]

    def __str__(self) -> str:
        return f"{self.get_system_display()} dead letter {self.received_at:%Y-%m-%d %H:%M}"
