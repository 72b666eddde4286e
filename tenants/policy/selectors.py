"""Reads of a tenant's policy."""

from __future__ import annotations

from tenants.policy.models import Heartbeat, RolloutSettings


def last_heartbeat() -> Heartbeat | None:
    return Heartbeat.objects.order_by("-ran_at").first()


def tenant_kill_switch_on() -> bool:
    return RolloutSettings.objects.filter(kill_switch=True).exists()
