"""Approval tasks: execution of approved actions, and the per-tenant sweep (expire, escalate)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

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

logger = logging.getLogger(__name__)


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
def sweep(schema_name: str) -> dict[str, Any]:
    """Expire overdue requests, end delegations, escalate; one run per tenant per minute.

    Each step runs on its own: one that fails (a mail server down while escalating) is logged and
    reported under ``errors`` with its count ``None``, and the steps after it still run.
    """
    steps: dict[str, Callable[[], int]] = {
        "expired": requests_expire,
        "delegations_ended": delegations_fall_back,
        "escalated": requests_escalate,
        "released": requests_release_deferred,
        "redispatched": requests_redispatch_stale,
    }
    result: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, step in steps.items():
        try:
            result[name] = step()
        except Exception as exc:
            # each step commits its own rows; whatever one raises must not keep the others from running
            logger.exception("approvals sweep in %s: step %r failed", schema_name, name)
            result[name] = None
            errors[name] = f"{exc.__class__.__name__}: {exc}"
    result["errors"] = errors
    return result
