"""Approval tasks: execution of approved actions, and the per-tenant sweep (expire, escalate)."""

from __future__ import annotations

from approvals.errors import RetryableExecutionError
from approvals.services import (
    action_execute,
    delegations_fall_back,
    requests_escalate,
    requests_expire,
    requests_redispatch_stale,
    requests_release_deferred,
)
from mh1.queues import Queue
from mh1.tenancy import tenant_task


@tenant_task(
    name="approvals.execute",
    queue=Queue.EFFECTS,
    # The effect must survive a lost worker: ack only after the task ran, redeliver if it died.
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(RetryableExecutionError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def execute_action(schema_name: str, request_id: int) -> str:
    return action_execute(request_id)


@tenant_task(name="approvals.sweep", expires=120)
def sweep(schema_name: str) -> dict[str, int]:
    """Expire overdue requests, end delegations, escalate; one run per tenant per minute."""
    return {
        "expired": requests_expire(),
        "delegations_ended": delegations_fall_back(),
        "escalated": requests_escalate(),
        "released": requests_release_deferred(),
        "redispatched": requests_redispatch_stale(),
    }
