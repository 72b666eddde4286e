"""Schedules RevOps edits per tenant and skill; the sweep (one beat job fanned out per tenant)
starts the due ones. A due slot has one idempotency key, so a repeated sweep starts it once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from skills.errors import SkillError
from skills.models import Every, SkillSchedule, Trigger

logger = logging.getLogger(__name__)


def next_run_after(schedule: SkillSchedule, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (UTC)."""
    slot = after.astimezone(timezone.UTC).replace(second=0, microsecond=0)
    if schedule.every == Every.HOUR:
        slot = slot.replace(minute=schedule.at_minute)
        return slot if slot > after else slot + timedelta(hours=1)
    slot = slot.replace(hour=schedule.at_hour, minute=schedule.at_minute)
    if schedule.every == Every.DAY:
        return slot if slot > after else slot + timedelta(days=1)
    slot -= timedelta(days=slot.weekday())  # Monday
    return slot if slot > after else slot + timedelta(weeks=1)


def schedule_save(*, schedule: SkillSchedule, acting_user=None) -> SkillSchedule:
    """Validated by the model, next slot computed; the admin's save_model calls this."""
    schedule.full_clean()
    schedule.next_run_at = next_run_after(schedule, timezone.now()) if schedule.enabled else None
    schedule.save()
    return schedule


def schedules_start_due(*, now: datetime | None = None) -> int:
    """Start every enabled schedule whose slot has come; return how many runs started."""
    from skills.services.runner import skill_run_start

    now = now or timezone.now()
    started = 0
    due = SkillSchedule.objects.filter(enabled=True, next_run_at__lte=now).values_list("pk", flat=True)
    for schedule_id in list(due[:500]):
        with transaction.atomic():
            schedule = (
                SkillSchedule.objects.select_for_update(skip_locked=True).filter(pk=schedule_id).first()
            )
            if (
                schedule is None
                or not schedule.enabled
                or schedule.next_run_at is None
                or schedule.next_run_at > now
            ):
                continue
            slot = schedule.next_run_at
            try:
                skill_run_start(
                    skill=schedule.skill,
                    inputs=schedule.inputs,
                    execution_mode=schedule.execution_mode,
                    idempotency_key=f"schedule:{schedule.pk}:{slot.isoformat()}",
                    trigger=Trigger.SCHEDULE,
                    schedule=schedule,
                )
                started += 1
            except SkillError as exc:
                # a schedule whose skill or inputs no longer fit is skipped, not retried every minute
                logger.warning("schedule %s (%s) not started: %s", schedule.pk, schedule.skill, exc)
            schedule.last_run_at = now
            schedule.next_run_at = next_run_after(schedule, now)
            schedule.save(update_fields=["last_run_at", "next_run_at"])
    return started
