"""A real Celery worker runs tenant tasks inside the right schema; fan-out skips inactive tenants."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tenants.policy.models import Heartbeat
from tenants.policy.tasks import heartbeat
from tenants.tasks import dispatch_to_tenants

pytestmark = pytest.mark.worker

TIMEOUT = 30


def _count(schema: str, **filters) -> int:
    with schema_context(schema):
        count = Heartbeat.objects.filter(**filters).count()
    connection.set_schema_to_public()
    return count


def _wait_for(predicate, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_worker_runs_tenant_task_inside_its_schema(celery_worker):
    result = heartbeat.delay("bravo")
    pk = result.get(timeout=TIMEOUT)

    assert _count("bravo", pk=pk, task_id=result.id) == 1
    assert _count("alpha", task_id=result.id) == 0


def test_beat_fan_out_reaches_every_active_tenant_and_skips_inactive(celery_worker):
    before = {schema: _count(schema) for schema in ("alpha", "bravo", "worker", "dormant")}

    reached = dispatch_to_tenants.delay("policy.heartbeat").get(timeout=TIMEOUT)

    assert {"alpha", "bravo", "worker"} <= set(reached)
    assert "dormant" not in reached and "public" not in reached
    assert _wait_for(lambda: all(_count(s) > before[s] for s in ("alpha", "bravo", "worker")))
    assert _count("dormant") == before["dormant"]


@pytest.mark.parametrize("schema", ["ghost", "dormant", "public", None])
def test_task_for_missing_or_inactive_tenant_is_dropped(schema, celery_worker):
    before = _count("dormant")

    outcome = heartbeat.delay(schema).get(timeout=TIMEOUT)

    assert outcome is None
    assert _count("dormant") == before
    # nothing ran in public: the heartbeat table does not even exist there
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.policy_heartbeat')")
        assert cursor.fetchone()[0] is None


def test_dispatch_of_unknown_task_enqueues_nothing(celery_worker):
    assert dispatch_to_tenants.delay("no.such.task").get(timeout=TIMEOUT) == []
