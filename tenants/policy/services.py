"""State changes of a tenant's policy."""

from __future__ import annotations

from tenants.policy.models import Heartbeat

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
