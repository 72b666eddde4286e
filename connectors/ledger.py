"""The call ledger: every external write recorded by key before the call, its outcome after.

One module owns the keys and the states, so no two origins can collide and every path treats an
unfinished call the same way:

- **Keys are namespaced by origin.** An approved action's call is ``action:<its idempotency
  key>``; a suppression pushed to a system is ``suppress:<system>:<canonical value>``. A proposer
  chooses only the part after ``action:``, so it can never take a key another origin will need
  (and ``approvals`` refuses proposals whose key starts with a reserved prefix, so a key reads the
  same in the queue and in the ledger).
- **States:** started (recorded, call under way), succeeded, failed (certainly not applied: safe
  to try again), unknown (it may have reached the vendor: reconcile by reading, never resend
  blindly).
- **Reconciliation:** a caller that can read the remote state passes ``reconcile`` to
  ``call_once``; a key left unknown (or started by an attempt that never finished) is first
  reconciled, and the write is repeated only when the read shows it is not there.
- **Nothing to write:** a suppression push that found nothing to change (no such CRM contact) is
  recorded under ``push_absent_key`` so the sweep for unpushed suppressions does not read again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from connectors.models import CallLedger, CallStatus

ACTION = "action"
SUPPRESS = "suppress"
# Prefixes a proposer may not put at the start of an action's idempotency key.
RESERVED_PREFIXES = tuple(f"{origin}:" for origin in (ACTION, SUPPRESS))


def action_key(idempotency_key: str) -> str:
    """The ledger key of an approved action's external call."""
    return f"{ACTION}:{idempotency_key}"


def push_key(system: str, value: str) -> str:
    """The ledger key of pushing one suppression (a canonical address or domain) to ``system``."""
    return f"{SUPPRESS}:{system}:{value}"


# Suffix of the key that records "nothing to write there" for a push (a CRM without the contact).
# Canonical addresses and domains never contain a colon, so it cannot collide with a value.
ABSENT_SUFFIX = ":absent"


def push_absent_key(system: str, value: str) -> str:
    """The ledger key recording that pushing ``value`` to ``system`` found nothing to change."""
    return f"{push_key(system, value)}{ABSENT_SUFFIX}"


def push_settled(system: str) -> Exists:
    """For a ``Suppression`` queryset: pushing the row to ``system`` succeeded, or found nothing to
    change there. (A row holds an email or a domain, never both: their concatenation is its value.)"""
    value = (Value(push_key(system, "")), OuterRef("email"), OuterRef("domain"))
    return Exists(
        CallLedger.objects.filter(
            Q(idempotency_key=Concat(*value)) | Q(idempotency_key=Concat(*value, Value(ABSENT_SUFFIX))),
            status=CallStatus.SUCCEEDED,
        )
    )


def call_record_absent(system: str, value: str, operation: str) -> None:
    """Record that pushing ``value`` to ``system`` found nothing to change (no call was made)."""
    now = timezone.now()
    CallLedger.objects.update_or_create(
        idempotency_key=push_absent_key(system, value),
        defaults={
            "system": system,
            "operation": operation,
            "status": CallStatus.SUCCEEDED,
            "response": {"absent": True},
            "finished_at": now,
        },
        create_defaults={
            "system": system,
            "operation": operation,
            "request": {"value": value},
            "status": CallStatus.SUCCEEDED,
            "response": {"absent": True},
            "finished_at": now,
        },
    )


def is_reserved(idempotency_key: str) -> bool:
    return idempotency_key.startswith(RESERVED_PREFIXES)


def call_finish(ledger: CallLedger, *, response: dict | None = None, error: str = "") -> None:
    """Record the outcome: failed (with the error) or succeeded (with the response)."""
    ledger.status = CallStatus.FAILED if error else CallStatus.SUCCEEDED
    ledger.response = response
    ledger.error = error[:5000]
    ledger.finished_at = timezone.now()
    ledger.save(update_fields=["status", "response", "error", "finished_at"])


def call_mark_unknown(ledger: CallLedger, error: str = "") -> None:
    """The call may have reached the vendor: only a read can tell."""
    ledger.status = CallStatus.UNKNOWN
    ledger.error = error[:5000]
    ledger.finished_at = timezone.now()
    ledger.save(update_fields=["status", "error", "finished_at"])


def call_once(
    key: str,
    system: str,
    operation: str,
    call: dict[str, Any],
    run: Callable[[], dict],
    *,
    reconcile: Callable[[], dict | None] | None = None,
) -> dict:
    """One external write per key: recorded before, its outcome after; a repeat makes no call.

    ``run`` raises ``ConnectorError`` on failure; an ``OutcomeUnknownError`` leaves the row
    unknown (the caller reconciles), any other failure leaves it failed (safe to try again).

    ``reconcile`` reads the remote state: it returns the result when the write is there, ``None``
    when it is not. It runs before ``run`` whenever an earlier attempt may have applied the write
    (left unknown, or started and never finished); a failing read leaves the row unknown.
    """
    from connectors.errors import OutcomeUnknownError

    with transaction.atomic():
        ledger, created = CallLedger.objects.select_for_update().get_or_create(
            idempotency_key=key, defaults={"system": system, "operation": operation, "request": call}
        )
        if not created and ledger.status == CallStatus.SUCCEEDED:
            return {**(ledger.response or {}), "repeat": True}
        may_be_applied = not created and ledger.status in (CallStatus.UNKNOWN, CallStatus.STARTED)
        if not created:
            ledger.status, ledger.error = CallStatus.STARTED, ""
            ledger.save(update_fields=["status", "error"])
    if may_be_applied and reconcile is not None:
        try:
            found = reconcile()
        except Exception as exc:
            call_mark_unknown(ledger, f"reconciling: {exc or exc.__class__.__name__}")
            raise
        if found is not None:
            result = {**found, "reconciled": True}
            call_finish(ledger, response=result)
            return result
    try:
        result = run()
    except OutcomeUnknownError as exc:
        call_mark_unknown(ledger, str(exc))
        raise
    except Exception as exc:
        call_finish(ledger, error=str(exc) or exc.__class__.__name__)
        raise
    call_finish(ledger, response=result)
    return result


def action_call_release(idempotency_key: str, *, note: str) -> bool:
    """Forget an action's unfinished or failed call (a person checked it did not happen), so
    the next attempt makes it. A succeeded call is kept: it happened."""
    return bool(
        CallLedger.objects.filter(idempotency_key=action_key(idempotency_key))
        .exclude(status=CallStatus.SUCCEEDED)
        .update(status=CallStatus.FAILED, error=note[:5000], finished_at=timezone.now())
    )
