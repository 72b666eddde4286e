"""An unsubscribe racing an approved send: the send is cancelled, or it left before the
suppression was recorded. Never after. Real threads, real PostgreSQL, many rounds."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from approvals.models import ActionRequest, Approval, Status
from approvals.tests.factories import email_payload, propose_email, set_phase
from connectors.ledger import action_key
from connectors.models import CallLedger, Suppression
from connectors.services import suppression_add
from tenants.models import Tenant
from tenants.policy.models import SendingPolicy
from tenants.roles import Role

ROUNDS = 30


@pytest.fixture
def worker_tenant(transactional_db, make_user):
    tenant = Tenant.objects.get(slug="worker")
    approver = make_user(tenant, Role.AE, email="race-approver@worker.test")
    connection.set_tenant(tenant)
    set_phase("assisted")
    # this test is about suppression; the sending limits have their own tests
    SendingPolicy.objects.update_or_create(
        pk=1,
        defaults={
            "monthly_limit": 100000,
            "daily_limit": 10000,
            "hourly_limit": 1000,
            "per_domain_hourly_limit": 1000,
            "min_delay_seconds": 0,
        },
    )
    return tenant, approver


def test_unsubscribe_racing_an_approved_send(worker_tenant):
    tenant, approver = worker_tenant
    outcomes = {"cancelled": 0, "sent_before": 0}
    acknowledged: dict[str, datetime] = {}

    for round_no in range(ROUNDS):
        address = f"race{round_no}@prospect.example"
        request = propose_email(payload=email_payload(to=address), key=f"race-send-{round_no}")
        ActionRequest.objects.filter(pk=request.pk).update(status=Status.APPROVED)
        Approval.objects.create(request=request, approver=approver)
        barrier = threading.Barrier(2)

        def send(request_id=request.pk, barrier=barrier):
            from approvals.services import action_execute

            connection.set_tenant(tenant)
            barrier.wait()
            try:
                action_execute(request_id)
            finally:
                connection.close()

        def unsubscribe(email=address, lag=(round_no % 4) * 0.015, barrier=barrier):
            connection.set_tenant(tenant)
            barrier.wait()
            time.sleep(lag)  # staggered, so both orders of the race happen across rounds
            try:
                suppression_add(email=email, reason="unsubscribed", source="instantly")
                acknowledged[email] = timezone.now()  # when the webhook would answer 200
            finally:
                connection.close()

        threads = [threading.Thread(target=send), threading.Thread(target=unsubscribe)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        connection.set_tenant(tenant)
        request.refresh_from_db()
        sent = [m for m in mail.outbox if address in m.to[0]]
        assert Suppression.objects.filter(email=address).exists()
        if request.status == Status.CANCELLED:
            assert sent == [], f"round {round_no}: cancelled but sent"
            outcomes["cancelled"] += 1
        else:
            assert request.status == Status.EXECUTED, f"round {round_no}: {request.status}"
            assert len(sent) == 1
            ledger = CallLedger.objects.get(idempotency_key=action_key(request.idempotency_key))
            assert ledger.finished_at <= acknowledged[address], (
                f"round {round_no}: sent after the unsubscribe"
            )
            outcomes["sent_before"] += 1

    assert sum(outcomes.values()) == ROUNDS
