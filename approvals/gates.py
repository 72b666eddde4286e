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

from django.contrib.auth.models import User
from django.utils import timezone

from approvals import registry
from approvals.errors import GateClosedError, PayloadInvalid
from approvals.models import ActionRequest, ExecutionMode, Status
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


# --- what the gates read, in one statement ---------------------------------------------------------


@dataclass(frozen=True)
class Suppressed:
    email: str
    domain: str
    reason: str
    source: str
    created_at: datetime


@dataclass(frozen=True)
class GateFacts:
    """Everything the gates read, loaded by one SQL statement (the gate runs twice per execution,
    on the hot path: one round trip instead of seven)."""

    global_kill_switch: bool = False
    phase: str = "shadow"
    kill_switch: bool = False
    kill_switch_reason: str = ""
    safe_mode: bool = False
    # (username, holds the kind's scope: active and by role, directly or on this request)
    approvers: tuple[tuple[str, bool], ...] = ()
    suppressed: Suppressed | None = None
    competitor_domains: tuple[str, ...] = ()
    customer_domains: tuple[str, ...] = ()
    sending_mailboxes: tuple[str, ...] = ()


# Singletons read as rows that may not exist yet (then the model's defaults hold: shadow phase,
# no exclusions, the console's default sender).
_FACTS_SQL = """
SELECT
  EXISTS (SELECT 1 FROM tenants_platformsettings WHERE global_kill_switch),
  (SELECT json_build_array(phase, kill_switch, kill_switch_reason, safe_mode)
     FROM policy_rolloutsettings ORDER BY id LIMIT 1),
  COALESCE((
    SELECT json_agg(json_build_array(u.username, u.is_active AND EXISTS (
        SELECT 1 FROM auth_permission p JOIN django_content_type pct ON pct.id = p.content_type_id
        WHERE p.codename = %(codename)s AND pct.app_label = %(app_label)s AND (
          EXISTS (SELECT 1 FROM auth_user_groups ug
                  JOIN auth_group_permissions gp ON gp.group_id = ug.group_id
                  WHERE ug.user_id = u.id AND gp.permission_id = p.id)
          OR EXISTS (SELECT 1 FROM auth_user_user_permissions up
                     WHERE up.user_id = u.id AND up.permission_id = p.id)
          OR EXISTS (SELECT 1 FROM guardian_userobjectpermission o
                     WHERE o.user_id = u.id AND o.permission_id = p.id AND o.object_pk = %(object_pk)s
                       AND o.content_type_id = (SELECT id FROM django_content_type
                                                WHERE app_label = 'approvals' AND model = 'actionrequest'))
          OR EXISTS (SELECT 1 FROM guardian_groupobjectpermission o
                     JOIN auth_user_groups ug ON ug.group_id = o.group_id
                     WHERE ug.user_id = u.id AND o.permission_id = p.id AND o.object_pk = %(object_pk)s
                       AND o.content_type_id = (SELECT id FROM django_content_type
                                                WHERE app_label = 'approvals' AND model = 'actionrequest'))
        ))) ORDER BY a.id)
    FROM approvals_approval a JOIN auth_user u ON u.id = a.approver_id
    WHERE a.request_id = %(request_id)s), '[]'::json),
  (SELECT json_build_array(email, domain, reason, source, created_at) FROM connectors_suppression
     WHERE %(recipient)s <> '' AND (email = %(recipient)s OR domain = %(domain)s)
     ORDER BY created_at LIMIT 1),
  (SELECT json_build_array(competitor_domains, customer_domains)
     FROM policy_icpdefinition ORDER BY id LIMIT 1),
  (SELECT sending_mailboxes FROM policy_sendingpolicy ORDER BY id LIMIT 1)
"""


def gate_facts(
    kind: registry.ActionKind, payload: dict[str, Any], request_id: int | None = None
) -> GateFacts:
    """Read every fact the gates need for this kind and payload (and request) in one statement."""
    from django.conf import settings
    from django.utils.dateparse import parse_datetime

    from mh1.addresses import email_normalize
    from mh1.sql import fetchone

    recipient = _recipient(kind, payload)
    if recipient:
        recipient = email_normalize(recipient)  # raises AddressInvalid: the caller fails closed
    app_label, codename = kind.permission.split(".")
    row = fetchone(
        _FACTS_SQL,
        {
            "codename": codename,
            "app_label": app_label,
            "object_pk": str(request_id or ""),
            "request_id": request_id or 0,
            "recipient": recipient,
            "domain": domain_of(recipient),
        },
    )
    global_kill, rollout, approvers, suppressed, icp, mailboxes = row
    phase, kill_switch, kill_reason, safe_mode = rollout or ("shadow", False, "", False)
    entry = None
    if suppressed:
        email, domain, reason, source, created_at = suppressed
        entry = Suppressed(email, domain, reason, source, parse_datetime(created_at))
    competitors, customers = icp or ([], [])
    return GateFacts(
        global_kill_switch=global_kill,
        phase=phase,
        kill_switch=kill_switch,
        kill_switch_reason=kill_reason,
        safe_mode=safe_mode,
        approvers=tuple((name, bool(holds)) for name, holds in approvers),
        suppressed=entry,
        competitor_domains=tuple(competitors or ()),
        customer_domains=tuple(customers or ()),
        sending_mailboxes=tuple(mailboxes or ()) or (email_normalize(settings.DEFAULT_FROM_EMAIL),),
    )


# --- gates on the person and the sender ---------------------------------------------------------


def _recipient(kind: registry.ActionKind, payload: dict[str, Any]) -> str:
    return str(payload.get(kind.target_field) or "") if kind.touches_person else ""


def suppression_gate(
    kind: registry.ActionKind, payload: dict[str, Any], facts: GateFacts
) -> ClosedGate | None:
    """A suppressed person is not contacted (email, enrichment); an erased one is not touched at
    all (no CRM write, no tag, no lookup either)."""
    from connectors.models import SuppressionReason

    entry = facts.suppressed
    if entry is None:
        return None
    if not kind.contacts_person and entry.reason != SuppressionReason.GDPR_ERASURE:
        return None
    days = (timezone.now() - entry.created_at).days
    when = "today" if days == 0 else ("1 day ago" if days == 1 else f"{days} days ago")
    what = entry.email or f"the domain {entry.domain}"
    reason = SuppressionReason(entry.reason).label.lower()
    return ClosedGate(
        f"Recipient suppressed: {what} ({reason}, from {entry.source}, {when}).", code="suppressed"
    )


def exclusion_gate(kind: registry.ActionKind, payload: dict[str, Any], facts: GateFacts) -> ClosedGate | None:
    """Outreach never goes to a competitor's or an existing customer's domain (the ICP form)."""
    recipient = _recipient(kind, payload)
    if not recipient or not kind.contacts_person:
        return None
    domain = domain_of(recipient)
    exclusions = (
        ("a competitor", facts.competitor_domains),
        ("an existing customer", facts.customer_domains),
    )
    for label, domains in exclusions:
        for excluded in domains:
            if domain == excluded or domain.endswith(f".{excluded}"):
                return ClosedGate(
                    f"{domain} is {label}'s domain (ICP exclusions): no outreach to it.", code="excluded"
                )
    return None


def sender_gate(kind: registry.ActionKind, payload: dict[str, Any], facts: GateFacts) -> ClosedGate | None:
    """An email goes out only from one of the tenant's configured sending mailboxes."""
    if kind.sender_field is None:
        return None
    sender = str(payload.get(kind.sender_field) or "")
    if sender not in facts.sending_mailboxes:
        return ClosedGate(
            f"{sender or 'An empty From'} is not one of this tenant's sending mailboxes "
            f"({', '.join(facts.sending_mailboxes)}): see Tenant policy → Sending policy.",
            code="sender_not_allowed",
        )
    return None


PAYLOAD_GATES = (suppression_gate, exclusion_gate, sender_gate)


def payload_gates(
    kind: registry.ActionKind, payload: dict[str, Any], facts: GateFacts | None = None
) -> list[ClosedGate]:
    """Every gate on the payload that is closed now (for the request page: all of them)."""
    if facts is None:
        try:
            facts = gate_facts(kind, payload)
        except AddressInvalid as exc:
            return [ClosedGate(f"The recipient address is not valid: {exc}", code="address_invalid")]
    return [gate for check in PAYLOAD_GATES if (gate := check(kind, payload, facts)) is not None]


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


def _switch_gate(facts: GateFacts) -> ClosedGate | None:
    """The switches that stop every effect of the tenant: kill switches, shadow phase, safe mode."""
    from tenants.policy.models import RolloutPhase

    if facts.global_kill_switch:
        return ClosedGate("The global kill switch is on.", code="global_kill_switch")
    if facts.kill_switch:
        return ClosedGate(f"The tenant kill switch is on: {facts.kill_switch_reason}", code="kill_switch")
    if facts.phase == RolloutPhase.SHADOW:
        return ClosedGate("The tenant is in shadow phase: nothing external runs.", code="shadow")
    if facts.safe_mode:
        return ClosedGate(
            "Safe mode is on: nothing external is sent (what would have been sent is recorded).",
            code="safe_mode",
        )
    return None


def _facts_or_gate(request: ActionRequest) -> GateFacts | ClosedGate:
    try:
        return gate_facts(registry.get_kind(request.kind), request.payload or {}, request.pk)
    except AddressInvalid as exc:
        return ClosedGate(f"The recipient address is not valid: {exc}", code="address_invalid")


def gates_now(request: ActionRequest) -> list[ClosedGate]:
    """For the request page, before anyone decides: every gate that would stop it if it ran now."""
    facts = _facts_or_gate(request)
    if isinstance(facts, ClosedGate):
        return [facts]
    found = [gate] if (gate := _switch_gate(facts)) else []
    if request.execution_mode != ExecutionMode.EXECUTE:
        found.append(ClosedGate(f"Execution mode is {request.execution_mode}: it will not run.", code="mode"))
    return found + payload_gates(registry.get_kind(request.kind), request.payload or {}, facts)


def closed_gate(request: ActionRequest, *, now: datetime | None = None) -> ClosedGate | None:
    """The first gate that forbids executing ``request`` now, or None. Call under its row lock."""
    from tenants.policy.models import RolloutPhase

    facts = _facts_or_gate(request)
    if isinstance(facts, ClosedGate):
        return facts
    switch = _switch_gate(facts)
    if switch is not None:
        return switch
    kind = registry.get_kind(request.kind)
    if request.execution_mode != ExecutionMode.EXECUTE:
        return ClosedGate(
            f"Execution mode is {request.execution_mode}: this action is not to be executed.",
            code="execution_mode",
        )
    valid_until = approval_valid_until(request)
    if valid_until is not None and (now or timezone.now()) > valid_until:
        return ClosedGate(
            f"The approval expired at {valid_until:%Y-%m-%d %H:%M} UTC ({kind.approval_valid_hours} h after "
            "the decision) before it could run: propose it again if it is still wanted.",
            status=Status.EXPIRED,
            code="approval_expired",
        )
    if not facts.approvers and facts.phase != RolloutPhase.AUTONOMOUS:
        return ClosedGate(f"Auto-approval is not allowed in the {facts.phase} phase.", code="phase")
    for username, holds in facts.approvers:
        if not holds:
            return ClosedGate(
                f"{username} no longer holds the scope to approve this kind.", code="scope_revoked"
            )
    closed = payload_gates(kind, request.payload or {}, facts)
    return closed[0] if closed else None


def effect_gate(request: ActionRequest, *, effect_exists_sql: str = "FALSE") -> bool:
    """For executors, inside the transaction that records the effect: lock the request row, make
    sure it is still executing, and raise GateClosedError if any gate is closed.

    ``effect_exists_sql`` (an SQL expression over the locked row ``r``) tells whether the effect
    was already recorded: then it is a repeat and returns True, whatever the gates say now.
    One statement locks and reads what may have changed since the caller loaded ``request``.
    """
    from mh1.sql import fetchone

    row = fetchone(
        # the expression is a constant of the executor's code, never input
        f"SELECT r.status, r.decided_at, {effect_exists_sql} FROM approvals_actionrequest r "  # noqa: S608
        "WHERE r.id = %(id)s FOR UPDATE OF r",
        {"id": request.pk},
    )
    if row is None:
        raise GateClosedError("The request is gone; nothing done.", status=None)
    request.status, request.decided_at, done = row
    if done:
        return True
    if request.status != Status.EXECUTING:
        raise GateClosedError(
            f"The request is no longer executing ({request.status}); nothing done.", status=None
        )
    gate = closed_gate(request)
    if gate is not None:
        raise gate.error()
    return False
