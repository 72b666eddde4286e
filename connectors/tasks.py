"""Connector tasks: pushing a suppression out, pulling block lists in."""

from __future__ import annotations

import logging

from connectors.errors import ConnectorError, OutcomeUnknownError, RetryableError
from connectors.sync import (
    ensure_instantly_webhook,
    pull_instantly_block_list,
    push_not_pushed,
    push_suppression,
)
from mh1.queues import Queue
from mh1.tenancy import enqueue_quietly, tenant_task

logger = logging.getLogger(__name__)


@tenant_task(
    name="connectors.push_suppression",
    queue=Queue.EFFECTS,
    acks_late=True,
    reject_on_worker_lost=True,
    # an unknown outcome is retried too: the next attempt reconciles (reads) before it writes
    autoretry_for=(RetryableError, OutcomeUnknownError),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def push_suppression_task(schema_name: str, suppression_id: int) -> dict[str, str]:
    return push_suppression(suppression_id)


def push_suppression_enqueue(schema_name: str, suppression_id: int) -> bool:
    """Enqueue the push without failing or holding up the caller; push_pending_suppressions
    pushes what was never enqueued."""
    return enqueue_quietly(
        push_suppression_task,
        (schema_name, suppression_id),
        what=f"the push of suppression #{suppression_id}",
    )


@tenant_task(name="connectors.push_pending_suppressions", expires=300)
def push_pending_suppressions(schema_name: str) -> dict[str, int]:
    """Scheduled: push the suppressions some configured system still lacks (a lost enqueue, a
    push that gave up); see connectors.sync.suppressions_not_pushed."""
    return push_not_pushed()


@tenant_task(name="connectors.sync_suppressions", expires=600)
def sync_suppressions(schema_name: str) -> int:
    """Scheduled: Instantly's block list into ours (CRM DNC changes arrive by webhook)."""
    try:
        return pull_instantly_block_list()
    except ConnectorError as exc:
        # reported, retried at the next run; a vendor outage must not stop other tenants' jobs
        import logging

        logging.getLogger(__name__).warning("suppression pull failed: %s", exc)
        return 0


@tenant_task(name="connectors.ensure_webhooks", expires=120)
def ensure_webhooks(schema_name: str) -> str:
    """Scheduled: keep our webhook subscribed at the vendor (a vendor disables it after failures)."""
    try:
        return ensure_instantly_webhook()
    except ConnectorError as exc:
        import logging

        logging.getLogger(__name__).warning("webhook subscription failed: %s", exc)
        return f"failed: {exc}"


@tenant_task(name="connectors.pull_crm_leads", expires=600)
def pull_crm_leads(schema_name: str, system: str | None = None) -> dict:
    """Scheduled (and "Pull leads now" in the admin): CRM contacts into leads, a bounded run."""
    from connectors.pull import crm_pull, crm_pull_all

    if system is None:
        return crm_pull_all()
    return crm_pull(system)


@tenant_task(
    name="connectors.resolve_webhook_event",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(ConnectorError,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def resolve_webhook_event_task(schema_name: str, event_pk: int) -> str:
    """A webhook event kept pending (a HubSpot opt-out whose contact could not be read) applied
    once it can be; retried while the vendor cannot be read, then left to the sweep."""
    from connectors.services import webhook_event_resolve

    return webhook_event_resolve(event_pk=event_pk)


@tenant_task(name="connectors.sweep_pending_webhook_events", expires=600)
def sweep_pending_webhook_events(schema_name: str) -> dict[str, int]:
    """Scheduled: resolve pending webhook events whose task was lost or gave up."""
    from connectors.services import webhook_events_pending_sweep

    return webhook_events_pending_sweep()
