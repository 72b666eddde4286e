"""Budget tasks: the per-tenant sweep that releases what dead runs still hold."""

from __future__ import annotations

from mh1.tenancy import tenant_task


@tenant_task(name="budget.sweep", expires=120, ignore_result=True)
def sweep(schema_name: str) -> int:
    """Fanned out to every active tenant each minute by ``platform.dispatch_to_tenants``; the
    sweep's row locks (skip_locked) make an overlapping run harmless."""
    from tenants.budget.services import budget_reservations_sweep

    return budget_reservations_sweep()
