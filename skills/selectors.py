"""Reads over skill runs for the admin, the API and the dashboards."""

from __future__ import annotations

from typing import Any

from skills.models import SkillRun


def latest_evaluation(run: SkillRun) -> Any:
    """The run's last evaluation (after any refinement), or None."""
    from evaluation.models import Evaluation

    return Evaluation.objects.filter(run=run).order_by("-created_at", "-pk").first()
