"""People's decisions on a pending request: approve, reject, edit, delegate, cancel."""

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from approvals import registry
from approvals.errors import (
    IllegalTransition,
    NotAllowed,
    PayloadInvalid,
    ReasonRequired,
)
from approvals.locks import request_for_update
from approvals.models import (
    ActionRequest,
    Approval,
    Status,
)
from approvals.services.common import (
    _agreement,
    _check_can_decide,
    _event,
    _revoke_object_perms,
    _schedule_execution,
    _transition,
)
from approvals.services.execution import _release_slot
from approvals.services.proposal import _payload_prepare

logger = logging.getLogger(__name__)


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
    request = _transition(
        request,
        Status.REJECTED,
        actor=acting_user,
        comment=request.rejection_reason,
        data={**_agreement(request, "reject"), "redo_instructions": request.redo_instructions},
        fields=("rejection_reason", "redo_instructions", "decided_at"),
    )
    if request.redo_instructions and request.skill_run_id:
        _after_commit("skills.tasks", "redo", request.pk, what=f"redo of request {request.pk}")
    return request


def _after_commit(module: str, task_name: str, request_id: int, *, what: str) -> None:
    """Enqueue a follow-up task of another app after commit, never failing the decision (the
    broker may be down: the decision stands and the log says what was not started)."""
    import importlib

    from django.db import connection

    from mh1.tenancy import enqueue_quietly

    schema = connection.schema_name

    def enqueue() -> None:
        task = getattr(importlib.import_module(module), task_name)
        enqueue_quietly(task, (schema, request_id), what=what)

    transaction.on_commit(enqueue, robust=True)


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
    if request.skill_run_id:
        # the edit is evaluated like the AI's output was; the pair (AI output, edit) is kept
        _after_commit(
            "evaluation.tasks", "evaluate_edit", request.pk, what=f"evaluation of the edit of {request.pk}"
        )
    return request


def delegation_check_actor(acting_user: User, request: ActionRequest) -> None:
    """Only someone holding the kind's scope hands a request on: being its assignee is not enough
    (the roster may route a request to anyone, and a delegation never grants a scope)."""
    _check_can_decide(acting_user, request)


@transaction.atomic
def action_delegate(
    *,
    request_id: int,
    acting_user: User,
    to_user: User,
    until: datetime | None = None,
    comment: str = "",
) -> ActionRequest:
    """Hand a pending request to a colleague whose role may approve its kind, optionally until a
    time (then the roster again). The delegate decides with their own role's scope: nothing is
    granted, so a delegation can never lift someone above their role."""
    from approvals.selectors import delegate_candidates

    request = request_for_update(request_id)
    if request.status != Status.PENDING:
        raise IllegalTransition(
            f"Request #{request.pk} is {request.status}: only pending requests can be delegated."
        )
    delegation_check_actor(acting_user, request)
    if to_user.pk == acting_user.pk:
        raise NotAllowed("You cannot delegate a request to yourself: choose a colleague.")
    if to_user.pk == request.requested_by_id:
        raise NotAllowed("A request cannot be delegated to the person who requested it.")
    if not (to_user.is_active and to_user.is_staff):
        raise NotAllowed(f"{to_user.get_username()} cannot work in this console.")
    if not delegate_candidates([request.kind]).filter(pk=to_user.pk).exists():
        spec = registry.get_kind(request.kind)
        raise NotAllowed(
            f"{to_user.get_username()}'s role cannot approve '{spec.label}' actions "
            f"(needs {spec.permission}): delegate to someone whose role can."
        )
    if until is not None and until <= timezone.now():
        raise PayloadInvalid("The delegation must end in the future.")
    previous = request.assigned_to
    if previous is not None and previous.pk != to_user.pk:
        # object permissions given by delegations before roles decided alone
        _revoke_object_perms(previous, request)
    request.assigned_to = to_user
    request.delegated_until = until
    request.save(update_fields=["assigned_to", "delegated_until", "updated_at"])
    _event(
        request,
        "delegated",
        actor=acting_user,
        comment=comment,
        data={"to": to_user.get_username(), "until": until.isoformat() if until else None},
    )
    return request


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
