"""Reads of a tenant's policy."""

from __future__ import annotations

from tenants.policy.models import Heartbeat


def last_heartbeat() -> Heartbeat | None:
    return Heartbeat.objects.order_by("-ran_at").first()


def sending_mailboxes() -> list[str]:
    """The canonical addresses this tenant may send from; the first is the default."""
    from django.conf import settings

    from mh1.addresses import email_normalize
    from tenants.policy.models import SendingPolicy

    configured = SendingPolicy.get_solo().sending_mailboxes
    return list(configured) if configured else [email_normalize(settings.DEFAULT_FROM_EMAIL)]
