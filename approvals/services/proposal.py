"""Proposing an external action: validated, made canonical, refused when a gate could never
open, routed by impact, and released by the rollout phase."""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import gates, registry
from approvals.errors import (
    NotAllowed,
    PayloadInvalid,
)
from approvals.impact import assess
from approvals.models import (
    ActionRequest,
    EscalationPolicy,
    ExecutionMode,
    Impact,
    ReleaseDecision,
    Status,
)
from approvals.services.common import (
    SYSTEM,
    _assignee,
    _event,
    _route,
    _schedule_execution,
    _transition,
)
from mh1.context import correlation_id as current_correlation_id
from tenants.policy.models import RolloutPhase, RolloutSettings

logger = logging.getLogger(__name__)

PROPOSE_PERMISSION = "approvals.propose_action"


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
    run: Any = None,
    summary: str = "",
    reasoning: str = "",
    evaluation: Any = None,
) -> ActionRequest:
    """Propose an external action. A repeat with the same idempotency key returns the first one.

    The tenant's rollout phase decides what happens next: shadow records it as shadowed; parallel
    and assisted queue it for people; autonomous executes auto_deliver decisions at once.
    """
    from connectors.ledger import RESERVED_PREFIXES, is_reserved

    if requested_by is not None:
        if not requested_by.has_perm(PROPOSE_PERMISSION):
            raise NotAllowed(f"Your role cannot propose actions (needs {PROPOSE_PERMISSION}).")
        if evaluation_score is not None or release_decision:
            # the evaluation is a skill run's verdict on its own output, never the proposer's
            raise PayloadInvalid(
                "Only a skill run's evaluation sets evaluation_score and release_decision, "
                "never a person's proposal."
            )
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
    if run is not None:
        skill_run = skill_run or f"{run.skill} run #{run.pk}"
    if release_decision == ReleaseDecision.AUTO_DELIVER and (requested_by is not None or not skill_run):
        # auto_deliver lets an action run without a person in the autonomous phase: only the
        # evaluation of a skill run may say so, never a person's own proposal.
        raise PayloadInvalid("Only a skill run's evaluation can mark an action auto_deliver.")

    first_of_kind = not ActionRequest.objects.filter(kind=kind, status=Status.EXECUTED).exists()
    impact = assess(spec, payload, first_of_kind=first_of_kind)
    flags = list(impact.flags)
    for flag in getattr(evaluation, "risk_flags", None) or []:
        if flag not in flags:
            flags.append(flag)
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
                skill_run=run,
                summary=(summary or "")[:300],
                reasoning=reasoning or "",
                impact_level=impact.level,
                risk_flags=flags,
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
                data={"impact": impact.level, "flags": flags, "phase": phase},
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
