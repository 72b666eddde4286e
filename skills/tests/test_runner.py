"""The runner, end to end in one tenant: start → reserve → run → evaluate → release → propose,
and every way a run can go wrong ends in a final status with its reservation settled."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from approvals.models import ActionRequest, Status
from approvals.tests.factories import set_phase
from skills.errors import InputsInvalid, RunRefused
from skills.models import RunStatus, SkillRun, Trigger
from skills.services.runner import (
    SLA_GRACE_SECONDS,
    skill_run_execute,
    skill_run_start,
    skill_runs_end_stale,
)
from tenants.policy.models import QuotaPolicy
from tenants.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def revops(alpha, make_user):
    return make_user(alpha, Role.REVOPS, email="runner-revops@alpha.test")


@pytest.fixture
def ae(alpha, make_user):
    return make_user(alpha, Role.AE, email="runner-ae@alpha.test")


@pytest.fixture
def in_alpha(alpha, echo_skill, revops, ae):
    # the users first: making one ends in the public schema
    with tenant_context(alpha):
        set_phase("assisted")
        yield alpha


def _start(revops, **inputs):
    inputs.setdefault("recipients", ["lee@prospect.example"])
    return skill_run_start(skill="test-echo", inputs=inputs, acting_user=revops)


def test_inputs_that_do_not_fit_the_schema_are_refused_per_field_and_nothing_is_recorded(in_alpha, revops):
    with pytest.raises(InputsInvalid) as caught:
        skill_run_start(
            skill="test-echo", inputs={"recipients": "not a list", "steps": 99}, acting_user=revops
        )

    assert set(caught.value.errors) == {"recipients", "steps"}
    assert not SkillRun.objects.exists()


def test_an_unsupported_mode_is_refused(in_alpha, revops):
    with pytest.raises(InputsInvalid, match="mode"):
        skill_run_start(
            skill="test-echo", inputs={"recipients": []}, execution_mode="yolo", acting_user=revops
        )


def test_a_viewer_cannot_start_a_run(in_alpha, alpha, make_user):
    viewer = make_user(alpha, Role.VIEWER, email="runner-viewer@alpha.test")
    with tenant_context(alpha), pytest.raises(RunRefused):
        skill_run_start(skill="test-echo", inputs={"recipients": []}, acting_user=viewer)


def test_a_repeated_key_returns_the_first_run(in_alpha, revops):
    first = skill_run_start(
        skill="test-echo", inputs={"recipients": ["a@b.example"]}, acting_user=revops, idempotency_key="k-1"
    )
    again = skill_run_start(
        skill="test-echo",
        inputs={"recipients": ["other@b.example"]},
        acting_user=revops,
        idempotency_key="k-1",
    )

    assert again.pk == first.pk
    assert SkillRun.objects.count() == 1


def test_the_kill_switch_refuses_a_run_with_the_reason_and_reserves_nothing(in_alpha, revops):
    set_phase("assisted", kill_switch=True)

    run = _start(revops)

    assert run.status == RunStatus.REFUSED
    assert "kill switch" in run.refusal_reason
    assert run.reserved_usd == 0


def test_a_run_over_the_per_run_limit_is_refused_with_which_limit(in_alpha, revops):
    quota = QuotaPolicy.get_solo()
    quota.per_run_usd_limit = Decimal("0.00")
    quota.save()

    run = _start(revops)

    assert run.status == RunStatus.REFUSED
    assert "per-run" in run.refusal_reason.lower()
    assert run.cost_usd == 0


def test_a_run_goes_end_to_end_and_its_emails_wait_in_the_queue_with_its_scores(in_alpha, revops):
    run = _start(revops, recipients=["lee@prospect.example", "kim@prospect.example"])
    assert run.status == RunStatus.QUEUED and run.reserved_usd > 0

    skill_run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert 0 < run.cost_usd <= run.reserved_usd
    assert run.input_tokens > 0 and run.output_tokens > 0
    assert [s.name for s in run.steps.all()][:2] == ["load", "run (attempt 1)"]
    assert run.evaluation_score is not None and run.release_decision
    requests = list(ActionRequest.objects.filter(skill_run=run).order_by("target"))
    assert [r.target for r in requests] == ["kim@prospect.example", "lee@prospect.example"]
    assert all(r.evaluation_score is not None and r.release_decision for r in requests)
    assert all(r.requested_by_skill_run == f"test-echo run #{run.pk}" for r in requests)
    assert {p["request_id"] for p in run.output["_proposals"]} == {r.pk for r in requests}


def test_suggest_mode_proposes_nothing(in_alpha, revops):
    run = skill_run_start(
        skill="test-echo",
        inputs={"recipients": ["lee@prospect.example"]},
        execution_mode="suggest",
        acting_user=revops,
    )
    skill_run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert not ActionRequest.objects.filter(skill_run=run).exists()


def test_a_provider_failure_is_retried_within_the_retry_budget(in_alpha, revops, echo_skill):
    run = _start(revops, fail_attempts=1)

    skill_run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.attempts == 2
    assert "attempt 1" in run.error


def test_output_not_fitting_the_schema_beyond_the_retry_budget_is_a_complete_failure(in_alpha, revops):
    run = _start(revops, bad_output_attempts=5)

    skill_run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.fallback == "complete_failure"
    assert "output schema" in run.error
    assert run.output["error_report"]
    assert not ActionRequest.objects.filter(skill_run=run).exists()


def test_the_sla_time_out_returns_the_partial_result(in_alpha, revops):
    run = _start(revops, steps=3)
    ticks = iter([0.0] + [1.0] * 12 + [1000.0] * 100)  # the third step starts past the deadline

    skill_run_execute(run.pk, clock=lambda: next(ticks))

    run.refresh_from_db()
    assert run.status == RunStatus.PARTIAL
    assert run.fallback == "partial_success"
    assert 1 <= run.output["steps_done"] < 3
    assert "SLA" in run.error
    assert not ActionRequest.objects.filter(skill_run=run).exists()


def test_too_little_data_is_refused_when_the_contract_says_refuse(in_alpha, revops):
    run = _start(revops, recipients=[])

    skill_run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.REFUSED
    assert "at least 1" in run.refusal_reason
    assert run.cost_usd == 0


def test_data_unavailable_falls_back_to_the_last_output_under_24_hours(in_alpha, revops):
    first = _start(revops)
    skill_run_execute(first.pk)
    run = skill_run_start(
        skill="test-echo",
        inputs={"recipients": ["lee@prospect.example"], "unavailable": True},
        acting_user=revops,
    )
    # the cache is per inputs: the same inputs as the first run, with the source down
    SkillRun.objects.filter(pk=first.pk).update(inputs=run.inputs)

    skill_run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.PARTIAL
    assert run.fallback == "data_unavailable"
    assert run.output["emails"] == SkillRun.objects.get(pk=first.pk).output["emails"]


def test_data_unavailable_without_a_recent_output_is_a_complete_failure(in_alpha, revops):
    run = _start(revops, unavailable=True)

    skill_run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Data unavailable" in run.error


def test_a_second_delivery_of_the_same_run_does_nothing(in_alpha, revops):
    run = _start(revops)
    skill_run_execute(run.pk)
    steps = run.steps.count()

    assert skill_run_execute(run.pk) is None
    assert run.steps.count() == steps


def test_a_run_whose_worker_died_is_ended_by_the_sweep(in_alpha, revops):
    run = _start(revops)
    past = timezone.now() - timedelta(seconds=120 + SLA_GRACE_SECONDS)
    SkillRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=past, deadline_at=past)

    assert skill_runs_end_stale() == 1

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "never finished" in run.error


def test_a_rejection_with_instructions_redoes_the_run_and_links_the_new_action(in_alpha, revops, ae):
    from approvals.services import action_reject
    from skills.services.redo import redo_start

    run = _start(
        revops, recipients=["lee@prospect.example", "kim@prospect.example"], body="Hi,\nLong note.\nMore."
    )
    skill_run_execute(run.pk)
    rejected = ActionRequest.objects.get(skill_run=run, target="lee@prospect.example")
    assert rejected.status == Status.PENDING
    action_reject(request_id=rejected.pk, acting_user=ae, reason="Too long", redo_instructions="shorter")

    redo = redo_start(request_id=rejected.pk)
    skill_run_execute(redo.pk)

    redo.refresh_from_db()
    assert (
        redo.trigger == Trigger.REDO and redo.parent_id == run.pk and redo.redo_of_request_id == rejected.pk
    )
    assert redo.instructions == "shorter"
    new = ActionRequest.objects.get(skill_run=redo)
    assert new.redo_of_id == rejected.pk
    assert new.target == "lee@prospect.example"
    assert new.payload["body"] == "Hi,"
    assert redo_start(request_id=rejected.pk).pk == redo.pk  # once per rejection
