"""Reads of connector state."""

from __future__ import annotations

from django.db.models import Q

from connectors.models import Suppression


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower() if "@" in email else ""


def suppression_for(email: str) -> Suppression | None:
    """The entry that forbids contacting ``email`` (the address or its domain), or None."""
    email = (email or "").strip().lower()
    if not email:
        return None
    return (
        Suppression.objects.filter(Q(email=email) | Q(domain=domain_of(email))).order_by("created_at").first()
    )
