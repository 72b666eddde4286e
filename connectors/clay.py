"""Clay enrichment: counting a webhook source's submissions, and applying the results that come back.

Clay enriches a row some time after we submit it and sends the results through an HTTP API column
the tenant templates in its Clay table (see the README): a POST to our results endpoint carrying
the row's ``mh1_ref`` and the enriched fields, with the tenant's secret in a header.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone

from approvals.errors import FatalExecutionError
from connectors.clients.clay import WEBHOOK_SUBMISSIONS_MAX
from connectors.models import ClaySource, Enrichment, EnrichmentStatus, WebhookEvent

logger = logging.getLogger(__name__)

# Warn when a source has this share of its lifetime submissions used: time to create the next one.
SOURCE_WARN_SHARE = 0.9


# Clay's output field → the canonical lead's field, with the converter that checks its value.
def _text(limit: int):
    def convert(value: Any) -> str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError("expected text")
        return str(value).strip()[:limit]

    return convert


def _count(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    number = int(float(value))
    if number < 0:
        raise ValueError("expected a number ≥ 0")
    return number


def _domain(value: Any) -> str:
    text = _text(253)(value).lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    if "." not in host:
        raise ValueError("expected a domain")
    return host.removeprefix("www.")


RESULT_TO_LEAD: dict[str, tuple[str, Any]] = {
    "title": ("title", _text(200)),
    "company_name": ("company", _text(200)),
    "company_domain": ("company_domain", _domain),
    "company_size": ("company_size", _count),
    "company_industry": ("industry", _text(100)),
    "seniority_level": ("seniority", _text(50)),
}


def source_fingerprint(webhook_url: str) -> str:
    return hashlib.sha256(webhook_url.strip().encode()).hexdigest()


def source_label(webhook_url: str) -> str:
    parts = urlsplit(webhook_url)
    return f"{parts.hostname or '?'} …{parts.path[-6:]}"


def clay_source_reserve(webhook_url: str) -> int:
    """Count one submission to the source, atomically; refuse once its lifetime limit is reached.

    Runs inside the caller's transaction (the call ledger's), so a refused or rolled-back call
    counts nothing. Returns the source's submissions including this one.
    """
    table = ClaySource._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (fingerprint, label, submissions, first_used_at, last_used_at)
            VALUES (%s, %s, 1, %s, %s)
            ON CONFLICT (fingerprint) DO UPDATE
               SET submissions = {table}.submissions + 1, last_used_at = EXCLUDED.last_used_at
             WHERE {table}.submissions < %s
            RETURNING submissions
            """,  # noqa: S608 - the table name is the model's own
            [source_fingerprint(webhook_url), source_label(webhook_url), now, now, WEBHOOK_SUBMISSIONS_MAX],
        )
        row = cursor.fetchone()
    if row is None:
        raise FatalExecutionError(
            f"This Clay webhook source has used all {WEBHOOK_SUBMISSIONS_MAX:,} of its submissions: "
            "create a new webhook source in the Clay table and put its URL in the Clay credentials."
        )
    used = row[0]
    if used >= SOURCE_WARN_SHARE * WEBHOOK_SUBMISSIONS_MAX and used % 500 == 0:
        logger.warning(
            "Clay webhook source %s has used %s of %s submissions: rotate it soon",
            source_label(webhook_url),
            used,
            WEBHOOK_SUBMISSIONS_MAX,
        )
    return used


def result_ref(data: dict[str, Any]) -> uuid.UUID:
    """The ``mh1_ref`` of a results body, or ValueError with a message for the sender."""
    raw = data.get("mh1_ref")
    if not isinstance(raw, str) or not raw:
        raise ValueError("mh1_ref is required: map the row's mh1_ref column into the HTTP API body.")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValueError(f"mh1_ref {raw[:60]!r} is not a UUID.") from None


def _collected_at(value: Any) -> datetime:
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return timezone.now()
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        return min(moment, timezone.now())
    return timezone.now()


def _erased(email: str) -> bool:
    from connectors.models import Suppression, SuppressionReason

    return Suppression.objects.filter(email=email, reason=SuppressionReason.GDPR_ERASURE).exists()


def enrichment_result_apply(event: WebhookEvent) -> str:
    """Apply a stored Clay results event to its enrichment and the canonical lead.

    Fields Clay returns replace the lead's, with GDPR provenance (data source, time, legal basis);
    a value of the wrong type is skipped and named in the outcome. Results for a reference we
    never sent are kept (stored on the event) and change nothing.
    """
    from campaigns.models import Lead, LegalBasis, SourceSystem

    data = event.payload
    ref = result_ref(data)
    skipped: list[str] = []
    with transaction.atomic():
        enrichment = Enrichment.objects.select_for_update().filter(ref=ref).first()
        if enrichment is None:
            outcome = "stored; unknown mh1_ref, nothing applied"
        elif enrichment.status == EnrichmentStatus.RECEIVED:
            outcome = "stored; results for this lookup were already applied"
        elif _erased(enrichment.email):
            # the person asked to be erased after the lookup left: keep nothing about them, and
            # never recreate their lead from a vendor's copy
            enrichment.status = EnrichmentStatus.RECEIVED
            enrichment.received_at = timezone.now()
            enrichment.result = None
            enrichment.save(update_fields=["status", "received_at", "result"])
            WebhookEvent.objects.filter(pk=event.pk).update(
                payload={"mh1_ref": str(ref), "redacted": "the person was erased (GDPR)"}
            )
            outcome = "discarded: the person was erased (GDPR); nothing kept"
        else:
            values: dict[str, Any] = {}
            for source_key, (lead_field, convert) in RESULT_TO_LEAD.items():
                if data.get(source_key) in (None, ""):
                    continue
                try:
                    values[lead_field] = convert(data[source_key])
                except (TypeError, ValueError):
                    skipped.append(source_key)
            verified = data.get("email")
            if verified not in (None, ""):
                try:
                    validate_email(verified)
                except (TypeError, ValidationError):
                    skipped.append("email")
            legal_basis = data.get("legal_basis") or LegalBasis.LEGITIMATE_INTEREST
            if legal_basis not in LegalBasis.values:
                skipped.append("legal_basis")
                legal_basis = LegalBasis.LEGITIMATE_INTEREST
            lead, created = Lead.objects.select_for_update().get_or_create(
                email=enrichment.email, defaults={"source_system": SourceSystem.CLAY}
            )
            applied = {}
            for field_name, value in values.items():
                before = getattr(lead, field_name)
                if before != value:
                    applied[field_name] = [before, value]
                    setattr(lead, field_name, value)
            lead.data_source = "clay"
            lead.collected_at = _collected_at(data.get("data_collected_at"))
            lead.legal_basis = legal_basis
            lead.save()
            enrichment.status = EnrichmentStatus.RECEIVED
            enrichment.received_at = timezone.now()
            enrichment.result = data
            enrichment.applied = applied
            enrichment.save(update_fields=["status", "received_at", "result", "applied"])
            verb = "created" if created else "updated"
            outcome = f"{verb} lead {lead.email}: {len(applied)} field(s) changed"
        if skipped:
            outcome += f"; skipped invalid {', '.join(skipped)}"
        WebhookEvent.objects.filter(pk=event.pk).update(outcome=outcome[:200])
    return outcome
