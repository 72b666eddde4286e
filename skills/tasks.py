"""Skill tasks: run one skill run; the per-tenant sweep (due schedules, stale and lost runs)."""

from __future__ import annotations

import logging
from typing import Any

from mh1.tenancy import tenant_task

logger = logging.getLogger(__name__)


@tenant_task(
    name="skills.run",
    # a run is claimed under its row lock (queued → running), so a redelivery is harmless; a run
    # whose worker died is ended by the sweep, never left running
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_skill(schema_name: str, run_id: int) -> str:
    from skills.services.runner import skill_run_execute

    run = skill_run_execute(run_id)
    return run.status if run is not None else "not queued"


@tenant_task(name="skills.sweep", expires=120, ignore_result=True)
def sweep(schema_name: str) -> dict[str, Any]:
    """Each step on its own: one that fails is logged and the others still run."""
    from skills.services.runner import skill_runs_end_stale, skill_runs_resend_queued
    from skills.services.schedules import schedules_start_due

    result: dict[str, Any] = {}
    for name, step in {
        "ended_stale": skill_runs_end_stale,
        "resent_queued": skill_runs_resend_queued,
        "scheduled": schedules_start_due,
    }.items():
        try:
            result[name] = step()
        except Exception:
            logger.exception("skills sweep in %s: step %r failed", schema_name, name)
            result[name] = None
    return result


@tenant_task(name="skills.redo", ignore_result=True)
def redo(schema_name: str, request_id: int) -> int | None:
    """A rejection with instructions re-runs the skill that proposed the request."""
    from skills.services.redo import redo_start

    run = redo_start(request_id=request_id)
    return run.pk if run is not None else None
