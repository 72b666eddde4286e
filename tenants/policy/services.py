"""State changes of a tenant's policy."""

from __future__ import annotations

from auditlog.context import set_actor
from django.contrib.auth.models import User
from django.db import transaction

from tenants.policy.models import Heartbeat, RolloutSettings

# Heartbeats kept per tenant: enough to see the schedule's rhythm over a day at one a minute.
HEARTBEATS_KEPT = 1500


def heartbeat_record(*, worker: str = "", task_id: str = "") -> Heartbeat:
    """Record one run of the scheduled heartbeat in the current tenant and prune old ones."""
    beat = Heartbeat.objects.create(worker=worker[:200], task_id=task_id[:64])
    cutoff = Heartbeat.objects.order_by("-ran_at").values_list("ran_at", flat=True)[
        HEARTBEATS_KEPT : HEARTBEATS_KEPT + 1
    ]
    cutoff_list = list(cutoff)
    if cutoff_list:
        Heartbeat.objects.filter(ran_at__lte=cutoff_list[0]).delete()
    return beat


@transaction.atomic
def tenant_kill_switch_set(*, acting_user: User | None, on: bool, reason: str = "") -> RolloutSettings:
    """Turn this tenant's kill switch on (with a reason) or off."""
    settings_row = RolloutSettings.get_solo()
    settings_row.kill_switch = on
    settings_row.kill_switch_reason = reason if on else ""
    settings_row.full_clean()
    with set_actor(acting_user):
        settings_row.save()
    return settings_row
