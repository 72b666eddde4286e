"""Campaign tasks: re-scoring every lead after the ICP changes, one batch a task."""

from __future__ import annotations

from campaigns.scoring import icp_rescores_resume, leads_rescore, rescore_batch
from mh1.tenancy import tenant_task


@tenant_task(name="campaigns.icp_rescore", ignore_result=True)
def icp_rescore(schema_name: str) -> int:
    """Start re-scoring the tenant's leads (its chains run as ``icp_rescore_batch``)."""
    return leads_rescore(schema_name=schema_name).pk


@tenant_task(
    name="campaigns.icp_rescore_batch",
    ignore_result=True,
    # A batch is one transaction that moves its chain's frontier: a redelivery after a lost
    # worker either redoes a batch that rolled back or finds the frontier moved and does nothing.
    acks_late=True,
    reject_on_worker_lost=True,
)
def icp_rescore_batch(schema_name: str, chain_id: int, after_id: int) -> int | None:
    return rescore_batch(schema_name=schema_name, chain_id=chain_id, after_id=after_id)


@tenant_task(name="campaigns.icp_rescore_resume", ignore_result=True, expires=600)
def icp_rescore_resume(schema_name: str) -> int:
    """Re-send a stalled chain's next batch or a lost re-scoring (for a per-tenant sweep)."""
    return icp_rescores_resume(schema_name=schema_name)
