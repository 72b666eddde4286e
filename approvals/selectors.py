"""Reads of the approval queue for the admin, the API and reports."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
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
    human_rejected = Q(status=Status.REJECTED)
    agreed_filter = (Q(ai_decision="reject") & human_rejected) | (Q(ai_decision="approve") & ~human_rejected)
    counts = (
        ActionRequest.objects.filter(ai_decision__in=("approve", "reject"))
        .exclude(status__in=(Status.PENDING, Status.EXPIRED, Status.CANCELLED, Status.SHADOWED))
        .aggregate(decided=Count("id"), agreed=Count("id", filter=agreed_filter))
    )
    total, agreed = counts["decided"], counts["agreed"]
    return {"decided": total, "agreed": agreed, "rate": (agreed / total) if total else None}


def delegate_candidates(
    kinds: list[str] | tuple[str, ...], *, exclude: list[User | None] = ()
) -> QuerySet[User]:
    """Active console users whose *role* may approve every one of ``kinds`` (an object permission
    on one request does not count), minus ``exclude`` (the delegator, the requester)."""
    from approvals import registry
    from tenants.roles import roles_holding

    users = User.objects.filter(is_active=True, is_staff=True)
    for kind in set(kinds):
        roles = roles_holding(registry.get_kind(kind).permission)
        users = users.filter(pk__in=User.objects.filter(groups__name__in=[r.group_name for r in roles]))
    excluded = [user.pk for user in exclude if user is not None]
    return users.exclude(pk__in=excluded).order_by("username")
