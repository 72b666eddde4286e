"""Every state change of an action request: one service call, one event, one audit entry.

States: pending → approved → executing → executed | failed; pending → rejected | expired |
cancelled; approved → cancelled (a gate closed before execution); proposals in shadow phase end
as shadowed and blocked ones as blocked. An illegal transition raises IllegalTransition and
changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from approvals import gates, registry
from approvals.errors import (
    DeferExecution,
    FatalExecutionError,
    GateClosedError,
    IllegalTransition,
    NotAllowed,
    OutcomeUnknown,
    PayloadInvalid,
    ReasonRequired,
    RetryableExecutionError,
)
from approvals.executors import executor_for
from approvals.gates import can_decide
from approvals.impact import assess
from approvals.locks import request_for_update, request_locked_or_none
from approvals.models import (
    RESOLVABLE_STATUSES,
    ActionRequest,
    Approval,
    ApproverRule,
    EscalationPolicy,
    Event,
    ExecutionMode,
    Impact,
    ReleaseDecision,
    Status,
)
from mh1.context import correlation_id as current_correlation_id
from mh1.sql import fetchone
from mh1.tenancy import enqueue_quietly
from tenants.policy.models import RolloutPhase, RolloutSettings
from tenants.roles import Role

logger = logging.getLogger(__name__)

SYSTEM = "system"
DEFAULT_SLA_MINUTES = 240

TRANSITIONS: dict[str, set[str]] = {
    Status.PENDING: {Status.APPROVED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED},
    # executing → cancelled only when the executor found a gate closed before any effect
    # executing → approved: deferred by a limit before any effect, to run again at not_before
    # approved | executing → expired: the approval's validity ran out before the effect
    Status.APPROVED: {Status.EXECUTING, Status.CANCELLED, Status.EXPIRED},
    Status.EXECUTING: {
        Status.EXECUTED,
        Status.FAILED,
        Status.CANCELLED,
        Status.APPROVED,
        Status.EXPIRED,
        Status.UNKNOWN,
    },
    # an operator's re-queue (→ approved) or resolution (→ executed | failed), with a reason
    Status.FAILED: {Status.APPROVED},
    Status.UNKNOWN: {Status.APPROVED, Status.EXECUTED, Status.FAILED},
}


# --- helpers ----------------------------------------------------------------------------------


def _event(
    request: ActionRequest,
    verb: str,
    *,
    actor: User | None = None,
    actor_label: str = "",
    from_status: str = "",
    to_status: str = "",
    comment: str = "",
    data: dict[str, Any] | None = None,
) -> Event:
    return Event.objects.create(
        request=request,
        verb=verb,
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else SYSTEM),
        from_status=from_status,
        to_status=to_status,
        comment=comment,
        data=data or {},
    )


def _transition(
    request: ActionRequest,
    to_status: str,
    *,
    actor: User | None = None,
    actor_label: str = "",
    comment: str = "",
    data: dict[str, Any] | None = None,
    fields: tuple[str, ...] = (),
) -> ActionRequest:
    """Move a locked request to ``to_status`` or raise IllegalTransition (nothing changed)."""
    from_status = request.status
    if to_status not in TRANSITIONS.get(from_status, set()):
        raise IllegalTransition(
            f"Request #{request.pk} is {request.get_status_display().lower()}; it cannot become {to_status}."
        )
    request.status = to_status
    # The audit entry is written here from what we know (from, to, actor from the audit context)
    # instead of auditlog re-reading and diffing the whole row on every transition.
    with disable_auditlog():
        request.save(update_fields=["status", "updated_at", *fields])
    LogEntry.objects.log_create(
        request, action=LogEntry.Action.UPDATE, changes={"status": [from_status, to_status]}, force_log=True
    )
    _event(
        request,
        to_status,
        actor=actor,
        actor_label=actor_label,
        from_status=from_status,
        to_status=to_status,
        comment=comment,
        data=data,
    )
    return request


# The execution path's own transitions (system actor) in one statement: the status and any
# columns, the event and the audit row. On the hot path this replaces four ORM round trips (and
# auditlog's content-type lookup, re-read after every tenant switch) with one.
_SYSTEM_TRANSITION_SQL = """
WITH u AS (
  UPDATE approvals_actionrequest SET status = %(to)s, updated_at = %(now)s{set_sql}
  WHERE id = %(id)s AND status = %(from)s
  RETURNING id, kind, target
), e AS (
  INSERT INTO approvals_event (request_id, actor_id, actor_label, verb, from_status, to_status, comment, data,
                               created_at)
  SELECT id, NULL, %(label)s, %(to)s, %(from)s, %(to)s, %(comment)s, %(data)s::jsonb, %(now)s FROM u
)
INSERT INTO auditlog_logentry (object_pk, object_id, object_repr, action, changes, changes_text, timestamp,
                               content_type_id, cid)
SELECT id::text, id, '#' || id || ' ' || kind || ' → ' || COALESCE(NULLIF(target, ''), '—'), 1,
       jsonb_build_object('status', jsonb_build_array(%(from)s, %(to)s)), '', %(now)s,
       (SELECT id FROM django_content_type WHERE app_label = 'approvals' AND model = 'actionrequest'), %(cid)s
FROM u RETURNING object_id
"""


def _system_transition(
    request_id: int,
    from_status: str,
    to_status: str,
    *,
    set_sql: str = "",
    params: dict[str, Any] | None = None,
    comment: str = "",
    data: dict[str, Any] | None = None,
) -> bool:
    """``from_status`` → ``to_status`` by the system, in one statement (the UPDATE takes the row
    lock); False, and nothing written, when the request is no longer ``from_status``."""
    import json

    from auditlog.cid import get_cid

    if to_status not in TRANSITIONS.get(from_status, set()):
        raise IllegalTransition(f"Request #{request_id} cannot go from {from_status} to {to_status}.")
    row = fetchone(
        _SYSTEM_TRANSITION_SQL.replace("{set_sql}", set_sql),
        {
            "id": request_id,
            "from": from_status,
            "to": to_status,
            "now": timezone.now(),
            "label": SYSTEM,
            "comment": comment,
            "data": json.dumps(data or {}, default=str),
            "cid": get_cid(),
            **(params or {}),
        },
    )
    return row is not None


# A deferral further away than this is left to the sweep instead of a broker ETA: an ETA beyond
# the broker's visibility timeout would be delivered twice (pitfall 8).
MAX_ETA = timedelta(minutes=30)


def _schedule_execution(request: ActionRequest, eta: datetime | None = None) -> None:
    from approvals.tasks import execute_action

    # The schema is captured now, not at commit (pitfall 2).
    schema_name, request_id = connection.schema_name, request.pk
    if eta is not None and eta - timezone.now() > MAX_ETA:
        return  # requests_release_deferred() enqueues it when it is due
    options = {"eta": eta} if eta is not None else {}

    def enqueue() -> None:
        # The decision is committed; with the broker down requests_redispatch_stale() enqueues
        # it again from the sweep, so the approver's request neither fails nor waits for Redis.
        enqueue_quietly(
            execute_action,
            (schema_name, request_id),
            what=f"execution of #{request_id} in {schema_name}",
            **options,
        )

    transaction.on_commit(enqueue, robust=True)


def _check_can_decide(user: User, request: ActionRequest) -> None:
    kind = registry.get_kind(request.kind)
    if not can_decide(user, request):
        raise NotAllowed(f"Your role cannot decide on '{kind.label}' actions (needs {kind.permission}).")


# --- proposal ---------------------------------------------------------------------------------


def _route(kind: str, impact: str) -> tuple[ApproverRule | None, int]:
    for rule in ApproverRule.objects.select_related("primary_approver", "backup_approver"):
        if rule.kind in ("", kind) and rule.impact_level in ("", impact):
            return rule, rule.sla_minutes
    return None, DEFAULT_SLA_MINUTES


def _assignee(rule: ApproverRule | None) -> tuple[User | None, str]:
    if rule is None:
        return None, Role.AE
    for user in (rule.primary_approver, rule.backup_approver):
        if user is not None and user.is_active:
            return user, rule.primary_role
    return None, rule.primary_role


def _ai_decision(release_decision: str) -> str:
    return {
        ReleaseDecision.AUTO_DELIVER: "approve",
        ReleaseDecision.BLOCKED: "reject",
    }.get(release_decision, "review")


def action_propose(
    *,
    kind: str,
    payload: dict[str, Any],
    idempotency_key: str,
    requested_by: User | None = None,
    skill_run: str = "",
    execution_mode: str = ExecutionMode.EXECUTE,
    evaluation_score: float | None = None,
    release_decision: str = "",
    deadline: datetime | None = None,
    redo_of: ActionRequest | None = None,
) -> ActionRequest:
    """Propose an external action. A repeat with the same idempotency key returns the first one.

    The tenant's rollout phase decides what happens next: shadow records it as shadowed; parallel
    and assisted queue it for people; autonomous executes auto_deliver decisions at once.
    """
    from connectors.ledger import RESERVED_PREFIXES, is_reserved

    spec = registry.get_kind(kind)
    if not isinstance(idempotency_key, str) or not idempotency_key or len(idempotency_key) > 200:
        raise PayloadInvalid("An idempotency key of 1-200 characters is required.")
    if is_reserved(idempotency_key):
        raise PayloadInvalid(
            f"Idempotency keys may not start with {' or '.join(RESERVED_PREFIXES)}: "
            "those name the console's own calls in the call ledger."
        )
    existing = ActionRequest.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    payload = _payload_prepare(spec, payload)
    spec.validate(payload)
    gates.proposal_gate(spec, payload)
    if execution_mode not in ExecutionMode.values:
        raise PayloadInvalid(f"Unknown execution mode {execution_mode!r}.")
    if release_decision and release_decision not in ReleaseDecision.values:
        raise PayloadInvalid(f"Unknown release decision {release_decision!r}.")
    if release_decision == ReleaseDecision.AUTO_DELIVER and (requested_by is not None or not skill_run):
        # auto_deliver lets an action run without a person in the autonomous phase: only the
        # evaluation of a skill run may say so, never a person's own proposal.
        raise PayloadInvalid("Only a skill run's evaluation can mark an action auto_deliver.")

    first_of_kind = not ActionRequest.objects.filter(kind=kind, status=Status.EXECUTED).exists()
    impact = assess(spec, payload, first_of_kind=first_of_kind)
    rule, sla_minutes = _route(kind, impact.level)
    assignee, role = _assignee(rule)
    now = timezone.now()
    policy = EscalationPolicy.get_solo()
    phase = RolloutSettings.get_solo().phase

    try:
        with transaction.atomic():
            request = ActionRequest.objects.create(
                kind=kind,
                payload=payload,
                target=spec.target_of(payload),
                execution_mode=execution_mode,
                requested_by=requested_by,
                requested_by_skill_run=skill_run,
                impact_level=impact.level,
                risk_flags=impact.flags,
                evaluation_score=evaluation_score,
                release_decision=release_decision,
                ai_decision=_ai_decision(release_decision) if phase == RolloutPhase.PARALLEL else "",
                idempotency_key=idempotency_key,
                correlation_id=current_correlation_id.get() if current_correlation_id.get() != "-" else "",
                deadline=deadline or now + timedelta(hours=policy.default_deadline_hours),
                approvals_required=2 if impact.level == Impact.CRITICAL else 1,
                assigned_to=assignee,
                assigned_role=role,
                sla_due_at=now + timedelta(minutes=sla_minutes),
                redo_of=redo_of,
                created_at=now,
            )
            _event(
                request,
                "proposed",
                actor=requested_by,
                actor_label=requested_by.get_username() if requested_by else (skill_run or SYSTEM),
                to_status=Status.PENDING,
                data={"impact": impact.level, "flags": impact.flags, "phase": phase},
            )
            _apply_rollout_phase(request, phase)
    except IntegrityError:
        # A concurrent proposal with the same key won the race: return it.
        existing = ActionRequest.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    return request


def _payload_prepare(spec: registry.ActionKind, payload: Any) -> Any:
    """Canonical addresses (display names kept apart) and the default sender filled in, so the
    request shows — and the gates check — exactly what will be sent."""
    payload = spec.normalize(payload)
    if isinstance(payload, dict) and spec.sender_field and not payload.get(spec.sender_field):
        from tenants.policy.selectors import sending_mailboxes

        payload[spec.sender_field] = sending_mailboxes()[0]
    return payload


def _apply_rollout_phase(request: ActionRequest, phase: str) -> None:
    label = f"{SYSTEM} ({phase} phase)"
    if phase == RolloutPhase.SHADOW:
        request.status = Status.SHADOWED
        request.save(update_fields=["status", "updated_at"])
        _event(
            request,
            "shadowed",
            actor_label=label,
            from_status=Status.PENDING,
            to_status=Status.SHADOWED,
            comment="Shadow phase: nothing external runs. This is what would have been done.",
            data={"would_execute": {"kind": request.kind, "payload": request.payload}},
        )
        return
    if phase == RolloutPhase.PARALLEL:
        return  # people decide; ai_decision is recorded beside for the agreement rate
    if request.release_decision == ReleaseDecision.BLOCKED:
        request.status = Status.BLOCKED
        request.save(update_fields=["status", "updated_at"])
        _event(
            request,
            "blocked",
            actor_label=label,
            from_status=Status.PENDING,
            to_status=Status.BLOCKED,
            comment="The release policy blocked this output; it never runs.",
        )
        return
    if (
        phase == RolloutPhase.AUTONOMOUS
        and request.release_decision == ReleaseDecision.AUTO_DELIVER
        and request.execution_mode == ExecutionMode.EXECUTE
    ):
        request.decided_at = timezone.now()
        _transition(
            request,
            Status.APPROVED,
            actor_label=f"{label}: auto_deliver",
            comment="Autonomous phase and auto_deliver decision: no person needed.",
            fields=("decided_at",),
        )
        _schedule_execution(request)


# --- decisions --------------------------------------------------------------------------------


@transaction.atomic
def action_approve(*, request_id: int, acting_user: User, comment: str = "") -> ActionRequest:
    """Approve a pending request. The requester cannot; critical ones need two distinct people."""
    request = request_for_update(request_id)
    if request.status != Status.PENDING:
        raise IllegalTransition(
            f"Request #{request.pk} is {request.get_status_display().lower()}, not pending: "
            "only pending requests can be approved."
        )
    if request.requested_by_id is not None and request.requested_by_id == acting_user.pk:
        raise NotAllowed("You requested this action; someone else must approve it.")
    _check_can_decide(acting_user, request)
    if Approval.objects.filter(request=request, approver=acting_user).exists():
        raise NotAllowed("You already approved this request; a second, different approver is needed.")
    Approval.objects.create(request=request, approver=acting_user)
    given = Approval.objects.filter(request=request).count()
    if given < request.approvals_required:
        _event(
            request,
            "approval_recorded",
            actor=acting_user,
            comment=comment,
            data={"approvals": given, "required": request.approvals_required},
        )
        return request
    request.decided_at = timezone.now()
    _transition(
        request,
        Status.APPROVED,
        actor=acting_user,
        comment=comment,
        data=_agreement(request, "approve"),
        fields=("decided_at",),
    )
    _schedule_execution(request)
    return request


def _agreement(request: ActionRequest, human: str) -> dict[str, Any]:
    if request.ai_decision in ("approve", "reject"):
        return {"ai_decision": request.ai_decision, "human_decision": human}
    return {}


@transaction.atomic
def action_reject(
    *, request_id: int, acting_user: User, reason: str, redo_instructions: str = ""
) -> ActionRequest:
    """Reject a pending request with a reason; optional instructions let the skill redo it."""
    if not (reason or "").strip():
        raise ReasonRequired("A rejection needs a reason.")
    request = request_for_update(request_id)
    if request.status != Status.PENDING:
        raise IllegalTransition(
            f"Request #{request.pk} is {request.get_status_display().lower()}, not pending: "
            "only pending requests can be rejected."
        )
    _check_can_decide(acting_user, request)
    request.rejection_reason = reason.strip()
    request.redo_instructions = (redo_instructions or "").strip()
    request.decided_at = timezone.now()
    return _transition(
        request,
        Status.REJECTED,
        actor=acting_user,
        comment=request.rejection_reason,
        data={**_agreement(request, "reject"), "redo_instructions": request.redo_instructions},
        fields=("rejection_reason", "redo_instructions", "decided_at"),
    )


@transaction.atomic
def action_edit_payload(*, request_id: int, acting_user: User, changes: dict[str, Any]) -> ActionRequest:
    """Edit a pending request's payload within its schema; the diff is kept beside the original."""
    request = request_for_update(request_id)
    if request.status != Status.PENDING:
        raise IllegalTransition(
            f"Request #{request.pk} is {request.status}: only pending requests can be edited."
        )
    _check_can_decide(acting_user, request)
    spec = registry.get_kind(request.kind)
    if not changes:
        raise PayloadInvalid("Nothing to edit: give at least one field.")
    not_editable = sorted(set(changes) - set(spec.editable_fields))
    if not_editable:
        raise PayloadInvalid(
            f"{', '.join(not_editable)} cannot be edited on '{spec.label}'; editable: "
            f"{', '.join(spec.editable_fields) or 'nothing'}."
        )
    new_payload = _payload_prepare(spec, {**request.payload, **changes})
    spec.validate(new_payload)
    original = request.original_payload or request.payload
    request.original_payload = original
    request.payload = new_payload
    request.payload_diff = {
        key: {"before": original.get(key), "after": new_payload.get(key)}
        for key in sorted(set(original) | set(new_payload))
        if original.get(key) != new_payload.get(key)
    }
    request.save(update_fields=["payload", "original_payload", "payload_diff", "updated_at"])
    # Earlier approvals were given to a payload that no longer exists: they do not count.
    withdrawn = list(Approval.objects.filter(request=request).values_list("approver__username", flat=True))
    Approval.objects.filter(request=request).delete()
    _event(
        request,
        "edited",
        actor=acting_user,
        data={"changed": sorted(changes), "approvals_withdrawn": withdrawn},
        comment="Earlier approvals withdrawn: the payload changed." if withdrawn else "",
    )
    return request


@transaction.atomic
def action_delegate(
    *,
    request_id: int,
    acting_user: User,
    to_user: User,
    until: datetime | None = None,
    comment: str = "",
) -> ActionRequest:
    """Hand a pending request to a colleague, optionally until a time (then the roster again)."""
    request = request_for_update(request_id)
    if request.status != Status.PENDING:
        raise IllegalTransition(
            f"Request #{request.pk} is {request.status}: only pending requests can be delegated."
        )
    if not (request.assigned_to_id == acting_user.pk or can_decide(acting_user, request)):
        raise NotAllowed("Only the assignee or an approver of this kind can delegate it.")
    if not (to_user.is_active and to_user.is_staff):
        raise NotAllowed(f"{to_user.get_username()} cannot work in this console.")
    if to_user.pk == request.requested_by_id:
        raise NotAllowed("A request cannot be delegated to the person who requested it.")
    if until is not None and until <= timezone.now():
        raise PayloadInvalid("The delegation must end in the future.")
    previous = request.assigned_to
    if previous is not None and previous.pk != to_user.pk:
        _revoke_object_perms(previous, request)
    request.assigned_to = to_user
    request.delegated_until = until
    request.save(update_fields=["assigned_to", "delegated_until", "updated_at"])
    # The delegate may decide on this request even without the kind's scope by role.
    spec = registry.get_kind(request.kind)
    assign_perm(spec.permission, to_user, request)
    assign_perm("approvals.view_actionrequest", to_user, request)
    _event(
        request,
        "delegated",
        actor=acting_user,
        comment=comment,
        data={"to": to_user.get_username(), "until": until.isoformat() if until else None},
    )
    return request


def _revoke_object_perms(user: User, request: ActionRequest) -> None:
    spec = registry.get_kind(request.kind)
    remove_perm(spec.permission, user, request)
    remove_perm("approvals.view_actionrequest", user, request)


@transaction.atomic
def action_cancel(*, request_id: int, reason: str, acting_user: User | None = None) -> ActionRequest:
    """Cancel a pending or approved request (e.g. the recipient unsubscribed, a gate closed)."""
    request = request_for_update(request_id)
    if request.status == Status.EXECUTING:
        # under way: only its executor may still stop it, at its own gate check
        raise IllegalTransition(f"Request #{request.pk} is executing; it can no longer be cancelled.")
    if request.status == Status.APPROVED:
        _release_slot(request)
    request.cancel_reason = reason[:500]
    return _transition(
        request,
        Status.CANCELLED,
        actor=acting_user,
        comment=reason,
        fields=("cancel_reason",),
    )


# --- execution --------------------------------------------------------------------------------


def _lease_key(request_id: int) -> str:
    return f"mh1:execute:{connection.schema_name}:{request_id}"


@contextlib.contextmanager
def execution_lease(request_id: int) -> Iterator[bool]:
    """A session-level advisory lock held while a worker executes the request.

    PostgreSQL frees it when the worker's connection dies with the worker, so the sweep tells a
    live execution (lock held) from a lost one (lock free) within a minute, not after a fixed
    time-out; and a duplicate delivery of the same task does not run beside the first.
    """
    key = _lease_key(request_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])


def execution_is_live(request_id: int) -> bool:
    """Whether some worker holds the request's execution lease right now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [_lease_key(request_id)])
        free = cursor.fetchone()[0]
        if free:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [_lease_key(request_id)])
    return not free


def _pace(request: ActionRequest) -> bool:
    """Reserve the send's own place under the sending policy (one statement: a pacing slot and
    the window counts of that slot); True when it must wait, rescheduled once to its moment."""
    from connectors.sending import send_slot_reserve

    deferral = send_slot_reserve(request.target, held=request.not_before)
    if deferral is None:
        return False
    request.not_before = deferral.not_before
    request.save(update_fields=["not_before", "updated_at"])
    _event(
        request,
        "deferred",
        comment=f"{deferral.reason} Deferred to {deferral.not_before:%Y-%m-%d %H:%M:%S} UTC.",
        data={"deferred": True, "not_before": deferral.not_before.isoformat()},
    )
    _schedule_execution(request, eta=deferral.not_before)
    return True


def _release_slot(request: ActionRequest) -> None:
    """A paced request that will not run gives its reserved window counts back."""
    if request.not_before is not None and registry.get_kind(request.kind).paced:
        from connectors.sending import send_slot_release

        send_slot_release(request.target, request.not_before)


def _close(request: ActionRequest, gate: gates.ClosedGate) -> str:
    """A gate closed before any effect: the request is cancelled (or expired), with the reason."""
    _release_slot(request)
    request.cancel_reason = gate.reason[:500]
    _transition(
        request,
        gate.status,
        comment=gate.reason,
        data={"gate": gate.code, "would_execute": {"kind": request.kind, "payload": request.payload}},
        fields=("cancel_reason",),
    )
    return request.status


def action_execute(request_id: int) -> str:
    """Execute an approved request exactly once; re-check every gate first. Returns the status.

    1. Under the row lock: a closed gate cancels (or expires); otherwise approved → executing.
    2. The executor runs, idempotent by the request's key, and checks the gates again inside the
       transaction that records its effect (gates.effect_gate), on every attempt.
    3. Under the row lock: executing → executed with the outcome (or unknown, failed, deferred).
    """
    with execution_lease(request_id) as held:
        if not held:
            return "in_progress"  # another worker is executing it now
        return _execute(request_id)


def _execute(request_id: int) -> str:
    with transaction.atomic():
        request = request_locked_or_none(request_id)
        if request is None:
            logger.warning("execute: request %s is gone", request_id)
            return "missing"
        if request.status == Status.APPROVED and request.not_before and request.not_before > timezone.now():
            return "deferred"  # early delivery: never run before the allowed moment
        if request.status == Status.APPROVED:
            gate = gates.closed_gate(request)
            if gate:
                return _close(request, gate)
            if registry.get_kind(request.kind).paced and _pace(request):
                return "deferred"
            attempts = request.attempts + 1  # what the statement below writes: the row is locked
            _system_transition(
                request.pk, Status.APPROVED, Status.EXECUTING, set_sql=", attempts = attempts + 1"
            )
            request.status = Status.EXECUTING
        elif request.status == Status.EXECUTING:
            # Redelivered (worker lost mid-effect) or retried: the executor checks the gates and
            # its ledger (an effect that may have happened is never repeated blindly).
            attempts = request.attempts + 1
            request.attempts = F("attempts") + 1
            request.save(update_fields=["attempts", "updated_at"])
            _event(request, "execution_resumed", data={"reason": "redelivered or retried"})
        else:
            return request.status
        request.attempts = attempts
        payload = request.payload

    try:
        result = executor_for(request.kind)(request, payload)
    except RetryableExecutionError as exc:
        return _execution_failed(request_id, str(exc), retryable=attempts < request.max_attempts)
    except FatalExecutionError as exc:
        return _execution_failed(request_id, str(exc), retryable=False)
    except GateClosedError as exc:
        return _gate_closed_during_execution(request_id, exc)
    except OutcomeUnknown as exc:
        return _outcome_unknown(request_id, str(exc))
    except DeferExecution as exc:
        return _defer(request_id, exc)
    except Exception as exc:  # an executor bug must not leave the request stuck in executing
        logger.exception("execute: unexpected error in the %s executor for #%s", request.kind, request_id)
        return _execution_failed(
            request_id,
            f"Unexpected error: {exc.__class__.__name__}: {exc}",
            retryable=attempts < request.max_attempts,
        )

    import json

    # one statement, atomic on its own: executing → executed with the outcome
    if _system_transition(
        request_id,
        Status.EXECUTING,
        Status.EXECUTED,
        set_sql=", result = %(result)s::jsonb, executed_at = %(now)s",
        params={"result": json.dumps(result, default=str)},
        data={"result": result},
    ):
        return Status.EXECUTED
    return ActionRequest.objects.filter(pk=request_id).values_list("status", flat=True).first() or "missing"


def _outcome_unknown(request_id: int, message: str) -> str:
    """The effect may have happened: shown as unknown, never retried until someone checks."""
    with transaction.atomic():
        request = request_for_update(request_id)
        if request.status != Status.EXECUTING:
            return request.status
        request.error = message[:5000]
        _transition(request, Status.UNKNOWN, comment=message, fields=("error",))
    return Status.UNKNOWN


RESOLVE_PERMISSION = "approvals.resolve_execution"


def _check_can_resolve(acting_user: User, reason: str) -> str:
    if not acting_user.has_perm(RESOLVE_PERMISSION):
        raise NotAllowed("Only a tenant admin can re-queue or resolve an execution.")
    if not (reason or "").strip():
        raise ReasonRequired("Say why (what you checked at the vendor).")
    return reason.strip()


@transaction.atomic
def action_requeue(*, request_id: int, acting_user: User, reason: str) -> ActionRequest:
    """Run a failed or unknown-outcome request again, once someone checked the effect did not
    happen. The ledger forgets the earlier attempt, so the effect is made (once) again."""
    from connectors.ledger import action_call_release

    reason = _check_can_resolve(acting_user, reason)
    request = request_for_update(request_id)
    if request.status not in RESOLVABLE_STATUSES:
        raise IllegalTransition(
            f"Request #{request.pk} is {request.get_status_display().lower()}: only failed or "
            "unknown-outcome requests can be re-queued."
        )
    released = action_call_release(request.idempotency_key, note=f"re-queued by {acting_user}: {reason}")
    request.attempts, request.error, request.not_before = 0, "", None
    request.decided_at = timezone.now()  # a fresh decision: the approval's validity starts again
    _transition(
        request,
        Status.APPROVED,
        actor=acting_user,
        comment=reason,
        data={"requeued": True, "ledger_released": released},
        fields=("attempts", "error", "not_before", "decided_at"),
    )
    _schedule_execution(request)
    return request


@transaction.atomic
def action_resolve(*, request_id: int, acting_user: User, outcome: str, reason: str) -> ActionRequest:
    """Record what really happened to a failed or unknown-outcome request (executed or failed)."""
    reason = _check_can_resolve(acting_user, reason)
    if outcome not in (Status.EXECUTED, Status.FAILED):
        raise PayloadInvalid("The outcome is either executed or failed.")
    request = request_for_update(request_id)
    if request.status not in RESOLVABLE_STATUSES or request.status == outcome:
        raise IllegalTransition(
            f"Request #{request.pk} is {request.get_status_display().lower()}: it cannot be resolved "
            f"as {outcome}."
        )
    fields: tuple[str, ...] = ()
    if outcome == Status.EXECUTED:
        request.executed_at = timezone.now()
        fields = ("executed_at",)
    _transition(request, outcome, actor=acting_user, comment=reason, data={"resolved": True}, fields=fields)
    return request


def _defer(request_id: int, exc: DeferExecution) -> str:
    """A limit allows the action only later: back to approved, to run at ``not_before``."""
    with transaction.atomic():
        request = request_for_update(request_id)
        if request.status != Status.EXECUTING:
            return request.status
        request.not_before = exc.not_before
        _transition(
            request,
            Status.APPROVED,
            comment=f"{exc} Deferred to {exc.not_before:%Y-%m-%d %H:%M:%S} UTC.",
            data={"deferred": True, "not_before": exc.not_before.isoformat()},
            fields=("not_before",),
        )
        _schedule_execution(request, eta=exc.not_before)
    return "deferred"


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


def _gate_closed_during_execution(request_id: int, exc: GateClosedError) -> str:
    """The executor found a gate closed before any effect: cancelled (or expired), with the reason."""
    with transaction.atomic():
        request = request_for_update(request_id)
        if request.status != Status.EXECUTING or exc.status is None:
            return request.status
        return _close(request, gates.ClosedGate(str(exc), status=exc.status, code="gate_closed"))


def _execution_failed(request_id: int, message: str, *, retryable: bool) -> str:
    with transaction.atomic():
        request = request_for_update(request_id)
        request.error = message[:5000]
        if retryable:
            request.save(update_fields=["error", "updated_at"])
            _event(request, "retry_scheduled", comment=message, data={"attempt": request.attempts})
        else:
            if registry.get_kind(request.kind).paced:
                from connectors.sending import send_slot_release_unused

                send_slot_release_unused(request.target)  # a reservation its executor never took
            _transition(request, Status.FAILED, comment=message, fields=("error",))
    if retryable:
        raise RetryableExecutionError(message)
    return Status.FAILED


# --- scheduled sweeps -------------------------------------------------------------------------


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
