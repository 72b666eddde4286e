"""Rollout phase, kill switch and safe mode change through one service (rollout_update) that
validates through the model and records who changed what in the audit log; the admin, the API
and the demo seed all call it."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.policy import services
from tenants.policy.models import RolloutPhase, RolloutSettings
from tenants.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(alpha, make_user):
    return make_user(alpha, Role.TENANT_ADMIN)


@pytest.fixture
def calls(monkeypatch):
    """Every call of the service, which still does its work."""
    seen: list[dict] = []
    real = services.rollout_update

    def spy(**kwargs):
        seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(services, "rollout_update", spy)
    return seen


def _entries():
    return list(LogEntry.objects.get_for_model(RolloutSettings).order_by("timestamp", "pk"))


def test_kill_switch_on_is_saved_and_audited_with_the_acting_user(alpha, admin_user):
    with tenant_context(alpha):
        before = len(_entries())

        rollout = services.rollout_update(
            acting_user=admin_user, kill_switch=True, kill_switch_reason="Bounce spike"
        )

        assert RolloutSettings.get_solo().kill_switch is True
        assert rollout.kill_switch_reason == "Bounce spike"
        entries = _entries()
        assert len(entries) == before + 1
        entry = entries[-1]
        assert entry.actor_id == admin_user.pk
        assert entry.changes_dict["kill_switch"] == ["False", "True"]
        assert entry.changes_dict["kill_switch_reason"] == ["", "Bounce spike"]


def test_turning_the_kill_switch_off_clears_its_reason(alpha, admin_user):
    with tenant_context(alpha):
        services.rollout_update(acting_user=admin_user, kill_switch=True, kill_switch_reason="Spike")

        rollout = services.rollout_update(acting_user=admin_user, kill_switch=False)

        assert (rollout.kill_switch, rollout.kill_switch_reason) == (False, "")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kill_switch": True}, "kill_switch_reason"),
        ({"kill_switch": True, "kill_switch_reason": "   "}, "kill_switch_reason"),
        ({"phase": "reckless"}, "phase"),
    ],
)
def test_invalid_change_is_refused_by_the_model_and_nothing_is_written(change, field, alpha, admin_user):
    with tenant_context(alpha):
        before = (RolloutSettings.get_solo().updated_at, len(_entries()))

        with pytest.raises(ValidationError) as refused:
            services.rollout_update(acting_user=admin_user, **change)

        assert field in refused.value.message_dict
        assert (RolloutSettings.get_solo().updated_at, len(_entries())) == before


def test_admin_form_saves_through_the_service(alpha, admin_user, client_for, calls):
    client = client_for(alpha, admin_user)

    response = client.post(
        "/admin/policy/rolloutsettings/",
        {
            "phase": RolloutPhase.ASSISTED,
            "agreement_override_reason": "Pilot agreed with the client",
            "kill_switch": "on",
            "kill_switch_reason": "Audit",
            "safe_mode": "on",
        },
    )

    assert response.status_code == 302
    assert len(calls) == 1 and calls[0]["acting_user"].pk == admin_user.pk
    with tenant_context(alpha):
        rollout = RolloutSettings.get_solo()
        assert (rollout.phase, rollout.kill_switch, rollout.safe_mode) == ("assisted", True, True)
        assert _entries()[-1].actor_id == admin_user.pk


def test_api_patch_saves_through_the_service(alpha, admin_user, client_for, calls):
    client = client_for(alpha, admin_user)

    response = client.patch("/api/v1/policy/rollout/", {"safe_mode": True}, content_type="application/json")

    assert response.status_code == 200, response.content
    assert response.json()["safe_mode"] is True
    assert calls == [{"acting_user": calls[0]["acting_user"], "safe_mode": True}]
    with tenant_context(alpha):
        assert RolloutSettings.get_solo().safe_mode is True


def test_api_refuses_a_kill_switch_without_reason_with_a_field_error(alpha, admin_user, client_for):
    client = client_for(alpha, admin_user)

    response = client.patch("/api/v1/policy/rollout/", {"kill_switch": True}, content_type="application/json")

    assert response.status_code == 400
    assert "kill_switch_reason" in response.json()
    with tenant_context(alpha):
        assert RolloutSettings.get_solo().kill_switch is False


def test_seed_sets_the_phase_through_the_service(alpha, calls):
    from tenants.management.commands.seed_demo import TENANTS, Command

    with tenant_context(alpha):
        services.rollout_update(acting_user=None, phase=RolloutPhase.SHADOW)
    calls.clear()

    Command()._policies(alpha, TENANTS["acme"])

    assert [c.get("phase") for c in calls] == [RolloutPhase.ASSISTED]
    with tenant_context(alpha):
        assert RolloutSettings.get_solo().phase == RolloutPhase.ASSISTED


def _decided(n_agreed: int, n_disagreed: int, skill: str = "campaign-crafter"):
    """Requests decided in the parallel phase: the AI said approve; people approved or rejected."""
    from approvals.models import ActionRequest, Status
    from approvals.tests.factories import propose_email
    from skills.models import SkillRun

    run = SkillRun.objects.create(skill=skill, skill_version="1", inputs={}, idempotency_key=f"agree:{skill}")
    for n in range(n_agreed + n_disagreed):
        request = propose_email(payload={"to": f"p{n}@prospect.example", "subject": "Hi", "body": "Hello"})
        ActionRequest.objects.filter(pk=request.pk).update(
            ai_decision="approve",
            status=Status.APPROVED if n < n_agreed else Status.REJECTED,
            skill_run=run,
            decided_at=timezone.now(),
        )


def test_moving_to_assisted_below_the_agreement_target_needs_a_reason(alpha, admin_user, client_for):
    from approvals.tests.factories import set_phase

    with tenant_context(alpha):
        set_phase("parallel")
        _decided(6, 4)  # 60 % < 75 %
    client = client_for(alpha, admin_user)

    page = client.get("/admin/policy/rolloutsettings/").content.decode()
    refused = client.post("/admin/policy/rolloutsettings/", {"phase": RolloutPhase.ASSISTED})
    api = client.patch("/api/v1/policy/rollout/", {"phase": "assisted"}, content_type="application/json")

    assert "campaign-crafter" in page and "60% (below target)" in page
    assert refused.status_code == 200
    assert "below the 75% target" in refused.content.decode()
    assert "campaign-crafter: 60% (6 of 10)" in refused.content.decode()
    assert api.status_code == 400 and "agreement_override_reason" in api.json()
    with tenant_context(alpha):
        assert RolloutSettings.get_solo().phase == "parallel"

    moved = client.post(
        "/admin/policy/rolloutsettings/",
        {"phase": RolloutPhase.ASSISTED, "agreement_override_reason": "Client signed off the pilot"},
    )

    assert moved.status_code == 302
    with tenant_context(alpha):
        rollout = RolloutSettings.get_solo()
        assert (rollout.phase, rollout.agreement_override_reason) == (
            "assisted",
            "Client signed off the pilot",
        )
        assert _entries()[-1].changes_dict["agreement_override_reason"] == ["", "Client signed off the pilot"]


def test_moving_to_assisted_at_the_target_needs_no_reason(alpha, admin_user):
    from approvals.tests.factories import set_phase

    with tenant_context(alpha):
        set_phase("parallel")
        _decided(3, 1)  # 75 %
        rollout = services.rollout_update(acting_user=admin_user, phase=RolloutPhase.ASSISTED)
        assert (rollout.phase, rollout.agreement_override_reason) == ("assisted", "")


def test_nothing_compared_yet_is_not_agreement(alpha, admin_user):
    with tenant_context(alpha), pytest.raises(ValidationError, match="no decision has been compared"):
        services.rollout_update(acting_user=admin_user, phase=RolloutPhase.AUTONOMOUS)
