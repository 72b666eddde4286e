"""State changes of a tenant's policy.

Who changed a policy is recorded by the audit log (django-auditlog, registered in
``tenants.policy.audit``), not by a table of our own: every policy edit already lands there with
its field-by-field ``changes`` ([before, after]), and the audit admin is where people look. The
services set the acting user explicitly (``set_actor``) instead of trusting a request's thread.
"""

from __future__ import annotations

from typing import Any, TypeVar

from auditlog.context import set_actor
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from solo.models import SingletonModel

from tenants.policy.models import Heartbeat, IcpDefinition, RolloutPhase, RolloutSettings

P = TypeVar("P", bound=SingletonModel)

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
def policy_update(*, acting_user: AbstractBaseUser | None, policy: type[P], **values: Any) -> P:
    """Change fields of one of the tenant's policies (ICP, quotas, sending, rollout).

    The row is locked, validated by the model (``full_clean``: its field checks and ``clean``,
    the same the admin form and the API run) and saved under the acting user, whose name the audit
    entry carries. Raises ``ValidationError`` (field → message) and writes nothing if invalid.
    """
    row = policy.objects.select_for_update().get(pk=policy.get_solo().pk)
    for name, value in values.items():
        setattr(row, name, value)
    row.full_clean()
    with set_actor(acting_user):
        row.save()
    if policy is IcpDefinition:
        from campaigns.scoring import icp_rescore_on_commit

        icp_rescore_on_commit()  # every lead is re-scored against the new ICP once this commits
    return row


def agreement_gate(*, current: str, phase: str | None, reason: str) -> str:
    """The override reason to keep for moving ``current`` → ``phase``, or ValidationError when the
    move needs one and has none (the admin form and the service both ask here)."""
    from django.core.exceptions import ValidationError

    from approvals.selectors import AGREEMENT_TARGET, agreement_shortfalls

    trusted = (RolloutPhase.ASSISTED, RolloutPhase.AUTONOMOUS)
    reason = (reason or "").strip()
    if phase not in trusted or current in trusted:
        return ""  # an override only means something on the move it allowed
    shortfalls = agreement_shortfalls()
    if shortfalls and not reason:
        raise ValidationError(
            {
                "agreement_override_reason": (
                    f"The AI's agreement with people is below the {AGREEMENT_TARGET:.0%} target: "
                    + "; ".join(shortfalls)
                    + ". Give a reason to move anyway."
                )
            }
        )
    return reason if shortfalls else ""


def rollout_update(
    *,
    acting_user: AbstractBaseUser | None,
    phase: str | None = None,
    kill_switch: bool | None = None,
    kill_switch_reason: str | None = None,
    safe_mode: bool | None = None,
    agreement_override_reason: str = "",
) -> RolloutSettings:
    """Change the tenant's rollout phase, kill switch or safe mode (``None``: leave as it is).

    The kill switch needs a reason to go on; turning it off clears the reason unless one is given.
    Moving from shadow or parallel to assisted or autonomous while the parallel phase's agreement
    is below target (approvals.selectors.agreement_shortfalls) needs ``agreement_override_reason``,
    kept on the row (so in its audit entry); otherwise ValidationError, nothing written.
    The gates read the row on every attempt, so the change holds from its commit.
    """
    current = RolloutSettings.get_solo().phase
    reason = agreement_gate(current=current, phase=phase, reason=agreement_override_reason)
    values: dict[str, Any] = {
        name: value
        for name, value in (
            ("phase", phase),
            ("kill_switch", kill_switch),
            ("kill_switch_reason", kill_switch_reason),
            ("safe_mode", safe_mode),
        )
        if value is not None
    }
    if kill_switch is False and kill_switch_reason is None:
        values["kill_switch_reason"] = ""
    if phase is not None and phase != current:
        values["agreement_override_reason"] = reason
    return policy_update(acting_user=acting_user, policy=RolloutSettings, **values)
