"""The sending policy at execution: counted atomically, over-limit sends deferred, never early."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction

from approvals.models import ActionRequest, Approval, Status
from approvals.services import action_approve, action_execute, requests_release_deferred
from approvals.tests.factories import email_payload, propose_email, set_phase
from connectors.models import SendCounter
from connectors.sending import reserve_send, send_slot_release, send_slot_reserve
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
    from approvals.services import common, decisions, execution, proposal, sweeps

    requeued = []
    for module in (common, decisions, execution, proposal, sweeps):  # each imported it by name
        monkeypatch.setattr(module, "_schedule_execution", lambda request, eta=None: requeued.append(eta))
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


# --- the slot reserved before approved → executing ---------------------------------------------

DELAY = timedelta(seconds=30)


@pytest.fixture
def in_tenant(db, alpha):
    connection.set_tenant(alpha)
    yield alpha
    connection.set_schema_to_public()


def _slot(recipient, now, held=None):
    """The moment send_slot_reserve gives the send (None: now)."""
    deferral = send_slot_reserve(recipient, now, held=held)
    return deferral.not_before if deferral else None


def _pacing_last() -> datetime | None:
    return SendCounter.objects.get(scope="pacing").last_sent_at


def _reservations() -> list[tuple[str, datetime, int]]:
    return list(
        SendCounter.objects.filter(scope="reserved")
        .order_by("window_start")
        .values_list("domain", "window_start", "count")
    )


def test_each_send_gets_its_own_slot_and_goes_at_it_without_a_second_deferral(in_tenant):
    # given a 30 s minimum delay and three sends proposed at the same moment
    _policy(min_delay_seconds=30)
    recipients = ["a@one.example", "b@two.example", "c@three.example"]

    # when each reserves its slot
    slots = [_slot(to, NOON) for to in recipients]

    # then the first goes now and the k-th at now + k·delay
    assert slots == [None, NOON + DELAY, NOON + 2 * DELAY]
    assert _pacing_last() == NOON + 2 * DELAY
    # and each is counted once, in the window of its slot
    assert SendCounter.objects.get(scope="hour").count == 3
    # when the deferred ones run again at their slot, holding it: they go, not queued again
    again = [_slot(to, slot, held=slot) for to, slot in zip(recipients[1:], slots[1:], strict=True)]
    assert again == [None, None]
    # and the executor, in the ledger transaction, takes each reservation without counting again
    for to, slot in zip(recipients, slots, strict=True):
        reserve_send(to, slot or NOON)  # no DeferExecution
    assert SendCounter.objects.get(scope="hour").count == 3
    assert _pacing_last() == NOON + 2 * DELAY
    assert _reservations() == []


def test_without_a_minimum_delay_the_reservation_is_counted_once(in_tenant):
    _policy()

    assert _slot("a@one.example", NOON) is None
    reserve_send("a@one.example", NOON)

    assert SendCounter.objects.get(scope="day").count == 1
    assert not SendCounter.objects.filter(scope="pacing").exists()
    assert _reservations() == []


def test_a_send_deferred_by_a_window_holds_no_pacing_slot(in_tenant):
    _policy(min_delay_seconds=30, per_domain_hourly_limit=1)

    first = _slot("a@same.example", NOON)
    second = _slot("b@same.example", NOON)  # its domain's hour is full
    third = _slot("c@other.example", NOON)

    assert first is None
    assert second == datetime.fromisoformat("2026-11-24T13:00:00+00:00")
    assert third == NOON + DELAY  # the slot the second did not keep
    assert SendCounter.objects.get(scope="hour").count == 2
    reserved = [(to, at) for to, at, _ in _reservations()]
    assert reserved == [("a@same.example", NOON), ("c@other.example", third)]
    # at 13:00 the second reserves afresh, in the new hour, and goes at once
    assert _slot("b@same.example", second, held=second) is None
    assert SendCounter.objects.get(scope="hour", window_start=second).count == 1


def test_a_slot_in_the_next_hour_counts_in_that_hour(in_tenant):
    _policy(min_delay_seconds=600, hourly_limit=1, per_domain_hourly_limit=1)
    ten_to_one = datetime.fromisoformat("2026-11-24T12:50:00+00:00")

    assert _slot("a@one.example", ten_to_one) is None
    one = _slot("b@two.example", ten_to_one)
    third = _slot("c@three.example", ten_to_one)

    assert one == datetime.fromisoformat("2026-11-24T13:00:00+00:00")
    assert third == datetime.fromisoformat("2026-11-24T14:00:00+00:00")  # both hours full
    assert _pacing_last() == one
    assert dict(SendCounter.objects.filter(scope="hour").values_list("window_start", "count")) == {
        ten_to_one.replace(minute=0): 1,
        one: 1,
    }


def test_a_late_send_is_counted_in_the_window_it_goes_in(in_tenant):
    _policy(min_delay_seconds=30)
    late = NOON + timedelta(hours=1)

    _slot("a@one.example", NOON)
    reserve_send("a@one.example", late)  # the worker was busy: it goes an hour later

    hours = dict(SendCounter.objects.filter(scope="hour").values_list("window_start", "count"))
    assert hours == {NOON.replace(minute=0): 0, late.replace(minute=0): 1}
    assert SendCounter.objects.get(scope="day").count == 1
    assert _reservations() == []


def test_a_released_reservation_gives_its_counts_back(in_tenant):
    _policy(min_delay_seconds=30)
    _slot("a@one.example", NOON)
    slot = _slot("b@two.example", NOON)

    assert send_slot_release("b@two.example", slot) is True  # e.g. cancelled at its slot
    assert send_slot_release("b@two.example", slot) is False  # nothing left to give back

    assert SendCounter.objects.get(scope="day").count == 1
    assert [to for to, _, _ in _reservations()] == ["a@one.example"]


def test_a_reservation_is_used_only_by_the_request_that_holds_it(in_tenant):
    # an earlier send to the same address reserved a slot and was cancelled without releasing it
    _policy(min_delay_seconds=30)
    _slot("x@first.example", NOON)
    orphan = _slot("same@two.example", NOON)

    # a new send to that address later does not go on the orphan's slot: it is paced
    later = NOON + timedelta(minutes=5)
    _slot("x@first.example", later)
    slot = _slot("same@two.example", later)
    assert slot == later + DELAY
    # its own slot, passed back when it runs again, lets it go; the orphan's would too, but no
    # request holds it any more
    assert _slot("same@two.example", slot, held=slot) is None
    assert orphan < later


# --- concurrent reservations: each its own connection and transaction -------------------------


@pytest.fixture
def worker_tenant(transactional_db):
    tenant = Tenant.objects.get(slug="worker")
    connection.set_tenant(tenant)
    # the shared worker tenant keeps rows between transactional tests: start from no sends
    SendCounter.objects.all().delete()
    return tenant


def _reserve_concurrently(tenant, recipients, now):
    barrier = threading.Barrier(len(recipients))
    slots, errors = {}, []

    def run(to):
        connection.set_tenant(tenant)
        barrier.wait()
        try:
            with transaction.atomic():
                slots[to] = _slot(to, now)
                time.sleep(0.01)  # hold the rows a moment, as the caller's transition does
        except Exception as exc:  # noqa: BLE001 - a thread that dies silently would hide the failure
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(to,)) for to in recipients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    connection.set_tenant(tenant)
    assert errors == []
    assert len(slots) == len(recipients)
    return slots


def test_concurrent_reservations_get_distinct_slots_spaced_by_the_delay(worker_tenant):
    _policy(min_delay_seconds=30)
    recipients = [f"c{i}@conc{i}.example" for i in range(8)]

    slots = _reserve_concurrently(worker_tenant, recipients, NOON)

    moments = sorted(slot or NOON for slot in slots.values())
    assert moments == [NOON + k * DELAY for k in range(8)]
    assert list(slots.values()).count(None) == 1  # only one goes at once
    assert SendCounter.objects.get(scope="hour").count == 8
    # each goes at its slot: not deferred a second time, not counted again
    for to, slot in slots.items():
        with transaction.atomic():
            if slot is not None:
                assert _slot(to, slot, held=slot) is None
            reserve_send(to, slot or NOON)
    assert SendCounter.objects.get(scope="hour").count == 8
    assert _pacing_last() == NOON + 7 * DELAY
    assert _reservations() == []


def test_concurrent_reservations_never_overshoot_a_limit(worker_tenant):
    _policy(min_delay_seconds=60, hourly_limit=5, per_domain_hourly_limit=5)
    recipients = [f"l{i}@limit{i}.example" for i in range(12)]

    slots = _reserve_concurrently(worker_tenant, recipients, NOON)

    next_hour = datetime.fromisoformat("2026-11-24T13:00:00+00:00")
    paced = sorted(slot or NOON for slot in slots.values() if slot != next_hour)
    assert paced == [NOON + timedelta(minutes=k) for k in range(5)]
    assert list(slots.values()).count(next_hour) == 7  # deferred to the next hour, not dropped
    assert SendCounter.objects.get(scope="hour").count == 5
    assert _pacing_last() == NOON + timedelta(minutes=4)  # the deferred ones hold no slot
    assert len(_reservations()) == 5


def test_a_deferral_says_why(in_tenant):
    _policy(min_delay_seconds=30, daily_limit=1, hourly_limit=1, per_domain_hourly_limit=1)

    assert send_slot_reserve("a@one.example", NOON) is None
    full = send_slot_reserve("b@two.example", NOON)

    assert full == (datetime.fromisoformat("2026-11-25T00:00:00+00:00"), full.reason)
    assert "daily limit of 1 is reached" in full.reason
    _policy(min_delay_seconds=30)
    paced = send_slot_reserve("b@two.example", NOON)
    assert paced.reason == "Sending policy: at least 30 s between sends."
