"""Skill runs on a real Celery worker: started after commit, run by the worker inside the tenant's
schema, ended in a final status with the SLA limits the task was sent with."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from approvals.models import ActionRequest
from approvals.tests.factories import set_phase
from skills.models import RunStatus, SkillRun
from skills.services.runner import skill_run_start
from tenants.models import Tenant
from tenants.roles import Role

pytestmark = pytest.mark.worker


def _wait(predicate, timeout=40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_started_run_is_run_by_the_worker_and_proposes_into_the_queue(
    transactional_db, make_user, echo_skill, celery_worker
):
    tenant = Tenant.objects.get(slug="worker")
    revops = make_user(tenant, Role.REVOPS, email="skills-worker@worker.test")
    connection.set_tenant(tenant)
    set_phase("assisted")

    run = skill_run_start(
        skill="test-echo", inputs={"recipients": ["lee@prospect.example"]}, acting_user=revops
    )

    assert _wait(lambda: SkillRun.objects.get(pk=run.pk).status not in (RunStatus.QUEUED, RunStatus.RUNNING))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert ActionRequest.objects.filter(skill_run=run).count() == 1
