"""Connector tasks: pushing a suppression out, pulling block lists in."""

from __future__ import annotations

from connectors.errors import ConnectorError, RetryableError
from connectors.sync import ensure_instantly_webhook, pull_instantly_block_list, push_suppression
from mh1.queues import Queue
from mh1.tenancy import tenant_task


@tenant_task(
    name="connectors.push_suppression",
    queue=Queue.EFFECTS,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(RetryableError,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def push_suppression_task(schema_name: str, suppression_id: int) -> dict[str, str]:
    return push_suppression(suppression_id)


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
