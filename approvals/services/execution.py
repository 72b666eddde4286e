"""Executing an approved request exactly once, and what an operator does with an outcome that
failed or is unknown."""

import contextlib
import logging
from collections.abc import Iterator

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

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
from approvals.locks import request_for_update, request_locked_or_none
from approvals.models import (
    RESOLVABLE_STATUSES,
    ActionRequest,
    Status,
)
from approvals.services.common import _event, _schedule_execution, _system_transition, _transition

logger = logging.getLogger(__name__)


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
