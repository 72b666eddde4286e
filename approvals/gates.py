"""Every check that may stop an external effect, in one module.

Two entry points, and no other code decides whether an effect may happen:

- ``proposal_gate(kind, payload)``: at proposal. A request that could never run (its recipient
  is suppressed or erased, its domain is an ICP exclusion, its From is not one of the tenant's
  sending mailboxes) is refused with the reason, so nobody spends time approving it.
- ``closed_gate(request)``: at execution, called under the request's row lock by the execution
  service *and* by every executor inside the transaction that records the effect, on every
  attempt (first run, retry, redelivery). It re-checks the kill switches, the phase, safe mode,
  the execution mode, the approval's validity, every approver's scope, and the proposal gates
  (a suppression or an exclusion added after the proposal stops it too).

A gate answers with a ``ClosedGate`` (why, and what the request becomes: cancelled, or expired
for a stale approval) or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Permission, User
from django.db.models import Q
from django.utils import timezone

from approvals import registry
from approvals.errors import GateClosedError, PayloadInvalid
from approvals.models import ActionRequest, Approval, ExecutionMode, Status
from mh1.addresses import AddressInvalid, domain_of


@dataclass(frozen=True)
class ClosedGate:
    """A gate that forbids the effect now: the reason in words and the status it leads to."""

    reason: str
    status: str = Status.CANCELLED
    code: str = "gate_closed"

    def error(self) -> GateClosedError:
        return GateClosedError(self.reason, status=self.status)


# --- scopes -----------------------------------------------------------------------------------


def can_decide(user: User, request: ActionRequest) -> bool:
    """Whether ``user`` holds the scope of the request's kind (by role, or on this request)."""
    permission = registry.get_kind(request.kind).permission
    return user.is_active and (user.has_perm(permission) or user.has_perm(permission, request))


def holds_scope(user: User, request: ActionRequest) -> bool:
    """can_decide() in one small query: the scope through a role (or directly), else on this
    request (a delegate's guardian permission). Used by the execution-time re-check."""
    app_label, codename = registry.get_kind(request.kind).permission.split(".")
    if not user.is_active:
        return False
    by_role = Permission.objects.filter(codename=codename, content_type__app_label=app_label).filter(
        Q(group__user=user) | Q(user=user)
    )
    return by_role.exists() or user.has_perm(f"{app_label}.{codename}", request)


# --- gates on the person and the sender ---------------------------------------------------------


def _recipient(kind: registry.ActionKind, payload: dict[str, Any]) -> str:
    return str(payload.get(kind.target_field) or "") if kind.touches_person else ""


def suppression_gate(kind: registry.ActionKind, payload: dict[str, Any]) -> ClosedGate | None:
    """A suppressed person is not contacted (email, enrichment); an erased one is not touched at
    all (no CRM write, no tag, no lookup either)."""
    from connectors.models import SuppressionReason
    from connectors.selectors import suppression_for

    recipient = _recipient(kind, payload)
    if not recipient:
        return None
    try:
        entry = suppression_for(recipient)
    except AddressInvalid as exc:
        return ClosedGate(f"The recipient address is not valid: {exc}", code="address_invalid")
    if entry is None:
        return None
    if not kind.contacts_person and entry.reason != SuppressionReason.GDPR_ERASURE:
        return None
    since = timezone.now() - entry.created_at
    days = since.days
    when = "today" if days == 0 else ("1 day ago" if days == 1 else f"{days} days ago")
    what = entry.email or f"the domain {entry.domain}"
    return ClosedGate(
        f"Recipient suppressed: {what} ({entry.get_reason_display().lower()}, from {entry.source}, {when}).",
        code="suppressed",
    )


def exclusion_gate(kind: registry.ActionKind, payload: dict[str, Any]) -> ClosedGate | None:
    """Outreach never goes to a competitor's or an existing customer's domain (the ICP form)."""
    from tenants.policy.models import IcpDefinition

    recipient = _recipient(kind, payload)
    if not recipient or not kind.contacts_person:
        return None
    domain = domain_of(recipient)
    icp = IcpDefinition.get_solo()
    exclusions = (("a competitor", icp.competitor_domains), ("an existing customer", icp.customer_domains))
    for label, domains in exclusions:
        for excluded in domains:
            if domain == excluded or domain.endswith(f".{excluded}"):
                return ClosedGate(
                    f"{domain} is {label}'s domain (ICP exclusions): no outreach to it.", code="excluded"
                )
    return None


def sender_gate(kind: registry.ActionKind, payload: dict[str, Any]) -> ClosedGate | None:
    """An email goes out only from one of the tenant's configured sending mailboxes."""
    if kind.sender_field is None:
        return None
    from tenants.policy.selectors import sending_mailboxes

    sender = str(payload.get(kind.sender_field) or "")
    allowed = sending_mailboxes()
    if sender not in allowed:
        return ClosedGate(
            f"{sender or 'An empty From'} is not one of this tenant's sending mailboxes "
            f"({', '.join(allowed)}): see Tenant policy → Sending policy.",
            code="sender_not_allowed",
        )
    return None


PAYLOAD_GATES = (suppression_gate, exclusion_gate, sender_gate)


def payload_gates(kind: registry.ActionKind, payload: dict[str, Any]) -> list[ClosedGate]:
    """Every gate on the payload that is closed now (for the request page: all of them)."""
    return [gate for check in PAYLOAD_GATES if (gate := check(kind, payload)) is not None]


def proposal_gate(kind: registry.ActionKind, payload: dict[str, Any]) -> None:
    """Refuse a proposal that could never run, with every reason."""
    closed = payload_gates(kind, payload)
    if closed:
        raise ProposalRefused(" ".join(gate.reason for gate in closed), codes=[g.code for g in closed])


class ProposalRefused(PayloadInvalid):
    code = "proposal_refused"
    status_code = 422

    def __init__(self, message: str, *, codes: list[str]):
        super().__init__(message)
        self.codes = codes


# --- the execution gate -----------------------------------------------------------------------


def approval_valid_until(request: ActionRequest) -> datetime | None:
    if request.decided_at is None:
        return None
    return request.decided_at + timedelta(hours=registry.get_kind(request.kind).approval_valid_hours)


def _switch_gate(rollout) -> ClosedGate | None:
    """The switches that stop every effect of the tenant: kill switches, shadow phase, safe mode."""
    from tenants.policy.models import RolloutPhase
    from tenants.services import global_kill_switch_on

    if global_kill_switch_on():
        return ClosedGate("The global kill switch is on.", code="global_kill_switch")
    if rollout.kill_switch:
        return ClosedGate(f"The tenant kill switch is on: {rollout.kill_switch_reason}", code="kill_switch")
    if rollout.phase == RolloutPhase.SHADOW:
        return ClosedGate("The tenant is in shadow phase: nothing external runs.", code="shadow")
    if rollout.safe_mode:
        return ClosedGate(
            "Safe mode is on: nothing external is sent (what would have been sent is recorded).",
            code="safe_mode",
        )
    return None


def gates_now(request: ActionRequest) -> list[ClosedGate]:
    """For the request page, before anyone decides: every gate that would stop it if it ran now."""
    from tenants.policy.models import RolloutSettings

    found = [gate] if (gate := _switch_gate(RolloutSettings.get_solo())) else []
    if request.execution_mode != ExecutionMode.EXECUTE:
        found.append(ClosedGate(f"Execution mode is {request.execution_mode}: it will not run.", code="mode"))
    return found + payload_gates(registry.get_kind(request.kind), request.payload or {})


def closed_gate(request: ActionRequest, *, now: datetime | None = None) -> ClosedGate | None:
    """The first gate that forbids executing ``request`` now, or None. Call under its row lock."""
    from tenants.policy.models import RolloutPhase, RolloutSettings

    rollout = RolloutSettings.get_solo()
    switch = _switch_gate(rollout)
    if switch is not None:
        return switch
    if request.execution_mode != ExecutionMode.EXECUTE:
        return ClosedGate(
            f"Execution mode is {request.execution_mode}: this action is not to be executed.",
            code="execution_mode",
        )
    valid_until = approval_valid_until(request)
    if valid_until is not None and (now or timezone.now()) > valid_until:
        hours = registry.get_kind(request.kind).approval_valid_hours
        return ClosedGate(
            f"The approval expired at {valid_until:%Y-%m-%d %H:%M} UTC ({hours} h after the decision) "
            "before it could run: propose it again if it is still wanted.",
            status=Status.EXPIRED,
            code="approval_expired",
        )
    approvers = list(Approval.objects.filter(request=request).select_related("approver"))
    if not approvers and rollout.phase != RolloutPhase.AUTONOMOUS:
        return ClosedGate(f"Auto-approval is not allowed in the {rollout.phase} phase.", code="phase")
    for approval in approvers:
        if not holds_scope(approval.approver, request):
            return ClosedGate(
                f"{approval.approver.get_username()} no longer holds the scope to approve this kind.",
                code="scope_revoked",
            )
    closed = payload_gates(registry.get_kind(request.kind), request.payload or {})
    return closed[0] if closed else None


def effect_gate(request_id: int) -> ActionRequest:
    """For executors, inside the transaction that records the effect: lock the request, make sure
    it is still executing, and raise GateClosedError if any gate is closed."""
    request = ActionRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None or request.status != Status.EXECUTING:
        status = request.status if request is not None else "gone"
        raise GateClosedError(f"The request is no longer executing ({status}); nothing done.", status=None)
    gate = closed_gate(request)
    if gate is not None:
        raise gate.error()
    return request
