"""Redo on rejection: the AE's instructions re-run the skill that proposed the request; the new
actions link to the rejected one (``redo_of``) so the queue shows what changed."""

from __future__ import annotations

import logging

from approvals.models import ActionRequest, Status
from skills import registry
from skills.errors import SkillError
from skills.models import SkillRun, Trigger

logger = logging.getLogger(__name__)


def redo_start(*, request_id: int) -> SkillRun | None:
    """Start the redo run of a rejected request with redo instructions; None when there is
    nothing to redo (no instructions, not proposed by a skill, skill gone)."""
    from skills.services.runner import skill_run_start

    request = ActionRequest.objects.select_related("skill_run").filter(pk=request_id).first()
    if request is None or request.status != Status.REJECTED or not request.redo_instructions:
        return None
    parent = request.skill_run
    if parent is None:
        return None
    try:
        spec = registry.get(parent.skill)
    except SkillError:
        return None
    inputs = parent.inputs
    narrow = getattr(spec, "redo_inputs", None)
    if callable(narrow):
        inputs = narrow(parent.inputs, request)
    try:
        return skill_run_start(
            skill=parent.skill,
            inputs=inputs,
            execution_mode=parent.execution_mode,
            idempotency_key=f"redo:{request.pk}",
            trigger=Trigger.REDO,
            parent=parent,
            redo_of_request=request,
            instructions=request.redo_instructions,
        )
    except SkillError as exc:
        logger.warning("redo of request %s not started: %s", request.pk, exc)
        return None
