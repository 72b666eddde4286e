"""The fault suite (issue 9): approved sends and CRM writes executed by real worker subprocesses
through the loopback vendor sandbox while HTTP and SMTP faults are injected, a worker is SIGKILLed
mid-run, the broker's Redis restarts (empty) and recipients unsubscribe meanwhile.

Everything is asserted from the sandbox's own record (its SMTP log and its CRM request log and
records), not from our database alone:

- at most one effect per action, exactly one per executed action;
- no effect to an address after its suppression committed (the executor holds the recipient
  lock from its suppression check through the send, suppression_add takes the same lock);
- none stuck: every request ends executed, failed, cancelled, expired or unknown, with the
  approvals sweep driven from the test as beat would;
- an outcome that may have happened is shown as unknown: never executed without a delivery,
  never failed or cancelled when the sandbox recorded one.

The schedule is fixed: SMTP faults are bound to recipients, HTTP faults are fed one at a time in
a fixed order, the kill and the restart happen at fixed points of progress. Which action meets
an HTTP fault, and which actions the kill interrupts, depends on timing; the assertions do not.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from approvals.models import ActionRequest, Event, Status
from approvals.services import (
    STALE_APPROVED,
    action_approve,
    action_propose,
    requests_redispatch_stale,
    requests_release_deferred,
)
from approvals.tests.factories import email_payload, set_phase
from connectors.ledger import action_key
from connectors.models import CallLedger, CallStatus, Credential, Suppression
from connectors.sandbox import SandboxServer, SandboxSMTP
from connectors.services import suppression_add
from tenants.models import Tenant
from tenants.policy.models import QuotaPolicy, SendingPolicy
from tenants.roles import Role
from tests.faults_support import (
    GHL_UPSERT,
    HUBSPOT_CONTACTS,
    FaultFeeder,
    OwnRedis,
    Worker,
    applied_then_stalled,
    crm_contacts_by_email,
    crm_writes_by_email,
    deliveries_by_key,
    last_request_seq,
    last_smtp_seq,
    publishing_to,
    worker_env,
)
from tests.fixtures import session_workers_paused

pytestmark = pytest.mark.worker

TERMINAL = {Status.EXECUTED, Status.FAILED, Status.CANCELLED, Status.EXPIRED, Status.UNKNOWN}
EMAILS = 170
CRM = {"hubspot": 45, "gohighlevel": 45}
DOMAINS = 25
RUN_DEADLINE = 75.0  # seconds from the first approval until every request must be terminal

# SMTP faults by recipient index (each once, on that recipient's first transaction)
DROP_AFTER_DATA = (3, 31, 60, 89, 118, 147)
WITHHOLD_REPLY = (7, 48, 95, 140)
# the worker is SIGKILLed while it waits for the 250 of this recipient's message (delivered)
KILLED_MID_SEND = 5
REFUSE_TRANSIENT = (12, 40, 77, 104, 133, 161)
REFUSE_PERMANENT = (20, 99, 150)
FAIL_QUIT = (26, 55, 84, 113, 166)
# unsubscribes: before approval (the request is cancelled at once), and while the run goes on
SUPPRESSED_BEFORE = (1, 44, 70, 102, 125, 158)
SUPPRESSED_DURING = (15, 35, 50, 65, 80, 92, 110, 122, 137, 145, 155, 168)

HTTP_SCHEDULE = {
    ("POST", HUBSPOT_CONTACTS): [
        {"status": 429, "retry_after": 1},
        {"status": 500},
        {"mode": "timeout_after_apply", "delay": 1.5},
        {"status": 503},
        {"status": 502},
        {"mode": "timeout_after_apply", "delay": 1.5},
        {"status": 429, "retry_after": 1},
        {"status": 500},
        {"status": 503, "retry_after": 1},
        {"mode": "timeout_after_apply", "delay": 1.5},
        {"status": 504},
        {"status": 429, "retry_after": 1},
    ],
    ("PATCH", HUBSPOT_CONTACTS + "/"): [
        {"status": 429, "retry_after": 1},
        {"status": 500},
        {"status": 429, "retry_after": 1},
    ],
    ("POST", GHL_UPSERT): [
        {"status": 429, "retry_after": 1},
        {"mode": "timeout_after_apply", "delay": 1.5},
        {"status": 500},
        {"status": 503, "retry_after": 1},
        {"status": 502},
        {"mode": "timeout_after_apply", "delay": 1.5},
        {"status": 429, "retry_after": 1},
        {"status": 503},
        {"status": 500},
        {"mode": "timeout_after_apply", "delay": 1.5},
        {"status": 504},
        {"status": 429, "retry_after": 1},
    ],
}


def _recipient(i: int) -> str:
    return f"lead{i:03d}@d{i % DOMAINS:02d}.faults.example"


def _crm_email(system: str, i: int) -> str:
    return f"{system[:2]}{i:03d}@crm{i % 9}.faults.example"


def _smtp_faults(state) -> None:
    for i in DROP_AFTER_DATA:
        state.add_smtp_fault(kind="drop_after_data", recipient=_recipient(i), times=1)
    for i in WITHHOLD_REPLY:
        state.add_smtp_fault(kind="withhold_reply", recipient=_recipient(i), times=1, hold_seconds=3)
    state.add_smtp_fault(
        kind="withhold_reply", recipient=_recipient(KILLED_MID_SEND), times=1, hold_seconds=10
    )
    for i in REFUSE_TRANSIENT:
        state.add_smtp_fault(kind="refuse_before_data", recipient=_recipient(i), times=1, code=451)
    for i in REFUSE_PERMANENT:
        state.add_smtp_fault(kind="refuse_before_data", recipient=_recipient(i), times=1, code=550)
    for i in FAIL_QUIT:
        state.add_smtp_fault(kind="fail_quit", recipient=_recipient(i), times=1)


@pytest.fixture
def worker_tenant(transactional_db, make_user):
    tenant = Tenant.objects.get(slug="worker")
    approver = make_user(tenant, Role.AE, email="ae-faults@worker.test")
    # transactional: end inside the tenant, so the flush spares public's rows (pitfall 9)
    connection.set_tenant(tenant)
    return tenant, approver


@pytest.fixture
def vendors():
    with SandboxServer() as server:
        smtp = SandboxSMTP(port=0, state=server.state, report=lambda *a, **k: None).start()
        try:
            yield server, smtp
        finally:
            smtp.stop()


@pytest.fixture
def workers(worker_tenant):
    """The worker subprocesses the test starts; stopped before the flush of the tenant's tables."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def broker(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    try:
        # the session's in-process worker (if an earlier test started it) must not take this
        # run's tasks: it would execute them with the tests' settings, outside the fault schedule
        with session_workers_paused(), publishing_to(server.url):
            yield server
    finally:
        server.stop()


def _configure(sandbox) -> None:
    set_phase("assisted")
    # singletons: a flushed schema has no row yet, so get_solo() (not a bare update())
    policy = SendingPolicy.get_solo()
    policy.min_delay_seconds = 0
    policy.monthly_limit = policy.daily_limit = policy.hourly_limit = 1_000_000
    policy.per_domain_hourly_limit = 1_000_000
    policy.save()
    quota = QuotaPolicy.get_solo()
    quota.crm_requests_per_minute = 100_000
    quota.save()
    for system in ("hubspot", "gohighlevel", "instantly"):
        Credential.objects.update_or_create(
            system=system,
            defaults={
                "base_url": sandbox.url,
                "secret": {"token": "sandbox-token", "extra": {"location_id": "loc-1"}},
                "timeout_seconds": 1,
            },
        )


def _propose() -> tuple[dict[int, ActionRequest], dict[int, ActionRequest], dict[str, str]]:
    """Emails by recipient index, CRM writes by request id, and every request's kind of fault."""
    emails, crm = {}, {}
    for i in range(EMAILS):
        emails[i] = action_propose(
            kind="email.send",
            payload=email_payload(to=_recipient(i), to_name=f"Lead {i}", subject=f"Idea {i}"),
            idempotency_key=f"faults-mail-{i:03d}",
            skill_run="fault-suite",
        )
    for system, count in CRM.items():
        for i in range(count):
            properties = (
                {"firstname": f"F{i}", "lifecyclestage": "lead"}
                if system == "hubspot"
                else {"firstName": f"F{i}", "companyName": "Faults Inc"}
            )
            request = action_propose(
                kind="crm.upsert_contact",
                payload={"system": system, "email": _crm_email(system, i), "properties": properties},
                idempotency_key=f"faults-{system}-{i:03d}",
                skill_run="fault-suite",
            )
            crm[request.pk] = request
    return emails, crm


def test_effects_happen_once_through_vendor_faults_a_killed_worker_and_a_redis_restart(
    worker_tenant, vendors, broker, workers, tmp_path
):
    _, approver = worker_tenant
    sandbox, smtp = vendors
    state = sandbox.state
    buckets = [
        DROP_AFTER_DATA,
        WITHHOLD_REPLY,
        REFUSE_TRANSIENT,
        REFUSE_PERMANENT,
        FAIL_QUIT,
        SUPPRESSED_BEFORE,
        SUPPRESSED_DURING,
        (KILLED_MID_SEND,),
    ]
    assert sum(map(len, buckets)) == len(set().union(*buckets)), "each recipient has one role"

    # given: a tenant sending without pacing, one worker (for now) on a broker of the test's own
    _configure(sandbox)
    env = worker_env(broker.url, smtp.port)
    env["CONNECTOR_BASE_URL_ALLOWLIST"] = sandbox.url  # the workers run mh1.settings: allow the sandbox
    workers.append(Worker("w1", env, tmp_path))  # alone until it is killed: the kill hits its send
    emails, crm = _propose()
    _smtp_faults(state)
    feeder = FaultFeeder(state, HTTP_SCHEDULE)
    feeder.feed()
    suppressed_at: dict[str, int] = {}  # address -> last SMTP log seq when its suppression committed

    def at_commit(sender, instance, created, **kwargs) -> None:
        # the moment the entry commits (and the recipient lock is free): any delivery to the
        # address recorded after it started after the suppression
        address = instance.email
        transaction.on_commit(lambda: suppressed_at.setdefault(address, last_smtp_seq(state)))

    def suppress(i: int) -> None:
        post_save.connect(at_commit, sender=Suppression, weak=False, dispatch_uid="faults-suppressed-at")
        try:
            suppression_add(email=_recipient(i), reason="unsubscribed", source="instantly")
        finally:
            post_save.disconnect(sender=Suppression, dispatch_uid="faults-suppressed-at")
        assert _recipient(i) in suppressed_at

    for i in SUPPRESSED_BEFORE:
        suppress(i)

    approvable = [r.pk for i, r in emails.items() if i not in SUPPRESSED_BEFORE] + list(crm)
    random.Random(9).shuffle(approvable)
    approvable.remove(emails[KILLED_MID_SEND].pk)
    approvable.insert(20, emails[KILLED_MID_SEND].pk)
    third = len(approvable) // 3
    batches = [approvable[:third], approvable[third : 2 * third], approvable[2 * third :]]
    during = {emails[i].pk: i for i in SUPPRESSED_DURING}
    events: list[str] = []
    started = time.monotonic()
    last_sweep = 0.0

    def approve(batch: list[int]) -> None:
        for request_id in batch:
            action_approve(request_id=request_id, acting_user=approver)
        for request_id in batch:  # unsubscribes arrive right after their approval
            if request_id in during:
                suppress(during[request_id])

    def terminal() -> int:
        return ActionRequest.objects.filter(status__in=TERMINAL).count()

    def run_until(done, limit: float) -> bool:
        nonlocal last_sweep
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            feeder.feed()
            if time.monotonic() - last_sweep > 3:
                # beat: the approvals sweep, once a minute in production
                requests_release_deferred()
                requests_redispatch_stale()
                last_sweep = time.monotonic()
            if done():
                return True
            time.sleep(0.25)
        return False

    try:
        # when: the first third runs, and a worker is killed while it executes
        approve(batches[0])
        events.append(f"{time.monotonic() - started:5.1f}s approved batch 1 ({len(batches[0])})")
        killed_key = emails[KILLED_MID_SEND].idempotency_key
        deadline = time.monotonic() + 40
        while not deliveries_by_key(state).get(killed_key) and time.monotonic() < deadline:
            feeder.feed()
            time.sleep(0.05)
        if not deliveries_by_key(state).get(killed_key):
            killed = ActionRequest.objects.get(idempotency_key=killed_key)
            timeline = list(Event.objects.filter(request=killed).values_list("verb", "comment"))
            statuses = Counter(ActionRequest.objects.values_list("status", flat=True))
            pytest.fail(
                f"w1 never reached the send it is killed in: {killed.status} {killed.error!r} "
                f"{timeline} statuses {dict(statuses)} smtp {state.smtp_messages()[:3]}\n"
                + "\n".join(f"{w.name}: {w.tail(15)}" for w in workers)
            )
        # the message is delivered and w1 waits for the 250 (EMAIL_TIMEOUT 2 s): kill it now
        workers[0].kill()
        events.append(f"{time.monotonic() - started:5.1f}s SIGKILLed w1 mid-send ({terminal()} terminal)")
        workers.append(Worker("w2", env, tmp_path))
        run_until(lambda: terminal() >= len(SUPPRESSED_BEFORE) + 50, limit=30)

        # the second third; w2 (alone) is killed while the sandbox holds the answer to a CRM
        # write it already applied; then the broker's Redis restarts empty under a backlog
        approve(batches[1])
        events.append(f"{time.monotonic() - started:5.1f}s approved batch 2 ({len(batches[1])})")
        seen = last_request_seq(state)  # only a write stalled from now on is surely in flight
        deadline = time.monotonic() + 30
        while not (slow := applied_then_stalled(state, seen)) and time.monotonic() < deadline:
            feeder.feed()
            time.sleep(0.05)
        workers[1].kill()
        killed_write = slow[0] if slow else None
        events.append(
            f"{time.monotonic() - started:5.1f}s SIGKILLed w2 during {killed_write} ({terminal()} terminal)"
        )
        workers += [Worker("w3", env, tmp_path), Worker("w4", env, tmp_path)]
        run_until(lambda: terminal() >= len(SUPPRESSED_BEFORE) + len(batches[0]) + 20, limit=30)
        broker.restart()
        events.append(f"{time.monotonic() - started:5.1f}s restarted Redis ({terminal()} terminal)")

        # the last third after the restart, then run until nothing is left
        approve(batches[2])
        events.append(f"{time.monotonic() - started:5.1f}s approved batch 3 ({len(batches[2])})")
        total = ActionRequest.objects.count()
        progress = {"event": 0, "since": time.monotonic()}

        def all_terminal() -> bool:
            if total - terminal() == 0:
                return True
            # beat, later: what lost its task in the restart is due for the sweep only after
            # STALE_APPROVED; once nothing has happened for 3 s, sweep as beat would by then
            last = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            if last != progress["event"]:
                progress.update(event=last, since=time.monotonic())
            elif time.monotonic() - progress["since"] > 3:
                later = timezone.now() + STALE_APPROVED + timedelta(seconds=1)
                open_ = dict(ActionRequest.objects.exclude(status__in=TERMINAL).values_list("pk", "status"))
                swept = requests_redispatch_stale(now=later)
                events.append(
                    f"{time.monotonic() - started:5.1f}s sweep as of +5 min: {swept} re-enqueued of "
                    f"{dict(Counter(open_.values()))}" + (f" {sorted(open_)}" if len(open_) < 5 else "")
                )
                progress["since"] = time.monotonic()
            return False

        finished = run_until(all_terminal, limit=max(5.0, RUN_DEADLINE - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            worker.stop()  # before reading the record: nothing changes it any more

    # then: nothing is stuck
    requests = {r.pk: r for r in ActionRequest.objects.all()}
    stuck = {pk: r.status for pk, r in requests.items() if r.status not in TERMINAL}
    assert finished and not stuck, _report_stuck(stuck, workers, events)

    # the sandbox's record: one effect per executed action, none twice, none after a suppression
    delivered = deliveries_by_key(state)
    writes = crm_writes_by_email(state)
    contacts = crm_contacts_by_email(state)
    problems: list[str] = []
    ledger = dict(CallLedger.objects.values_list("idempotency_key", "status"))
    for request in requests.values():
        if request.kind == "email.send":
            effects = delivered.get(request.idempotency_key, [])
            address = request.payload["to"]
            late = [
                m["seq"] for m in effects if address in suppressed_at and m["seq"] > suppressed_at[address]
            ]
            if late:
                problems.append(f"#{request.pk} {address}: delivered after its suppression: {late}")
        else:
            address = request.payload["email"]
            effects = writes.get(address, [])
            if contacts[address] > 1:
                problems.append(f"#{request.pk} {address}: {contacts[address]} contacts")
        call = ledger.get(action_key(request.idempotency_key))
        if len(effects) > 1:
            problems.append(f"#{request.pk} {request.kind} {address}: {len(effects)} effects")
        if request.status == Status.EXECUTED and (len(effects) != 1 or call != CallStatus.SUCCEEDED):
            problems.append(f"#{request.pk} executed with {len(effects)} effects, ledger {call}")
        if request.status in (Status.FAILED, Status.CANCELLED, Status.EXPIRED) and effects:
            problems.append(
                f"#{request.pk} {request.status} but the sandbox recorded {len(effects)} effect(s)"
            )
        if call in (CallStatus.STARTED, CallStatus.UNKNOWN) and request.status != Status.UNKNOWN:
            problems.append(f"#{request.pk} ledger {call} but shown {request.status}")
    known = {r.idempotency_key for r in requests.values()}
    problems += [f"a delivery no request made: {key!r}" for key in delivered if key not in known]
    for i in SUPPRESSED_BEFORE:
        if requests[emails[i].pk].status != Status.CANCELLED or delivered.get(emails[i].idempotency_key):
            problems.append(f"{_recipient(i)} suppressed before approval: {requests[emails[i].pk].status}")
    # faults bound to recipients end as the SMTP phase says (an interrupted run ends unknown too)
    expected = {
        DROP_AFTER_DATA: {Status.UNKNOWN},
        (KILLED_MID_SEND,): {Status.UNKNOWN},
        WITHHOLD_REPLY: {Status.UNKNOWN},
        REFUSE_PERMANENT: {Status.FAILED, Status.UNKNOWN},
        FAIL_QUIT: {Status.EXECUTED, Status.UNKNOWN},
        REFUSE_TRANSIENT: {Status.EXECUTED, Status.FAILED, Status.UNKNOWN},
    }
    for indexes, allowed in expected.items():
        for i in indexes:
            if requests[emails[i].pk].status not in allowed:
                problems.append(f"{_recipient(i)}: {requests[emails[i].pk].status}, expected {allowed}")
    assert not problems, _report(problems, requests, events)

    outcome = Counter(r.status for r in requests.values())
    smtp_faults = Counter(m["fault"] for m in state.smtp_messages() if m["fault"])
    http_faults = Counter((e["method"], e["fault"], e["status"]) for e in state.requests_log() if e["fault"])
    approved = len(approvable)
    verbs = Counter(
        Event.objects.filter(verb__in=("redispatched", "execution_resumed")).values_list("verb", flat=True)
    )
    for label, request in (
        ("killed mid-send", requests[emails[KILLED_MID_SEND].pk]),
        ("killed mid-write", next((r for r in crm.values() if r.payload["email"] == killed_write), None)),
    ):
        if request is not None:
            verbs_of = list(
                Event.objects.filter(request=request).order_by("pk").values_list("verb", flat=True)
            )
            events.append(f"{label}: #{request.pk} {request.target} {requests[request.pk].status} {verbs_of}")
    print(
        f"\nfault suite: {approved} approved ({EMAILS} emails, {sum(CRM.values())} CRM writes) in "
        f"{elapsed:.1f}s; outcomes {dict(outcome)}; smtp faults {dict(smtp_faults)}; "
        f"http faults {sum(http_faults.values())} {dict(http_faults)}; {dict(verbs)}; timeline: {events}"
    )
    assert approved >= 200
    assert outcome[Status.EXECUTED] >= 150
    assert not feeder.left(), "every scheduled HTTP fault was met"
    assert all(
        smtp_faults[k] for k in ("drop_after_data", "withhold_reply", "fail_quit", "refuse_before_data")
    )


def _report_stuck(stuck, workers, events) -> str:
    lines = [f"{len(stuck)} requests not terminal: {dict(Counter(stuck.values()))}", *events]
    for pk in list(stuck)[:5]:
        lines.append(f"#{pk}: " + "; ".join(_timeline(pk)))
    for worker in workers:
        lines.append(f"--- {worker.name} (exit {worker.process.poll()}):\n{worker.tail()}")
    return "\n".join(lines)


def _report(problems, requests, events) -> str:
    lines = [*problems[:20], *events]
    for problem in problems[:5]:
        pk = int(problem.split()[0].lstrip("#")) if problem.startswith("#") else None
        if pk:
            lines.append(f"#{pk} {requests[pk].kind} {requests[pk].target}: " + "; ".join(_timeline(pk)))
    return "\n".join(lines)


def _timeline(pk: int) -> list[str]:
    return [
        f"{e.created_at:%H:%M:%S.%f} {e.verb} {e.from_status}->{e.to_status} {e.comment[:120]}"
        for e in Event.objects.filter(request_id=pk).order_by("created_at", "pk")
    ]
