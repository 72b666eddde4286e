"""Reads of the approval queue for the admin, the API and reports."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from approvals.models import ActionRequest, Status
from tenants.services import user_role


def queue_for(user: User) -> QuerySet[ActionRequest]:
    """Pending requests assigned to the user, or to the user's role and nobody in particular."""
    role = user_role(user)
    mine = Q(assigned_to=user)
    if role is not None:
        mine |= Q(assigned_to__isnull=True, assigned_role=role.value)
    return ActionRequest.objects.filter(mine, status=Status.PENDING)


def next_to_decide(user: User, *, after: ActionRequest) -> int | None:
    """The request "approve and next" opens: the pending one due first (the queue's order) in the user's queue
    (then any pending one of a kind the user may approve) that the user can still decide (not
    their own request, not one they approved already), other than ``after``."""
    from approvals import registry

    kinds = [kind.name for kind in registry.all_kinds() if user.has_perm(kind.permission)]
    open_to_user = (
        ActionRequest.objects.filter(status=Status.PENDING)
        .exclude(pk=after.pk)
        .exclude(requested_by=user)
        .exclude(approvals__approver=user)
    )
    for candidates in (
        queue_for(user).filter(pk__in=open_to_user.values("pk")),
        open_to_user.filter(Q(kind__in=kinds) | Q(assigned_to=user)),
    ):
        pk = candidates.order_by("deadline", "pk").values_list("pk", flat=True).first()
        if pk is not None:
            return pk
    return None


def overdue() -> QuerySet[ActionRequest]:
    return ActionRequest.objects.filter(status=Status.PENDING, sla_due_at__lt=timezone.now())


# Before the assisted phase the AI must agree with people this often (per tenant and skill)...
AGREEMENT_TARGET = 0.75
# ...over the decisions of this window: how the AI does now, not a year of history diluting it.
AGREEMENT_WINDOW = timedelta(days=30)


def _agreement_counts(queryset) -> QuerySet:
    human_rejected = Q(status=Status.REJECTED)
    agreed_filter = (Q(ai_decision="reject") & human_rejected) | (Q(ai_decision="approve") & ~human_rejected)
    since = timezone.now() - AGREEMENT_WINDOW
    return queryset.filter(ai_decision__in=("approve", "reject"), decided_at__gte=since).exclude(
        status__in=(Status.PENDING, Status.EXPIRED, Status.CANCELLED, Status.SHADOWED)
    ), agreed_filter


def _rate(decided: int, agreed: int) -> dict[str, float | int | None]:
    return {"decided": decided, "agreed": agreed, "rate": (agreed / decided) if decided else None}


def agreement_rate() -> dict[str, float | int | None]:
    """Parallel phase: how often people decided as the AI would have (per tenant), over the
    decisions of the last AGREEMENT_WINDOW."""
    decided, agreed_filter = _agreement_counts(ActionRequest.objects.all())
    counts = decided.aggregate(decided=Count("id"), agreed=Count("id", filter=agreed_filter))
    return _rate(counts["decided"], counts["agreed"])


def agreement_by_skill() -> list[dict[str, Any]]:
    """The same, per proposing skill (``""``: proposed by hand or through the API), busiest first."""
    decided, agreed_filter = _agreement_counts(ActionRequest.objects.all())
    rows = (
        decided.values("skill_run__skill")
        .annotate(decided=Count("id"), agreed=Count("id", filter=agreed_filter))
        .order_by("-decided", "skill_run__skill")
    )
    return [{"skill": row["skill_run__skill"] or "", **_rate(row["decided"], row["agreed"])} for row in rows]


def agreement_shortfalls() -> list[str]:
    """Why the AI is not yet trusted for the assisted phase ('' list when it is): the tenant's
    agreement and each skill's below AGREEMENT_TARGET, or nothing decided yet."""
    overall = agreement_rate()
    if not overall["decided"]:
        return ["no decision has been compared yet (run the parallel phase first)"]
    problems = []
    if overall["rate"] < AGREEMENT_TARGET:
        problems.append(
            f"the tenant's agreement is {overall['rate']:.0%} ({overall['agreed']} of {overall['decided']})"
        )
    for row in agreement_by_skill():
        if row["rate"] is not None and row["rate"] < AGREEMENT_TARGET:
            name = row["skill"] or "manual proposals"
            problems.append(f"{name}: {row['rate']:.0%} ({row['agreed']} of {row['decided']})")
    return problems


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
