"""Scheduled per-tenant jobs of the tenant policy app."""

from __future__ import annotations

import socket

from mh1.tenancy import tenant_task
from tenants.policy.services import heartbeat_record


@tenant_task(name="policy.heartbeat", bind=True, ignore_result=False, expires=300)
def heartbeat(self, schema_name: str) -> int:
    """Prove beat → broker → worker → tenant schema works; the tenant admin shows the last run."""
    beat = heartbeat_record(
        worker=self.request.hostname or socket.gethostname(), task_id=self.request.id or ""
    )
    return beat.pk
