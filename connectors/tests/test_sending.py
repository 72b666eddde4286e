"""The sending policy at execution: counted atomically, over-limit sends deferred, never early."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from approvals.models import ActionRequest, Approval, Status
from approvals.services import action_approve, action_execute, requests_release_deferred
from approvals.tests.factories import email_payload, propose_email, set_phase
from connectors.models import SendCounter
from tenants.models import Tenant
from tenants.policy.models import SendingPolicy
from tenants.roles import Role

NOON = datetime.fromisoformat("2026-11-24T12:10:00+00:00")


def _policy(**limits):
    values = {
        "monthly_limit": 1000,
        "daily_limit": 100,
        "hourly_limit": 50,
        "per_domain_hourly_limit": 50,
        "min_delay_seconds": 0,
        **limits,
    }
    SendingPolicy.objects.update_or_create(pk=1, defaults=values)


@pytest.fixture
def ae(db, alpha, make_user):
    user = make_user(alpha, Role.AE)
    connection.set_tenant(alpha)
    set_phase("assisted")
    yield user
    connection.set_schema_to_public()


def _send(ae, to):
    request = propose_email(payload=email_payload(to=to))
    action_approve(request_id=request.pk, acting_user=ae)
    return request, action_execute(request.pk)


@time_machine.travel(NOON, tick=False)
def test_over_the_daily_limit_is_deferred_to_the_next_day_not_dropped(ae):
    _policy(daily_limit=2, hourly_limit=2, per_domain_hourly_limit=2)

    outcomes = [_send(ae, f"p{i}@d{i}.example")[1] for i in range(3)]

    assert outcomes == [Status.EXECUTED, Status.EXECUTED, "deferred"]
    deferred = ActionRequest.objects.order_by("-pk").first()
    assert deferred.status == Status.APPROVED
    assert deferred.not_before == datetime.fromisoformat("2026-11-25T00:00:00+00:00")
    assert "daily limit of 2 is reached" in deferred.events.last().comment
    assert len(mail.outbox) == 2


@time_machine.travel(NOON, tick=False)
def test_per_domain_hourly_limit_defers_only_that_domain(ae):
    _policy(per_domain_hourly_limit=1)

    first = _send(ae, "a@same.example")[1]
    second, outcome = _send(ae, "b@same.example")
    other = _send(ae, "c@other.example")[1]

    assert (first, outcome, other) == (Status.EXECUTED, "deferred", Status.EXECUTED)
    second.refresh_from_db()
    assert second.not_before == datetime.fromisoformat("2026-11-24T13:00:00+00:00")


def test_minimum_delay_defers_and_the_send_is_never_early(ae):
    _policy(min_delay_seconds=120)
    with time_machine.travel(NOON, tick=False):
        assert _send(ae, "one@x.example")[1] == Status.EXECUTED
        request, outcome = _send(ae, "two@y.example")
    assert outcome == "deferred"
    request.refresh_from_db()
    assert request.not_before == NOON + timedelta(seconds=120)

    with time_machine.travel(NOON + timedelta(seconds=119), tick=False):
        assert action_execute(request.pk) == "deferred"  # an early delivery does nothing
        assert requests_release_deferred() == 0
    with time_machine.travel(NOON + timedelta(seconds=121), tick=False):
        assert requests_release_deferred() == 1
        assert action_execute(request.pk) == Status.EXECUTED
    assert len(mail.outbox) == 2


@time_machine.travel(NOON, tick=False)
def test_a_repeat_of_a_sent_email_is_not_counted_twice(ae):
    _policy()
    request, _ = _send(ae, "once@x.example")
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING)

    action_execute(request.pk)

    assert SendCounter.objects.get(scope="day").count == 1


@pytest.mark.worker
@time_machine.travel(NOON, tick=True)  # one hour window for the whole test, whenever it runs
def test_concurrent_sends_never_exceed_the_hourly_limit(transactional_db, make_user, monkeypatch):
    # Deferred sends are re-queued with an ETA; the session's Celery worker (started by an earlier
    # test) would run them in the middle of this one. Record the re-queueing instead.
    from approvals import services as approval_services

    requeued = []
    monkeypatch.setattr(
        approval_services, "_schedule_execution", lambda request, eta=None: requeued.append(eta)
    )
    tenant = Tenant.objects.get(slug="worker")
    approver = make_user(tenant, Role.AE, email="limit-approver@worker.test")
    connection.set_tenant(tenant)
    # the shared worker tenant keeps rows between transactional tests: start from no sends
    SendCounter.objects.all().delete()
    set_phase("assisted")
    _policy(hourly_limit=5, per_domain_hourly_limit=5)
    ids = []
    for i in range(12):
        request = propose_email(payload=email_payload(to=f"c{i}@concurrent{i}.example"), key=f"conc-{i}")
        ActionRequest.objects.filter(pk=request.pk).update(status=Status.APPROVED)
        Approval.objects.create(request=request, approver=approver)
        ids.append(request.pk)
    barrier = threading.Barrier(4)
    chunks = [ids[i::4] for i in range(4)]

    errors = []

    def run(chunk):
        connection.set_tenant(tenant)
        barrier.wait()
        try:
            for request_id in chunk:
                action_execute(request_id)
        except Exception as exc:  # noqa: BLE001 - a thread that dies silently would hide the failure
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    connection.set_tenant(tenant)
    assert errors == []
    statuses = list(ActionRequest.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses.count(Status.EXECUTED) == 5
    assert statuses.count(Status.APPROVED) == 7  # deferred, not dropped
    assert requeued == [NOON.replace(minute=0, second=0) + timedelta(hours=1)] * 7  # to the next hour
    assert SendCounter.objects.get(scope="hour").count == 5
