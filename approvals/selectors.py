"""Reads of the approval queue for the admin, the API and reports."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.models import ActionRequest, Event, Status
from tenants.services import user_role


def queue_for(user: User) -> QuerySet[ActionRequest]:
    """Pending requests assigned to the user, or to the user's role and nobody in particular."""
    role = user_role(user)
    mine = Q(assigned_to=user)
    if role is not None:
        mine |= Q(assigned_to__isnull=True, assigned_role=role.value)
    return ActionRequest.objects.filter(mine, status=Status.PENDING)


def overdue() -> QuerySet[ActionRequest]:
    return ActionRequest.objects.filter(status=Status.PENDING, sla_due_at__lt=timezone.now())


def timeline(request: ActionRequest) -> QuerySet[Event]:
    return request.events.select_related("actor").order_by("created_at", "id")


def agreement_rate() -> dict[str, float | int | None]:
    """Parallel phase: how often people decided as the AI would have (per tenant)."""
    decided = ActionRequest.objects.filter(ai_decision__in=("approve", "reject")).exclude(
        status__in=(Status.PENDING, Status.EXPIRED, Status.CANCELLED)
    )
    total = agreed = 0
    for ai, status in decided.values_list("ai_decision", "status"):
        human = "reject" if status == Status.REJECTED else "approve"
        total += 1
        agreed += ai == human
    return {"decided": total, "agreed": agreed, "rate": (agreed / total) if total else None}
