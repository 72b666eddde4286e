"""Budgets that block, not just report: a run reserves its worst case before it starts (refused
when any limit would be exceeded), each model call settles its real cost against the reservation,
priced actions are charged when they execute, and a sweep releases what dead runs still hold.

The public interface (what the skills runner and the connectors call) is re-exported here; it is
loaded on first use, because Django imports this package before the app registry is ready.
Periods are the tenant's days and months in UTC.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Reservation",
    "budget_charge",
    "budget_release",
    "budget_reservations_sweep",
    "budget_reserve",
    "budget_settle",
    "budget_status",
    "cost_of",
]

_HOMES = {
    "Reservation": "tenants.budget.services",
    "budget_charge": "tenants.budget.services",
    "budget_release": "tenants.budget.services",
    "budget_reservations_sweep": "tenants.budget.services",
    "budget_reserve": "tenants.budget.services",
    "budget_settle": "tenants.budget.services",
    "budget_status": "tenants.budget.selectors",
    "cost_of": "tenants.budget.prices",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tenants.budget' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(home), name)
