"""The platform's scheduled jobs: one beat entry per job, created once, then edited in admin."""

from __future__ import annotations

import json

from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_tenants.utils import get_public_schema_name

# name → (task, args, every N seconds). Each fans out to every active tenant.
DEFAULT_SCHEDULE: dict[str, tuple[str, list, int]] = {
    "Tenant heartbeat": ("platform.dispatch_to_tenants", ["policy.heartbeat"], 60),
    "Connectors: keep vendor webhooks subscribed": (
        "platform.dispatch_to_tenants",
        ["connectors.ensure_webhooks"],
        30,
    ),
    "Suppression: pull vendor block lists": (
        "platform.dispatch_to_tenants",
        ["connectors.sync_suppressions"],
        300,
    ),
    "Suppression: push what never reached a vendor": (
        "platform.dispatch_to_tenants",
        ["connectors.push_pending_suppressions"],
        300,
    ),
    "Webhooks: resolve events left pending": (
        "platform.dispatch_to_tenants",
        ["connectors.sweep_pending_webhook_events"],
        300,
    ),
    "Leads: pull from the CRMs": (
        "platform.dispatch_to_tenants",
        ["connectors.pull_crm_leads"],
        900,
    ),
    "Skills: start due schedules, end runs past their SLA": (
        "platform.dispatch_to_tenants",
        ["skills.sweep"],
        60,
    ),
    "Approvals: expire, end delegations, escalate": (
        "platform.dispatch_to_tenants",
        ["approvals.sweep"],
        60,
    ),
    "Budgets: release reservations of dead runs, reconcile": (
        "platform.dispatch_to_tenants",
        ["budget.sweep"],
        60,
    ),
}


def schedules_ensure() -> list[str]:
    """Create the missing beat entries; never overwrite what an operator edited."""
    if connection.schema_name != get_public_schema_name():
        return []
    created = []
    for name, (task, args, seconds) in DEFAULT_SCHEDULE.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name=name, task=task, args=json.dumps(args), interval=interval)
        created.append(name)
    return created
