"""The approval state machine, four eyes, rollout phases, execution gates, edits, escalation."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import httpx
import pytest
import respx
import time_machine
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from approvals import executors
from approvals.errors import IllegalTransition, NotAllowed, PayloadInvalid, ReasonRequired, UnknownActionKind
from approvals.models import ActionRequest, ApproverRule, EscalationPolicy, Event, ExecutedEffect, Status
from approvals.selectors import agreement_rate
from approvals.services import (
    action_approve,
    action_cancel,
    action_delegate,
    action_edit_payload,
    action_execute,
    action_propose,
    action_reject,
    requests_escalate,
    requests_expire,
)
from approvals.tests.factories import email_payload, propose_email, set_phase
from tenants.roles import Role
from tenants.services import global_kill_switch_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(alpha, make_user):
    users = {
        "ae": make_user(alpha, Role.AE, email="ae1@alpha.test"),
        "ae2": make_user(alpha, Role.AE, email="ae2@alpha.test"),
        "revops": make_user(alpha, Role.REVOPS),
        "viewer": make_user(alpha, Role.VIEWER),
        "admin": make_user(alpha, Role.TENANT_ADMIN),
    }
    connection.set_tenant(alpha)
    set_phase("assisted")
    yield users
    connection.set_schema_to_public()


def _status(request) -> str:
    request.refresh_from_db()
    return request.status


# --- proposal -----------------------------------------------------------------------------------


def test_propose_deduplicates_by_idempotency_key(people):
    first = propose_email(key="same")
    second = propose_email(key="same", payload=email_payload(subject="Different"))

    assert second.pk == first.pk
    assert ActionRequest.objects.filter(idempotency_key="same").count() == 1
    assert second.payload["subject"] == "Quick idea"


def test_unknown_kind_and_bad_payload_are_refused_and_nothing_is_stored(people):
    with pytest.raises(UnknownActionKind, match=r"Unknown action kind 'crm\.delete_everything'"):
        action_propose(kind="crm.delete_everything", payload={}, idempotency_key="k1")
    with pytest.raises(PayloadInvalid, match="to: 'not-an-email' is not exactly one email address"):
        action_propose(kind="email.send", payload=email_payload(to="not-an-email"), idempotency_key="k2")
    with pytest.raises(PayloadInvalid, match="'subject' is a required property"):
        action_propose(kind="email.send", payload={"to": "a@b.example", "body": "x"}, idempotency_key="k3")
    assert not ActionRequest.objects.filter(idempotency_key__in=["k1", "k2", "k3"]).exists()


def test_impact_level_and_flags_come_from_the_payload(people):
    ceo_first = propose_email(payload=email_payload(to_title="CEO", body="Call me on +1 415 555 0100"))

    assert ceo_first.impact_level == "critical"
    assert set(ceo_first.risk_flags) >= {"c_level_target", "first_run_for_tenant", "pii_present"}
    assert ceo_first.approvals_required == 2

    enrichment = action_propose(
        kind="enrichment.lookup",
        payload={"provider": "clay", "email": "a@b.example", "budget_usd": 150},
        idempotency_key="enrich-1",
    )
    assert enrichment.impact_level == "high" and "budget_high" in enrichment.risk_flags


def test_roster_routes_by_kind_and_impact_with_sla(people):
    ApproverRule.objects.create(
        kind="email.send", impact_level="medium", primary_approver=people["ae2"], sla_minutes=30, priority=1
    )

    request = propose_email()

    assert request.assigned_to == people["ae2"]
    assert abs((request.sla_due_at - request.created_at) - timedelta(minutes=30)) < timedelta(seconds=1)


# --- state machine ------------------------------------------------------------------------------


def test_legal_path_pending_approved_executing_executed(people):
    request = propose_email(requested_by=people["revops"])

    action_approve(request_id=request.pk, acting_user=people["ae"], comment="fine")
    assert _status(request) == Status.APPROVED
    assert action_execute(request.pk) == Status.EXECUTED

    request.refresh_from_db()
    verbs = list(request.events.values_list("verb", flat=True))
    assert verbs == ["proposed", "approved", "executing", "executed"]
    assert request.events.get(verb="approved").actor == people["ae"]
    assert ExecutedEffect.objects.filter(idempotency_key=request.idempotency_key).count() == 1


@pytest.mark.parametrize("final", [Status.REJECTED, Status.EXPIRED, Status.CANCELLED, Status.EXECUTED])
def test_illegal_transitions_raise_and_change_nothing(final, people):
    request = propose_email()
    if final == Status.REJECTED:
        action_reject(request_id=request.pk, acting_user=people["ae"], reason="no")
    elif final == Status.EXPIRED:
        ActionRequest.objects.filter(pk=request.pk).update(deadline=timezone.now() - timedelta(seconds=1))
        requests_expire()
    elif final == Status.CANCELLED:
        action_cancel(request_id=request.pk, reason="unsubscribed")
    else:
        action_approve(request_id=request.pk, acting_user=people["ae"])
        action_execute(request.pk)
    assert _status(request) == final
    events_before = Event.objects.filter(request=request).count()

    with pytest.raises(IllegalTransition):
        action_approve(request_id=request.pk, acting_user=people["ae2"])
    with pytest.raises(IllegalTransition):
        action_reject(request_id=request.pk, acting_user=people["ae2"], reason="late")
    with pytest.raises(IllegalTransition):
        action_cancel(request_id=request.pk, reason="late")
    with pytest.raises(IllegalTransition):
        action_edit_payload(request_id=request.pk, acting_user=people["ae2"], changes={"subject": "x"})

    assert _status(request) == final
    assert Event.objects.filter(request=request).count() == events_before
    assert action_execute(request.pk) == final  # executing a finished request does nothing


def test_double_approve_is_refused(people):
    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])

    with pytest.raises(IllegalTransition, match="not pending"):
        action_approve(request_id=request.pk, acting_user=people["ae2"])


def test_reject_needs_a_reason_and_keeps_redo_instructions(people):
    request = propose_email()

    with pytest.raises(ReasonRequired):
        action_reject(request_id=request.pk, acting_user=people["ae"], reason="  ")
    assert _status(request) == Status.PENDING

    action_reject(
        request_id=request.pk,
        acting_user=people["ae"],
        reason="Too long",
        redo_instructions="shorter, no pricing claims",
    )
    request.refresh_from_db()
    assert request.status == Status.REJECTED
    assert request.redo_instructions == "shorter, no pricing claims"

    redo = propose_email(key="redo-1", redo_of=request)
    assert redo.redo_of == request and list(request.redos.all()) == [redo]


# --- four eyes ----------------------------------------------------------------------------------


def test_requester_cannot_approve_own_request(people):
    request = propose_email(requested_by=people["ae"])

    with pytest.raises(NotAllowed, match="You requested this action"):
        action_approve(request_id=request.pk, acting_user=people["ae"])
    assert _status(request) == Status.PENDING


@pytest.mark.parametrize("role", ["viewer", "revops"])
def test_role_without_the_kinds_scope_cannot_approve(role, people):
    request = propose_email()

    with pytest.raises(NotAllowed, match="cannot decide on 'Email: send'"):
        action_approve(request_id=request.pk, acting_user=people[role])
    assert _status(request) == Status.PENDING and not request.approvals.exists()


def test_revops_may_approve_enrichment_but_not_email(people):
    enrichment = action_propose(
        kind="enrichment.lookup", payload={"provider": "clay", "email": "a@b.example"}, idempotency_key="e1"
    )
    action_approve(request_id=enrichment.pk, acting_user=people["revops"])
    assert _status(enrichment) == Status.APPROVED


def test_critical_needs_two_distinct_approvers(people):
    request = propose_email(payload=email_payload(to_title="Chief Executive Officer"))
    assert request.approvals_required == 2

    action_approve(request_id=request.pk, acting_user=people["ae"])
    assert _status(request) == Status.PENDING
    with pytest.raises(NotAllowed, match="second, different approver"):
        action_approve(request_id=request.pk, acting_user=people["ae"])
    action_approve(request_id=request.pk, acting_user=people["admin"])
    assert _status(request) == Status.APPROVED


# --- rollout phases -----------------------------------------------------------------------------


def test_shadow_phase_records_what_would_have_been_sent_and_never_executes(people):
    set_phase("shadow")

    request = propose_email(release_decision="auto_deliver")

    assert request.status == Status.SHADOWED
    shadow = request.events.get(verb="shadowed")
    assert shadow.data["would_execute"]["payload"]["subject"] == "Quick idea"
    assert action_execute(request.pk) == Status.SHADOWED
    assert not ExecutedEffect.objects.filter(idempotency_key=request.idempotency_key).exists()


def test_parallel_phase_queues_everything_and_reports_agreement(people):
    set_phase("parallel")
    agree = propose_email(release_decision="auto_deliver")
    disagree = propose_email(release_decision="auto_deliver")
    blocked = propose_email(release_decision="blocked")

    assert {agree.status, disagree.status, blocked.status} == {Status.PENDING}
    action_approve(request_id=agree.pk, acting_user=people["ae"])
    action_reject(request_id=disagree.pk, acting_user=people["ae"], reason="off-brand")
    action_reject(request_id=blocked.pk, acting_user=people["ae"], reason="agreed, bad")

    assert agreement_rate() == {"decided": 3, "agreed": 2, "rate": pytest.approx(2 / 3)}


def test_agreement_counts_only_the_decisions_of_the_last_30_days(people):
    set_phase("parallel")
    old = propose_email(release_decision="auto_deliver")
    recent = propose_email(release_decision="auto_deliver")
    action_reject(request_id=old.pk, acting_user=people["ae"], reason="disagreed, long ago")
    action_approve(request_id=recent.pk, acting_user=people["ae"])
    ActionRequest.objects.filter(pk=old.pk).update(decided_at=timezone.now() - timedelta(days=31))

    # the old disagreement no longer drags the rate down: 1 of 1, not 1 of 2
    assert agreement_rate() == {"decided": 1, "agreed": 1, "rate": 1.0}


def test_assisted_phase_queues_even_auto_deliver(people):
    assert propose_email(release_decision="auto_deliver").status == Status.PENDING


def test_autonomous_phase(people, django_capture_on_commit_callbacks):
    set_phase("autonomous")

    with django_capture_on_commit_callbacks() as callbacks:
        auto = propose_email(release_decision="auto_deliver")
    review = propose_email(release_decision="human_review")
    blocked = propose_email(release_decision="blocked")
    suggest = propose_email(release_decision="auto_deliver", execution_mode="suggest")

    assert auto.status == Status.APPROVED and len(callbacks) == 1  # execution scheduled
    assert auto.events.get(verb="approved").actor_label.startswith("system (autonomous phase")
    assert review.status == Status.PENDING
    assert blocked.status == Status.BLOCKED
    assert suggest.status == Status.PENDING
    assert action_execute(auto.pk) == Status.EXECUTED
    assert action_execute(blocked.pk) == Status.BLOCKED


# --- execution gates ----------------------------------------------------------------------------


@pytest.fixture
def spy_executor():
    spy = mock.Mock(return_value={"executor": "spy"})
    with mock.patch.dict(executors._EXECUTORS, {"email.send": spy}):
        yield spy


@pytest.mark.parametrize(
    ("close_gate", "reason"),
    [
        (lambda: set_phase("assisted", kill_switch=True), "The tenant kill switch is on"),
        (lambda: set_phase("shadow"), "shadow phase"),
        ("global", "The global kill switch is on."),
    ],
)
def test_gate_closed_between_approval_and_execution_cancels_without_calling_executor(
    close_gate, reason, people, spy_executor
):
    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])

    if close_gate == "global":
        tenant = connection.tenant
        global_kill_switch_set(acting_user=None, on=True, reason="incident")
        connection.set_tenant(tenant)
    else:
        close_gate()
    outcome = action_execute(request.pk)

    request.refresh_from_db()
    assert outcome == Status.CANCELLED
    assert reason in request.cancel_reason
    spy_executor.assert_not_called()


def test_approver_losing_the_scope_before_execution_cancels(people, spy_executor):
    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])
    people["ae"].groups.clear()

    assert action_execute(request.pk) == Status.CANCELLED
    spy_executor.assert_not_called()


def test_execute_twice_has_one_effect(people):
    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])

    action_execute(request.pk)
    action_execute(request.pk)

    assert ExecutedEffect.objects.filter(idempotency_key=request.idempotency_key).count() == 1


def test_redelivered_while_executing_completes_without_a_second_effect(people):
    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])
    # a worker recorded "executing" and the effect, then died before recording the outcome
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING, attempts=1)
    executors.log_executor(request, request.payload)

    assert action_execute(request.pk) == Status.EXECUTED
    request.refresh_from_db()
    assert request.result["repeat"] is True
    assert ExecutedEffect.objects.filter(idempotency_key=request.idempotency_key).count() == 1
    assert request.events.filter(verb="execution_resumed").exists()


def test_retryable_errors_retry_then_fail_for_good(people):
    from approvals.errors import RetryableExecutionError

    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])
    flaky = mock.Mock(side_effect=RetryableExecutionError("HTTP 503 from vendor"))

    with mock.patch.dict(executors._EXECUTORS, {"email.send": flaky}):
        for _ in range(request.max_attempts - 1):
            with pytest.raises(RetryableExecutionError):
                action_execute(request.pk)
            assert _status(request) == Status.EXECUTING
        assert action_execute(request.pk) == Status.FAILED

    request.refresh_from_db()
    assert request.error == "HTTP 503 from vendor" and flaky.call_count == request.max_attempts


def test_fatal_error_fails_at_once_with_the_vendors_message(people):
    from approvals.errors import FatalExecutionError

    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])
    with mock.patch.dict(
        executors._EXECUTORS, {"email.send": mock.Mock(side_effect=FatalExecutionError("400: invalid email"))}
    ):
        assert action_execute(request.pk) == Status.FAILED
    request.refresh_from_db()
    assert request.error == "400: invalid email"


# --- edit before approve --------------------------------------------------------------------------


def test_edit_is_kept_as_diff_and_the_executed_action_uses_it(people):
    request = propose_email()

    action_edit_payload(request_id=request.pk, acting_user=people["ae"], changes={"body": "Shorter."})
    action_approve(request_id=request.pk, acting_user=people["ae"])
    action_execute(request.pk)

    request.refresh_from_db()
    assert request.original_payload["body"] == "Hi Lee,\nA short note."
    assert request.payload_diff == {"body": {"before": "Hi Lee,\nA short note.", "after": "Shorter."}}
    assert ExecutedEffect.objects.get(idempotency_key=request.idempotency_key).payload["body"] == "Shorter."


def test_edit_after_a_first_approval_withdraws_it(people):
    request = propose_email(payload=email_payload(to_title="CEO"))  # critical: two approvers
    action_approve(request_id=request.pk, acting_user=people["ae"])

    action_edit_payload(request_id=request.pk, acting_user=people["ae2"], changes={"body": "New body."})
    action_approve(request_id=request.pk, acting_user=people["ae2"])

    request.refresh_from_db()
    assert request.status == Status.PENDING  # ae's approval was for the old body
    assert request.events.get(verb="edited").data["approvals_withdrawn"] == ["ae1@alpha.test"]
    action_approve(request_id=request.pk, acting_user=people["ae"])
    assert _status(request) == Status.APPROVED


def test_only_a_skill_runs_evaluation_can_claim_auto_deliver(people):
    set_phase("autonomous")

    with pytest.raises(PayloadInvalid, match="Only a skill run's evaluation"):
        propose_email(requested_by=people["revops"], release_decision="auto_deliver")
    with pytest.raises(PayloadInvalid, match="Only a skill run's evaluation"):
        propose_email(release_decision="auto_deliver", skill_run="")
    assert not ActionRequest.objects.exists()


def test_edit_outside_the_schema_or_editable_fields_is_refused(people):
    request = propose_email()

    with pytest.raises(PayloadInvalid, match="to cannot be edited"):
        action_edit_payload(request_id=request.pk, acting_user=people["ae"], changes={"to": "x@y.example"})
    with pytest.raises(PayloadInvalid, match="subject"):
        action_edit_payload(request_id=request.pk, acting_user=people["ae"], changes={"subject": ""})
    request.refresh_from_db()
    assert request.original_payload is None and request.payload["subject"] == "Quick idea"


# --- delegation, escalation, expiry ---------------------------------------------------------------


def test_bounded_delegation_lets_a_colleague_decide_then_falls_back(people):
    from approvals.services import delegations_fall_back

    ApproverRule.objects.create(primary_approver=people["ae2"], sla_minutes=60)
    request = propose_email()
    assert request.assigned_to == people["ae2"]
    until = timezone.now() + timedelta(hours=1)

    action_delegate(request_id=request.pk, acting_user=people["ae2"], to_user=people["ae"], until=until)

    request.refresh_from_db()
    assert request.assigned_to == people["ae"]

    with time_machine.travel(until + timedelta(minutes=1)):
        assert delegations_fall_back() == 1
    request.refresh_from_db()
    assert request.assigned_to == people["ae2"]
    # a delegation hands over the work, never a scope: a viewer cannot be made a delegate
    with pytest.raises(NotAllowed):
        action_delegate(request_id=request.pk, acting_user=people["ae2"], to_user=people["viewer"])


@respx.mock
def test_escalation_l2_l3_l4_with_notices_then_expiry(people, django_capture_on_commit_callbacks):
    policy = EscalationPolicy.get_solo()
    policy.l2_contact, policy.l3_contact, policy.l4_contact = "lead@a.test", "mgr@a.test", "exec@a.test"
    policy.slack_webhook_url = "https://hooks.slack.test/services/T/B/X"
    policy.save()
    slack = respx.post("https://hooks.slack.test/services/T/B/X").mock(return_value=httpx.Response(200))
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        request = propose_email(deadline=start + timedelta(hours=30))

    levels = []
    for hours, expected in ((1, 1), (4.1, 2), (5, 2), (8.1, 3), (24.1, 4)):
        with (
            time_machine.travel(start + timedelta(hours=hours), tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            requests_escalate()
        request.refresh_from_db()
        levels.append(request.escalation_level)
        assert request.escalation_level == expected

    assert levels == [1, 2, 2, 3, 4]
    assert [m.to for m in mail.outbox] == [["lead@a.test"], ["mgr@a.test"], ["exec@a.test"]]
    assert "escalated to L4 executive" in mail.outbox[-1].subject
    assert slack.call_count == 3
    assert request.events.filter(verb="escalated").count() == 3

    with time_machine.travel(start + timedelta(hours=30, seconds=1), tick=False):
        assert requests_expire() == 1
    assert _status(request) == Status.EXPIRED


def test_other_tenant_cannot_see_requests(people, bravo):
    request = propose_email()
    connection.set_schema_to_public()
    with tenant_context(bravo):
        assert not ActionRequest.objects.filter(
            pk=request.pk, idempotency_key=request.idempotency_key
        ).exists()


def test_unexpected_executor_error_is_retried_then_fails_never_stuck(people):
    from approvals.errors import RetryableExecutionError

    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])
    broken = mock.Mock(side_effect=KeyError("bug"))

    with mock.patch.dict(executors._EXECUTORS, {"email.send": broken}):
        for _ in range(request.max_attempts - 1):
            with pytest.raises(RetryableExecutionError):
                action_execute(request.pk)
        assert action_execute(request.pk) == Status.FAILED

    request.refresh_from_db()
    assert request.error == "Unexpected error: KeyError: 'bug'"


def test_broker_down_at_approval_does_not_fail_the_approver_and_the_sweep_redispatches(
    people, django_capture_on_commit_callbacks
):
    from approvals.services import requests_redispatch_stale
    from approvals.tasks import execute_action

    request = propose_email()
    with (
        mock.patch.object(execute_action, "apply_async", side_effect=ConnectionError("redis down")) as down,
        django_capture_on_commit_callbacks(execute=True),
    ):
        action_approve(request_id=request.pk, acting_user=people["ae"])  # no exception for the AE
    assert down.call_count == 1 and _status(request) == Status.APPROVED

    with mock.patch.object(execute_action, "apply_async") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            assert requests_redispatch_stale() == 0  # too recent to call lost
        with (
            time_machine.travel(timezone.now() + timedelta(minutes=6)),
            django_capture_on_commit_callbacks(execute=True),
        ):
            assert requests_redispatch_stale() == 1
    enqueue.assert_called_once()
    assert request.events.filter(verb="redispatched").exists()


def test_every_transition_is_in_the_audit_log_with_its_actor(people):
    from auditlog.context import set_actor
    from auditlog.models import LogEntry

    request = propose_email()
    with set_actor(people["ae"], remote_addr="198.51.100.7"):  # as the admin and the API set it
        action_approve(request_id=request.pk, acting_user=people["ae"])
    action_execute(request.pk)  # a worker: no person

    updates = LogEntry.objects.get_for_object(request).filter(action=LogEntry.Action.UPDATE).order_by("pk")
    assert [entry.changes_dict["status"] for entry in updates] == [
        ["pending", "approved"],
        ["approved", "executing"],
        ["executing", "executed"],
    ]
    assert [(entry.actor, entry.remote_addr) for entry in updates] == [
        (people["ae"], "198.51.100.7"),
        (None, None),
        (None, None),
    ]


def test_safe_mode_records_what_would_have_been_sent_and_sends_nothing(people, spy_executor):
    from tenants.policy.models import RolloutSettings

    request = propose_email()
    action_approve(request_id=request.pk, acting_user=people["ae"])
    RolloutSettings.objects.update(safe_mode=True)

    assert action_execute(request.pk) == Status.CANCELLED

    spy_executor.assert_not_called()
    cancelled = request.events.get(verb="cancelled")
    assert cancelled.comment.startswith("Safe mode is on")
    assert cancelled.data["would_execute"]["payload"]["subject"] == "Quick idea"
