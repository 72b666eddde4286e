"""Evaluation tasks: re-evaluate a person's edit of a proposed action before it is approved."""

from __future__ import annotations

from mh1.tenancy import tenant_task


@tenant_task(name="evaluation.evaluate_edit", acks_late=True, ignore_result=True)
def evaluate_edit(schema_name: str, request_id: int) -> int | None:
    """Evaluate the request's current payload against the evaluation of the run that proposed it.
    A redelivery finds the evaluation of the same payload and does nothing twice."""
    from evaluation.services import edit_evaluate_latest

    evaluation = edit_evaluate_latest(request_id=request_id)
    return evaluation.pk if evaluation is not None else None
