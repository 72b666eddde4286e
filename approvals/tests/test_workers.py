"""Exactly once with real workers: racing approvers, retried tasks, a worker killed mid-effect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from approvals.errors import IllegalTransition
from approvals.models import ActionRequest, Approval, Event, ExecutedEffect, Status
from approvals.services import action_approve, action_propose
from approvals.tasks import execute_action
from approvals.tests.factories import propose_email, set_phase
from tenants.models import Tenant
from tenants.roles import Role

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[2]


def _wait(predicate, timeout=40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def in_worker_tenant(transactional_db, make_user):
    tenant = Tenant.objects.get(slug="worker")
    users = [make_user(tenant, Role.AE, email=f"racer{i}@worker.test") for i in range(2)]
    connection.set_tenant(tenant)
    set_phase("assisted")
    return tenant, users


def test_two_approvers_at_the_same_moment_execute_once(in_worker_tenant, celery_worker):
    tenant, (first, second) = in_worker_tenant
    request = propose_email(key="race-1")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(user):
        connection.set_tenant(tenant)
        barrier.wait()
        try:
            action_approve(request_id=request.pk, acting_user=user)
            outcomes.append("approved")
        except IllegalTransition:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["approved", "refused"]
    assert _wait(lambda: ActionRequest.objects.get(pk=request.pk).status == Status.EXECUTED)
    # a retried or duplicated task afterwards changes nothing
    assert execute_action.delay(tenant.schema_name, request.pk).get(timeout=30) == Status.EXECUTED
    assert ExecutedEffect.objects.filter(idempotency_key="race-1").count() == 1
    assert Event.objects.filter(request=request, verb="executing").count() == 1


def _worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mh1",
            "worker",
            "-Q",
            "crashtest",
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--include",
            "approvals.tests.slow_executor",
            "-l",
            "WARNING",
            "-n",
            f"crash-{time.monotonic_ns()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )


def test_worker_killed_mid_effect_is_redelivered_and_executes_once(in_worker_tenant, tmp_path):
    tenant, (approver, _) = in_worker_tenant
    request = action_propose(
        kind="campaign.pause",
        payload={"system": "instantly", "campaign_id": "cmp-1", "reason": "bounce spike"},
        idempotency_key="crash-1",
    )
    # approved without scheduling: only the crash-test worker may take this task
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.APPROVED)
    Approval.objects.create(request=request, approver=approver)
    db = connection.settings_dict
    marker = tmp_path / "marker"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_VISIBILITY_TIMEOUT": "2",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        "MH1_CRASH_MARKER": str(marker),
    }
    execute_action.apply_async(args=(tenant.schema_name, request.pk), queue="crashtest")

    first = _worker(env)
    try:
        assert _wait(marker.exists, timeout=60), "the first worker never reached the effect"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)

    request.refresh_from_db()
    assert request.status == Status.EXECUTING
    assert ExecutedEffect.objects.filter(idempotency_key="crash-1").count() == 1

    second = _worker(env)
    try:
        assert _wait(lambda: ActionRequest.objects.get(pk=request.pk).status == Status.EXECUTED, timeout=60)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=20)

    assert ExecutedEffect.objects.filter(idempotency_key="crash-1").count() == 1
    assert Event.objects.filter(request=request, verb="execution_resumed").exists()
