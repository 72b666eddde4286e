"""Suppression pushes that survive a broker outage and an unknown outcome at the vendor.

A push whose answer never came is reconciled by reading Instantly's block list (re-added only if
absent) and retried by its task until it holds; a push never enqueued (broker down at commit) is
found by the sweep; the request that suppressed answers at once whatever the broker does.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from unittest import mock

import httpx
import pytest
import respx
import time_machine
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError

from connectors.http import reset_circuit_breakers
from connectors.ledger import push_key
from connectors.models import CallLedger, CallStatus, Credential, Suppression, WebhookEndpoint
from connectors.services import suppression_add
from mh1.celery import app

pytestmark = pytest.mark.django_db

INSTANTLY = "https://instantly.test"
HUBSPOT = "https://hubspot.test"
BLOCK = "/api/v2/block-lists-entries"
CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def tenant(alpha):
    reset_circuit_breakers()
    connection.set_tenant(alpha)
    yield alpha
    connection.set_schema_to_public()
    reset_circuit_breakers()


@pytest.fixture
def instantly(tenant):
    Credential.objects.create(
        system="instantly", base_url=INSTANTLY, secret={"token": "t"}, timeout_seconds=1
    )
    with respx.mock(base_url=INSTANTLY, assert_all_called=False) as mock_:
        yield mock_


@pytest.fixture
def broker_down():
    """The Celery app's broker points at a closed port, as during a Redis outage."""
    saved = app.conf.broker_url
    app.conf.broker_url = app.conf.broker_write_url = CLOSED_PORT_BROKER
    _fresh_broker_pools()
    yield
    # broker_write_url back to unset (it then follows broker_url): restoring the value it read
    # would pin the write URL, and a later test pointing broker_url elsewhere would still publish here
    app.conf.broker_url, app.conf.broker_write_url = saved, None
    _fresh_broker_pools()


def _fresh_broker_pools() -> None:
    # the app's pooled connections and producers still point at the previous broker URL
    app._pool = None
    app.amqp._producer_pool = None


def _suppressed(
    email: str = "gone@prospect.example", *, age: timedelta = timedelta(0), **fields
) -> Suppression:
    entry = Suppression.objects.create(
        email=email, reason="unsubscribed", source=fields.pop("source", "admin")
    )
    if age:
        Suppression.objects.filter(pk=entry.pk).update(created_at=timezone.now() - age)
    return entry


def _block_list(*values: str) -> httpx.Response:
    return httpx.Response(200, json={"items": [{"id": f"b{i}", "bl_value": v} for i, v in enumerate(values)]})


# --- case 2: a block-list push whose outcome is unknown is reconciled, and retried until it holds -


def _run_push_task(entry: Suppression, tenant) -> object:
    from connectors.tasks import push_suppression_task

    # apply(): the task's own autoretry runs its retries inline (eagerly)
    with mock.patch("time.sleep"):
        return push_suppression_task.apply(args=(tenant.schema_name, entry.pk))


def test_block_list_push_timing_out_after_instantly_applied_it_is_reconciled_without_a_second_add(
    tenant, instantly
):
    # given: Instantly applies the entry but its answer never arrives
    post = instantly.post(BLOCK).mock(side_effect=httpx.ReadTimeout("no answer"))
    read = instantly.get(BLOCK).mock(return_value=_block_list("gone@prospect.example"))
    entry = _suppressed()

    # when
    result = _run_push_task(entry, tenant)

    # then: one add, one read that found it; the push holds
    assert result.successful(), result.traceback
    assert post.call_count == 1 and read.call_count == 1
    assert read.calls.last.request.url.params["search"] == "gone@prospect.example"
    ledger = CallLedger.objects.get(idempotency_key=push_key("instantly", "gone@prospect.example"))
    assert ledger.status == CallStatus.SUCCEEDED and ledger.response["reconciled"] is True
    entry.refresh_from_db()
    assert "instantly" in entry.pushed_to


def test_block_list_push_lost_on_the_way_is_re_added_once_after_reading_it_is_absent(tenant, instantly):
    post = instantly.post(BLOCK).mock(
        side_effect=[httpx.ReadTimeout("no answer"), httpx.Response(200, json={"id": "b9"})]
    )
    read = instantly.get(BLOCK).mock(return_value=_block_list("someone-else@prospect.example"))
    entry = _suppressed()

    result = _run_push_task(entry, tenant)

    assert result.successful(), result.traceback
    assert post.call_count == 2 and read.call_count == 1
    ledger = CallLedger.objects.get(idempotency_key=push_key("instantly", "gone@prospect.example"))
    assert ledger.status == CallStatus.SUCCEEDED
    entry.refresh_from_db()
    assert "instantly" in entry.pushed_to


def test_reconcile_that_cannot_read_leaves_the_push_unknown_and_sends_nothing(tenant, instantly):
    from connectors.errors import ConnectorError
    from connectors.ledger import call_once

    instantly.get(BLOCK).respond(403, json={"message": "no scope"})
    key = push_key("instantly", "gone@prospect.example")
    CallLedger.objects.create(
        idempotency_key=key, system="instantly", operation="block_list_add", request={}, status="unknown"
    )
    sent = []

    with pytest.raises(ConnectorError):
        call_once(
            key, "instantly", "block_list_add", {}, lambda: sent.append(1) or {}, reconcile=_read_block_list
        )

    assert sent == []
    assert CallLedger.objects.get(idempotency_key=key).status == CallStatus.UNKNOWN


def _read_block_list():
    from connectors import clients

    with clients.read_client("instantly") as reader:
        reader.list_block_list(search="gone@prospect.example")
    return None


# --- case 3: the enqueue after commit never fails the request; the sweep pushes what was lost -----


def test_suppression_with_the_broker_down_commits_and_logs_instead_of_raising(
    tenant, django_capture_on_commit_callbacks, caplog
):
    from connectors.tasks import push_suppression_task

    caplog.set_level(logging.WARNING)
    with (
        mock.patch.object(
            push_suppression_task, "apply_async", side_effect=OperationalError("redis down")
        ) as down,
        django_capture_on_commit_callbacks(execute=True),
    ):
        entry, _ = suppression_add(email="gone@prospect.example", reason="unsubscribed", source="admin")

    assert down.call_count == 1
    assert Suppression.objects.filter(pk=entry.pk, pushed_to={}).exists()
    assert any("could not enqueue" in record.getMessage() for record in caplog.records)


def test_a_failing_push_enqueue_does_not_drop_later_on_commit_hooks(
    tenant, django_capture_on_commit_callbacks
):
    from django.db import transaction

    from connectors.tasks import push_suppression_task

    later = []
    with (
        mock.patch.object(push_suppression_task, "apply_async", side_effect=RuntimeError("unexpected")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        suppression_add(email="gone@prospect.example", reason="unsubscribed", source="admin")
        transaction.on_commit(lambda: later.append("ran"))

    assert later == ["ran"]


def test_the_enqueue_with_the_broker_on_a_closed_port_gives_up_at_once(
    tenant, broker_down, django_capture_on_commit_callbacks
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        suppression_add(email="gone@prospect.example", reason="unsubscribed", source="admin")
    elapsed = time.monotonic() - started

    assert elapsed < 3, f"the enqueue held the request for {elapsed:.1f}s"
    assert Suppression.objects.filter(email="gone@prospect.example").exists()


def test_unsubscribe_webhook_answers_at_once_with_the_broker_down(
    tenant, alpha, client_for, broker_down, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpoint.objects.create(system="instantly")
    client = client_for(alpha)
    body = {"event_type": "lead_unsubscribed", "lead_email": "gone@prospect.example", "email_id": "e-1"}

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/webhooks/instantly/",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_X_MH1_WEBHOOK_SECRET=endpoint.secret,
        )
    elapsed = time.monotonic() - started
    connection.set_tenant(alpha)

    assert response.status_code < 300, response.content
    assert elapsed < 3, f"the webhook answered after {elapsed:.1f}s"
    assert Suppression.objects.filter(email="gone@prospect.example").exists()


def test_the_sweep_pushes_suppressions_never_pushed_and_only_once(tenant, instantly):
    from connectors.tasks import push_pending_suppressions

    post = instantly.post(BLOCK).respond(200, json={"id": "b1"})
    lost = _suppressed("lost@prospect.example", age=timedelta(hours=2))
    _suppressed("fresh@prospect.example")  # its own push task is still on its way
    _suppressed("from-instantly@prospect.example", age=timedelta(hours=2), source="instantly")
    done = _suppressed("done@prospect.example", age=timedelta(hours=2))
    Suppression.objects.filter(pk=done.pk).update(pushed_to={"instantly": timezone.now().isoformat()})

    first = push_pending_suppressions.apply(args=(tenant.schema_name,)).get()
    second = push_pending_suppressions.apply(args=(tenant.schema_name,)).get()

    assert [json.loads(call.request.content)["bl_value"] for call in post.calls] == ["lost@prospect.example"]
    assert first["pushed"] == 1 and second["pushed"] == 0
    lost.refresh_from_db()
    assert "instantly" in lost.pushed_to


def test_the_sweep_checks_a_crm_without_the_contact_once(tenant, instantly):
    from connectors.tasks import push_pending_suppressions

    Credential.objects.create(system="hubspot", base_url=HUBSPOT, secret={"token": "t"}, timeout_seconds=1)
    instantly.post(BLOCK).respond(200, json={"id": "b1"})
    with respx.mock(base_url=HUBSPOT, assert_all_called=False) as hubspot:
        lookup = hubspot.get(url__regex=r"/crm/v3/objects/contacts/.*").respond(404)
        _suppressed("nobody@prospect.example", age=timedelta(hours=2))

        push_pending_suppressions.apply(args=(tenant.schema_name,)).get()
        push_pending_suppressions.apply(args=(tenant.schema_name,)).get()

    assert lookup.call_count == 1  # no contact to tag: recorded, not looked up every sweep


def test_the_sweep_leaves_the_rest_for_later_when_the_vendor_is_down(tenant, instantly):
    from connectors.tasks import push_pending_suppressions

    post = instantly.post(BLOCK).mock(side_effect=httpx.ConnectError("down"))
    for index in range(3):
        _suppressed(f"p{index}@prospect.example", age=timedelta(hours=2))

    with mock.patch("time.sleep"):
        result = push_pending_suppressions.apply(args=(tenant.schema_name,)).get()

    assert result["pushed"] == 0 and result["failed"] >= 1
    assert post.call_count <= 4 * 5  # the circuit opens: not every entry is hammered
    assert all(not entry.pushed_to for entry in Suppression.objects.all())


def test_the_sweep_has_one_beat_entry_fanned_out_to_every_tenant():
    from connectors.tasks import push_pending_suppressions
    from tenants.schedules import DEFAULT_SCHEDULE

    entries = [args for task, args, _ in DEFAULT_SCHEDULE.values() if task == "platform.dispatch_to_tenants"]
    assert [push_pending_suppressions.name] in entries
    assert app.tasks.get(push_pending_suppressions.name) is not None  # what dispatch_to_tenants looks up


def test_a_sweep_run_long_after_an_outage_pushes_what_was_never_enqueued(
    tenant, instantly, django_capture_on_commit_callbacks
):
    from connectors.tasks import push_pending_suppressions, push_suppression_task

    post = instantly.post(BLOCK).respond(200, json={"id": "b1"})
    with (
        mock.patch.object(push_suppression_task, "apply_async", side_effect=OperationalError("redis down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        entry, _ = suppression_add(email="gone@prospect.example", reason="unsubscribed", source="admin")
    assert post.call_count == 0

    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        push_pending_suppressions.apply(args=(tenant.schema_name,)).get()

    assert post.call_count == 1
    entry.refresh_from_db()
    assert "instantly" in entry.pushed_to
