"""The seams of issue 9 where an opted-out person could be contacted or an effect could happen
twice: one address normaliser, one gates module, one ledger with namespaced keys, SMTP phases."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail, signing
from django.db import connection
from django.utils import timezone

from approvals.errors import IllegalTransition, NotAllowed, PayloadInvalid
from approvals.gates import ProposalRefused
from approvals.models import ActionRequest, Event, Status
from approvals.services import (
    action_approve,
    action_execute,
    action_propose,
    action_requeue,
    action_resolve,
    requests_redispatch_stale,
)
from approvals.tests.factories import email_payload, propose_email, set_phase
from campaigns.models import Lead
from connectors.executors import UNSUBSCRIBE_SALT, unsubscribe_token
from connectors.ledger import action_key
from connectors.mail import SMTPBackend
from connectors.models import CallLedger, CallStatus, Enrichment, SendCounter, Suppression, WebhookEvent
from connectors.sandbox.smtp import SandboxSMTP
from connectors.services import suppression_add
from tenants.policy.models import IcpDefinition, RolloutSettings, SendingPolicy
from tenants.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(alpha, make_user):
    ae, admin = make_user(alpha, Role.AE), make_user(alpha, Role.TENANT_ADMIN)
    connection.set_tenant(alpha)
    set_phase("assisted")
    yield {"ae": ae, "admin": admin}
    connection.set_schema_to_public()


def _approved(people, **payload):
    request = propose_email(payload=email_payload(**payload))
    action_approve(request_id=request.pk, acting_user=people["ae"])
    return request


def _status(request) -> str:
    request.refresh_from_db()
    return request.status


# --- display names and the one normaliser ---------------------------------------------------------


def test_a_display_name_is_split_off_and_the_bare_address_is_what_suppression_sees(people):
    request = propose_email(payload=email_payload(to="Bob <Bob@ACME.example>", to_name=""))

    assert request.payload["to"] == "bob@acme.example" and request.payload["to_name"] == "Bob"
    assert request.target == "bob@acme.example"
    # bob unsubscribes: the pending request is cancelled, and a new one is refused at proposal
    suppression_add(email="BOB@acme.example", reason="unsubscribed", source="instantly")
    assert _status(request) == Status.CANCELLED
    with pytest.raises(ProposalRefused, match=r"Recipient suppressed: bob@acme\.example"):
        propose_email(payload=email_payload(to="Bob <bob@acme.example>"))


@pytest.mark.parametrize(
    "to",
    [
        "Bob <bob@acme.example>, eve@evil.example",
        "bob@acme.example>",
        "not-an-address",
        "a@b",
        "x" * 250 + "@a.io",
    ],
)
def test_anything_but_one_valid_address_is_refused_at_proposal(people, to):
    with pytest.raises(PayloadInvalid):
        propose_email(payload=email_payload(to=to))
    assert not ActionRequest.objects.exists()


def test_a_comma_in_the_display_name_is_quoted_and_the_mail_goes_to_the_bare_address(people):
    request = _approved(people, to="bob@acme.example", to_name="Smith, Bob")

    assert action_execute(request.pk) == Status.EXECUTED

    [sent] = mail.outbox
    assert sent.to == ['"Smith, Bob" <bob@acme.example>']
    assert sent.recipients() == ['"Smith, Bob" <bob@acme.example>']
    # the unsubscribe link names the canonical address
    token = sent.extra_headers["List-Unsubscribe"].split("/u/")[1].split("/")[0]
    assert signing.loads(token, salt=UNSUBSCRIBE_SALT)["e"] == "bob@acme.example"
    assert (
        signing.loads(unsubscribe_token("Bob@ACME.example"), salt=UNSUBSCRIBE_SALT)["e"] == "bob@acme.example"
    )


def test_a_line_break_in_a_header_value_is_refused_at_proposal(people):
    with pytest.raises(PayloadInvalid, match="to_name"):
        propose_email(payload=email_payload(to_name="Bob\nBcc: everyone@example.com"))
    with pytest.raises(PayloadInvalid, match="subject"):
        propose_email(payload=email_payload(subject="Hi\r\nBcc: everyone@example.com"))


def test_a_message_that_cannot_be_built_fails_before_anything_is_sent_or_kept_counted(people):
    request = _approved(people)
    # a payload that slipped past the schema (written before it refused line breaks)
    ActionRequest.objects.filter(pk=request.pk).update(
        payload={**request.payload, "to_name": "Bob\nBcc: everyone@example.com"}
    )

    assert action_execute(request.pk) == Status.FAILED

    assert "cannot be built" in ActionRequest.objects.get(pk=request.pk).error
    assert not CallLedger.objects.exists() and mail.outbox == []
    assert not SendCounter.objects.filter(count__gt=0).exclude(scope="pacing").exists()


# --- ICP exclusions and the sender are gates ----------------------------------------------------


def _exclude(competitors=(), customers=()):
    icp = IcpDefinition.get_solo()
    icp.competitor_domains, icp.customer_domains = list(competitors), list(customers)
    icp.save()


def test_competitor_and_customer_domains_are_refused_at_proposal_with_the_reason(people):
    _exclude(competitors=["rival.example"], customers=["client.example"])

    with pytest.raises(ProposalRefused, match=r"rival\.example is a competitor's domain"):
        propose_email(payload=email_payload(to="cto@rival.example"))
    with pytest.raises(ProposalRefused, match=r"eu\.client\.example is an existing customer's domain"):
        propose_email(payload=email_payload(to="buyer@eu.client.example"))
    assert not ActionRequest.objects.exists()


def test_an_exclusion_added_after_approval_cancels_the_send(people):
    request = _approved(people, to="cto@rival.example")
    _exclude(competitors=["rival.example"])

    assert action_execute(request.pk) == Status.CANCELLED

    assert "competitor" in ActionRequest.objects.get(pk=request.pk).cancel_reason and mail.outbox == []


def test_only_configured_sending_mailboxes_may_be_the_sender(people):
    policy = SendingPolicy.get_solo()
    policy.sending_mailboxes = ["Sales@Alpha.example", "ceo@alpha.example"]
    policy.full_clean()
    policy.save()
    assert policy.sending_mailboxes == ["sales@alpha.example", "ceo@alpha.example"]

    with pytest.raises(ProposalRefused, match="is not one of this tenant's sending mailboxes"):
        propose_email(payload=email_payload(from_mailbox="cfo@alpha.example"))
    default = propose_email(payload=email_payload())
    assert default.payload["from_mailbox"] == "sales@alpha.example"  # shown on the request

    request = _approved(people, from_mailbox="CEO@alpha.example")
    policy.sending_mailboxes = ["sales@alpha.example"]
    policy.save()
    assert action_execute(request.pk) == Status.CANCELLED
    assert mail.outbox == []


# --- GDPR erasure ---------------------------------------------------------------------------------


def _crm_write(people, email="gone@prospect.example", key="crm-1"):
    request = action_propose(
        kind="crm.upsert_contact",
        payload={"system": "hubspot", "email": email, "properties": {"jobtitle": "CTO"}},
        idempotency_key=key,
        skill_run="test",
    )
    return request


def test_erasure_blocks_crm_writes_too_while_an_unsubscribe_does_not(people):
    unsubscribed = _crm_write(people, email="left@prospect.example", key="crm-left")
    pending = _crm_write(people, key="crm-gone")

    suppression_add(email="left@prospect.example", reason="unsubscribed", source="instantly")
    suppression_add(email="gone@prospect.example", reason="gdpr_erasure", source="admin")

    assert _status(unsubscribed) == Status.PENDING  # the CRM may still hold an opted-out contact
    assert _status(pending) == Status.CANCELLED
    with pytest.raises(ProposalRefused, match="gdpr erasure"):
        _crm_write(people, key="crm-gone-2")
    with pytest.raises(ProposalRefused, match="gdpr erasure"):
        action_propose(
            kind="crm.add_tag",
            payload={"system": "gohighlevel", "email": "gone@prospect.example", "tag": "x"},
            idempotency_key="tag-1",
            skill_run="test",
        )


def test_clay_results_for_an_erased_person_do_not_recreate_the_lead(people):
    from connectors.clay import enrichment_result_apply

    enrichment = Enrichment.objects.create(ref="6f1c4a53-0000-4000-8000-000000000001", email="gone@x.example")
    suppression_add(email="gone@x.example", reason="gdpr_erasure", source="admin")
    event = WebhookEvent.objects.create(
        system="clay",
        event_id="r-1",
        event_type="enrichment_result",
        email="gone@x.example",
        payload={"mh1_ref": str(enrichment.ref), "title": "CTO", "phone": "+1 555 0100"},
    )

    outcome = enrichment_result_apply(event)

    assert outcome.startswith("discarded: the person was erased")
    assert not Lead.objects.filter(email="gone@x.example").exists()
    event.refresh_from_db()
    enrichment.refresh_from_db()
    assert "phone" not in event.payload and enrichment.result is None


# --- retries and redeliveries meet every gate ------------------------------------------------------


def _executing(people):
    """A request whose first attempt failed transiently: it is retried in ``executing``."""
    request = _approved(people)
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING, attempts=1)
    return request


@pytest.mark.parametrize(
    ("close", "reason"),
    [
        (lambda people: RolloutSettings.objects.update(safe_mode=True), "Safe mode is on"),
        (lambda people: RolloutSettings.objects.update(phase="shadow"), "shadow phase"),
        (
            lambda people: RolloutSettings.objects.update(kill_switch=True, kill_switch_reason="x"),
            "kill switch",
        ),
        (
            lambda people: people["ae"].groups.remove(Group.objects.get(name=Role.AE.label)),
            "no longer holds the scope",
        ),
    ],
    ids=["safe-mode", "shadow", "kill-switch", "scope-revoked"],
)
def test_a_retried_send_meets_every_gate(people, close, reason):
    request = _executing(people)
    close(people)

    assert action_execute(request.pk) == Status.CANCELLED

    assert reason in ActionRequest.objects.get(pk=request.pk).cancel_reason
    assert mail.outbox == [] and not CallLedger.objects.exists()


def test_the_executor_does_nothing_once_the_request_is_no_longer_executing(people):
    from connectors.executors import email_send

    request = _approved(people)
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.CANCELLED)

    with pytest.raises(Exception, match="no longer executing"):
        email_send(ActionRequest.objects.get(pk=request.pk), request.payload)
    assert mail.outbox == [] and not CallLedger.objects.exists()


def test_a_stale_approval_expires_instead_of_running_weeks_later(people):
    request = _approved(people)

    with time_machine.travel(timezone.now() + timedelta(hours=73)):
        assert action_execute(request.pk) == Status.EXPIRED

    request.refresh_from_db()
    assert "approval expired" in request.cancel_reason and mail.outbox == []


# --- ledger keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["suppress:instantly:bob@acme.example", "action:abc"])
def test_keys_of_the_consoles_own_calls_are_refused_at_proposal(people, key):
    with pytest.raises(PayloadInvalid, match="may not start with"):
        propose_email(key=key)


def test_an_action_key_never_takes_a_suppression_push_key(people):
    request = _approved(people, to="bob@acme.example")
    assert action_execute(request.pk) == Status.EXECUTED

    assert CallLedger.objects.get().idempotency_key == action_key(request.idempotency_key)
    assert action_key(request.idempotency_key).startswith("action:")


# --- SMTP: after DATA the outcome is unknown -------------------------------------------------------


@pytest.fixture
def smtp(settings, people):
    server = SandboxSMTP(port=0, report=lambda *a, **k: None).start()
    settings.EMAIL_BACKEND = "connectors.mail.SMTPBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 1
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield server
    server.stop()


def _delivered(smtp) -> int:
    return len(smtp.state.smtp_messages(delivered=True))


@pytest.mark.parametrize("fault", ["drop_after_data", "withhold_reply"])
def test_an_smtp_error_after_data_is_unknown_and_never_resent(people, smtp, fault):
    smtp.state.add_smtp_fault(
        kind=fault, times=1, **({"hold_seconds": 3} if fault == "withhold_reply" else {})
    )
    request = _approved(people)

    assert action_execute(request.pk) == Status.UNKNOWN
    # a redelivered task, and the sweep: still one copy
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING)
    assert action_execute(request.pk) == Status.UNKNOWN

    assert _delivered(smtp) == 1
    assert CallLedger.objects.get().status == CallStatus.UNKNOWN
    unknown = Event.objects.filter(request=request, to_status=Status.UNKNOWN).first()
    assert "may have been delivered" in unknown.comment


def test_a_refusal_before_data_is_retried_and_delivers_once(people, smtp):
    SendingPolicy.objects.update(min_delay_seconds=0)  # the retry is not paced behind the refusal
    smtp.state.add_smtp_fault(kind="refuse_before_data", times=1, code=451)
    request = _approved(people)

    with pytest.raises(Exception, match="SMTP"):
        action_execute(request.pk)  # retryable: the task retries it
    assert _delivered(smtp) == 0 and CallLedger.objects.get().status == CallStatus.FAILED
    assert action_execute(request.pk) == Status.EXECUTED
    assert _delivered(smtp) == 1


def test_a_permanent_refusal_fails_without_retry(people, smtp):
    smtp.state.add_smtp_fault(kind="refuse_before_data", times=1, code=550)
    request = _approved(people)

    assert action_execute(request.pk) == Status.FAILED
    assert _delivered(smtp) == 0


def test_an_error_on_quit_after_the_250_is_a_success(people, smtp):
    smtp.state.add_smtp_fault(kind="fail_quit", times=1)
    request = _approved(people)

    assert action_execute(request.pk) == Status.EXECUTED
    assert _delivered(smtp) == 1


def test_the_phased_backend_is_djangos_smtp_backend():
    from django.core.mail.backends.smtp import EmailBackend

    assert issubclass(SMTPBackend, EmailBackend)


# --- unknown outcomes: shown, re-queued or resolved by a tenant admin -------------------------------


def _unknown(people):
    request = _approved(people)
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING)
    CallLedger.objects.create(
        idempotency_key=action_key(request.idempotency_key), system="smtp", operation="send", request={}
    )  # its worker died mid-send
    assert action_execute(request.pk) == Status.UNKNOWN
    return request


def test_a_tenant_admin_requeues_an_unknown_send_and_it_goes_out_once(people):
    request = _unknown(people)

    with pytest.raises(NotAllowed):
        action_requeue(request_id=request.pk, acting_user=people["ae"], reason="checked")
    with pytest.raises(Exception, match="Say why"):
        action_requeue(request_id=request.pk, acting_user=people["admin"], reason=" ")
    action_requeue(request_id=request.pk, acting_user=people["admin"], reason="Not in the SMTP log.")

    assert action_execute(request.pk) == Status.EXECUTED
    assert len(mail.outbox) == 1
    verbs = list(Event.objects.filter(request=request).values_list("verb", "comment"))
    assert ("approved", "Not in the SMTP log.") in verbs


def test_a_tenant_admin_resolves_an_unknown_send_as_delivered(people):
    request = _unknown(people)

    action_resolve(
        request_id=request.pk, acting_user=people["admin"], outcome="executed", reason="In the log."
    )

    assert _status(request) == Status.EXECUTED and mail.outbox == []
    with pytest.raises(IllegalTransition):
        action_resolve(request_id=request.pk, acting_user=people["admin"], outcome="failed", reason="x")


# --- a lost execution is picked up within a minute --------------------------------------------------


def test_an_execution_whose_worker_died_is_redispatched_but_a_live_one_is_not(people, django_db_blocker):
    import psycopg
    from django.conf import settings as django_settings

    live, lost = _approved(people), _approved(people)
    old = timezone.now() - timedelta(seconds=30)
    ActionRequest.objects.filter(pk__in=(live.pk, lost.pk)).update(status=Status.EXECUTING, updated_at=old)
    # another connection (a live worker) holds the lease of ``live``
    db = django_settings.DATABASES["default"]
    other = psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        user=db["USER"],
        host=db["HOST"],
        port=db["PORT"],
        autocommit=True,
    )
    try:
        other.execute(
            "SELECT pg_advisory_lock(hashtext(%s))", [f"mh1:execute:{connection.schema_name}:{live.pk}"]
        )
        assert requests_redispatch_stale() == 1
    finally:
        other.close()

    assert Event.objects.filter(request=lost, verb="redispatched").exists()
    assert not Event.objects.filter(request=live, verb="redispatched").exists()


def test_suppressions_are_stored_canonical(people):
    entry, _ = suppression_add(email="  Bob@Bücher.Example ", reason="manual", source="admin")

    assert entry.email == "bob@xn--bcher-kva.example"
    assert Suppression.objects.filter(email="bob@xn--bcher-kva.example").exists()
    with pytest.raises(ValueError, match="not exactly one email address"):
        suppression_add(email="bob@x.example, eve@y.example", reason="manual", source="admin")


# --- the admin shows gates and unknown outcomes in words; a tenant admin lifts a wrong suppression --


def _admin_url(request, *parts):
    base = f"/admin/approvals/actionrequest/{request.pk}/"
    return base + "".join(f"{p}/" for p in parts)


def test_the_request_page_shows_a_gate_that_closed_after_the_proposal(people, alpha, client_for):
    request = propose_email(payload=email_payload(to="cto@rival.example"))
    _exclude(competitors=["rival.example"])
    client = client_for(alpha, people["ae"])

    page = client.get(_admin_url(request, "change")).content.decode()

    assert "It would not run now" in page and "rival.example is a competitor&#x27;s domain" in page


def test_a_tenant_admin_requeues_an_unknown_request_from_its_page(people, alpha, client_for):
    request = _unknown(people)
    ae_page = client_for(alpha, people["ae"]).get(_admin_url(request, "change")).content.decode()
    admin = client_for(alpha, people["admin"])
    page = admin.get(_admin_url(request, "change")).content.decode()

    assert "Outcome unknown" in page and "Re-queue" in page and "Re-queue" not in ae_page
    response = admin.post(_admin_url(request, "decide", "requeue"), {"reason": "Not in the SMTP log."})
    assert response.status_code == 302
    connection.set_tenant(alpha)
    assert _status(request) == Status.APPROVED


def test_a_tenant_admin_lifts_a_wrong_suppression_with_a_reason(people, alpha, client_for):
    from auditlog.models import LogEntry

    from connectors.services import SuppressionLiftRefused, suppression_lift

    wrong, _ = suppression_add(email="typo@prospect.example", reason="manual", source="admin")
    erased, _ = suppression_add(email="gone@prospect.example", reason="gdpr_erasure", source="admin")

    with pytest.raises(SuppressionLiftRefused, match="Only a tenant admin"):
        suppression_lift(entry_id=wrong.pk, acting_user=people["ae"], reason="typo")
    with pytest.raises(SuppressionLiftRefused, match="cannot be lifted"):
        suppression_lift(entry_id=erased.pk, acting_user=people["admin"], reason="asked again")
    response = client_for(alpha, people["admin"]).post(
        "/admin/connectors/suppression/",
        {
            "action": "lift_selected",
            "_selected_action": [wrong.pk],
            "apply": "1",
            "reason": "Typed by mistake.",
        },
    )

    assert response.status_code == 302
    connection.set_tenant(alpha)
    assert not Suppression.objects.filter(email="typo@prospect.example").exists()
    entry = LogEntry.objects.filter(action=LogEntry.Action.DELETE, object_repr="typo@prospect.example").get()
    assert entry.changes_dict["reason"][1] == "Typed by mistake."
    assert propose_email(payload=email_payload(to="typo@prospect.example")).status == Status.PENDING


# --- pacing at volume: each send is deferred at most once, to its own slot ---------------------------


def test_paced_sends_each_get_their_own_slot_and_are_deferred_at_most_once(people):
    SendingPolicy.objects.update(min_delay_seconds=60)
    requests = [_approved(people, to=f"lead{i}@prospect{i}.example") for i in range(5)]

    first = [action_execute(r.pk) for r in requests]

    assert first == [Status.EXECUTED] + ["deferred"] * 4
    slots = [ActionRequest.objects.get(pk=r.pk).not_before for r in requests[1:]]
    assert [round((b - a).total_seconds()) for a, b in itertools.pairwise(slots)] == [60, 60, 60]
    for request, slot in zip(requests[1:], slots, strict=True):
        with time_machine.travel(slot + timedelta(seconds=1)):
            assert action_execute(request.pk) == Status.EXECUTED
    deferrals = Event.objects.filter(request__in=requests, verb="deferred").count()
    assert deferrals == 4 and len(mail.outbox) == 5
    # no executing → approved round trips: each deferral happened before executing
    assert not Event.objects.filter(
        request__in=requests, from_status="executing", to_status="approved"
    ).exists()
