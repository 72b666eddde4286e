"""The per-tenant sweeps beat runs every minute: expire, end delegations, escalate, release
deferred sends, pick up lost executions."""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.locks import request_for_update
from approvals.models import (
    ActionRequest,
    EscalationPolicy,
    Status,
)
from approvals.services.common import (
    _assignee,
    _event,
    _revoke_object_perms,
    _route,
    _schedule_execution,
    _transition,
)
from approvals.services.execution import execution_is_live

logger = logging.getLogger(__name__)


def requests_release_deferred(now: datetime | None = None) -> int:
    """Enqueue deferred requests whose moment has come (those too far for a broker ETA)."""
    now = now or timezone.now()
    count = 0
    for request_id in ActionRequest.objects.filter(status=Status.APPROVED, not_before__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            request = request_for_update(request_id)
            if request.status != Status.APPROVED or not request.not_before or request.not_before > now:
                continue
            _schedule_execution(request)
            count += 1
    return count


# An approved request not executed after this long lost its task (broker down at approval, a
# message lost): the sweep enqueues it again. Execution is idempotent, so a duplicate is harmless.
STALE_APPROVED = timedelta(minutes=5)


# An executing request whose execution lease is free (its worker's connection is gone) and that
# has not moved for this long lost its worker: the sweep (every minute) picks it up again. The
# lease, not this delay, tells a slow vendor call from a dead worker.
STALE_EXECUTING = timedelta(seconds=5)


def requests_redispatch_stale(now: datetime | None = None) -> int:
    """Enqueue again the approved and executing requests whose task or worker was lost."""
    now = now or timezone.now()
    stale = ActionRequest.objects.filter(
        Q(status=Status.APPROVED, not_before__isnull=True, updated_at__lte=now - STALE_APPROVED)
        | Q(status=Status.EXECUTING, updated_at__lte=now - STALE_EXECUTING)
    ).values_list("pk", "status")
    count = 0
    for request_id, status in stale:
        if status == Status.EXECUTING and execution_is_live(request_id):
            continue  # a worker is on it (a slow vendor call), not lost
        with transaction.atomic():
            request = request_for_update(request_id)
            if request.status not in (Status.APPROVED, Status.EXECUTING):
                continue
            _event(request, "redispatched", comment="Its execution task was lost; enqueued again.")
            ActionRequest.objects.filter(pk=request.pk).update(updated_at=now)
            _schedule_execution(request)
            count += 1
    return count


def requests_expire(now: datetime | None = None) -> int:
    """Auto-reject pending requests past their deadline."""
    now = now or timezone.now()
    count = 0
    for request_id in ActionRequest.objects.filter(status=Status.PENDING, deadline__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            request = request_for_update(request_id)
            if request.status != Status.PENDING:
                continue
            request.decided_at = now
            _transition(
                request,
                Status.EXPIRED,
                comment="Deadline passed without a decision: auto-rejected.",
                fields=("decided_at",),
            )
            count += 1
    return count


def delegations_fall_back(now: datetime | None = None) -> int:
    """Delegations that ran out go back to the roster's approver."""
    now = now or timezone.now()
    count = 0
    for request_id in ActionRequest.objects.filter(
        status=Status.PENDING, delegated_until__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = request_for_update(request_id)
            if request.delegated_until is None or request.delegated_until > now:
                continue
            delegate = request.assigned_to
            if delegate is not None:
                _revoke_object_perms(delegate, request)
            rule, _ = _route(request.kind, request.impact_level)
            request.assigned_to, request.assigned_role = _assignee(rule)
            request.delegated_until = None
            request.save(update_fields=["assigned_to", "assigned_role", "delegated_until", "updated_at"])
            _event(
                request,
                "delegation_ended",
                data={
                    "from": delegate.get_username() if delegate else None,
                    "to": request.assigned_to.get_username()
                    if request.assigned_to
                    else request.assigned_role,
                },
            )
            count += 1
    return count


def requests_escalate(now: datetime | None = None) -> int:
    """Raise pending requests to L2/L3/L4 as they age, notifying each level once."""
    from approvals.notify import notify_escalation

    now = now or timezone.now()
    policy = EscalationPolicy.get_solo()
    count = 0
    # only rows old enough for a level above their own: the others are not touched at all
    due = Q()
    for level in (2, 3, 4):
        due |= Q(escalation_level__lt=level, created_at__lte=now - timedelta(minutes=policy.delay_for(level)))
    candidates = ActionRequest.objects.filter(due, status=Status.PENDING).values_list("pk", flat=True)
    for request_id in candidates:
        with transaction.atomic():
            request = request_for_update(request_id)
            if request.status != Status.PENDING:
                continue
            age_minutes = (now - request.created_at).total_seconds() / 60
            level = max([1] + [lvl for lvl in (2, 3, 4) if age_minutes >= policy.delay_for(lvl)])
            if level <= request.escalation_level:
                continue
            from_level = request.escalation_level
            request.escalation_level = level
            request.escalated_at = now
            request.save(update_fields=["escalation_level", "escalated_at", "updated_at"])
            contact = policy.contact_for(level)
            _event(
                request,
                "escalated",
                comment=f"L{from_level} → L{level} after {int(age_minutes)} minutes without a decision.",
                data={"level": level, "notified": contact or None},
            )
            transaction.on_commit(lambda r=request, lv=level: notify_escalation(r, lv), robust=True)
            count += 1
    return count
