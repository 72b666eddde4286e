"""Policy forms: inconsistent limits give field errors and save nothing; edits are audited."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django_tenants.utils import tenant_context

from tenants.policy.models import IcpDefinition, QuotaPolicy, RolloutSettings, SendingPolicy
from tenants.roles import Role

pytestmark = pytest.mark.django_db

SENDING = {
    "monthly_limit": "1000",
    "daily_limit": "100",
    "hourly_limit": "20",
    "per_domain_hourly_limit": "2",
    "min_delay_seconds": "30",
}


@pytest.fixture
def revops(alpha, make_user, client_for):
    return client_for(alpha, make_user(alpha, Role.REVOPS))


def _errors(response) -> str:
    assert response.status_code == 200, "an invalid form must be shown again, not saved"
    return " ".join(str(e) for e in response.context["adminform"].form.errors.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"daily_limit": "2000"}, "The daily limit cannot exceed the monthly limit."),
        ({"hourly_limit": "500"}, "The hourly limit cannot exceed the daily limit."),
        ({"per_domain_hourly_limit": "50"}, "The per-domain hourly limit cannot exceed the hourly limit."),
        ({"min_delay_seconds": "600"}, "at most 6 emails fit in an hour"),
        ({"monthly_limit": "-1"}, "greater than or equal to 0"),
    ],
)
def test_inconsistent_sending_policy_is_refused_and_nothing_saved(change, message, alpha, revops):
    with tenant_context(alpha):
        before = SendingPolicy.get_solo()

    response = revops.post("/admin/policy/sendingpolicy/", {**SENDING, **change})

    assert message in _errors(response)
    with tenant_context(alpha):
        after = SendingPolicy.get_solo()
    assert (after.monthly_limit, after.daily_limit, after.hourly_limit, after.updated_at) == (
        before.monthly_limit,
        before.daily_limit,
        before.hourly_limit,
        before.updated_at,
    )


def test_revops_edits_sending_policy(alpha, revops):
    response = revops.post("/admin/policy/sendingpolicy/", SENDING)

    assert response.status_code == 302
    with tenant_context(alpha):
        assert SendingPolicy.get_solo().daily_limit == 100


def test_icp_form_validates_ranges_and_domains(alpha, revops):
    response = revops.post(
        "/admin/policy/icpdefinition/",
        {
            "company_size_min": "500",
            "company_size_max": "50",
            "competitor_domains": "rival.example\nnot a domain",
            "customer_domains": "",
        },
    )
    errors = _errors(response)
    assert "Not a domain name: not a domain." in errors

    response = revops.post(
        "/admin/policy/icpdefinition/",
        {"company_size_min": "500", "company_size_max": "50", "competitor_domains": "rival.example"},
    )
    assert "The largest company size must be at least the smallest." in _errors(response)

    response = revops.post(
        "/admin/policy/icpdefinition/",
        {
            "company_size_min": "5",
            "company_size_max": "50",
            "competitor_domains": "same.example",
            "customer_domains": "same.example",
        },
    )
    assert "Listed both as competitor and customer: same.example." in _errors(response)
    with tenant_context(alpha):
        assert IcpDefinition.get_solo().competitor_domains == []


def test_revops_edits_icp_lists_one_per_line(alpha, revops):
    response = revops.post(
        "/admin/policy/icpdefinition/",
        {
            "company_size_min": "20",
            "company_size_max": "500",
            # industries and geographies are chosen from lists (campaigns/tests/test_icp_choices.py)
            "industries": ["SaaS", "Fintech", "__other__"],
            "industries_other": "saas\n\nSaaS",
            "titles": "Head of Growth",
            "geographies": ["US", "UK"],
            "competitor_domains": "WWW.Rival.example",
        },
    )
    assert response.status_code == 302
    with tenant_context(alpha):
        icp = IcpDefinition.get_solo()
    assert icp.industries == ["SaaS", "Fintech"]
    assert icp.competitor_domains == ["rival.example"]


def test_quota_per_run_above_daily_is_refused(alpha, revops):
    response = revops.post(
        "/admin/policy/quotapolicy/",
        {
            "monthly_token_budget": "1000",
            "daily_run_limit": "5",
            "daily_usd_limit": "10",
            "per_run_usd_limit": "11",
            "crm_requests_per_minute": "10",
        },
    )
    assert "The per-run limit cannot exceed the daily limit." in _errors(response)
    with tenant_context(alpha):
        assert QuotaPolicy.get_solo().per_run_usd_limit != 11


def test_kill_switch_needs_a_reason(alpha, revops):
    response = revops.post("/admin/policy/rolloutsettings/", {"phase": "shadow", "kill_switch": "on"})
    assert "Say why the kill switch is on." in _errors(response)

    response = revops.post(
        "/admin/policy/rolloutsettings/",
        {"phase": "shadow", "kill_switch": "on", "kill_switch_reason": "Bounce spike"},
    )
    assert response.status_code == 302
    with tenant_context(alpha):
        assert RolloutSettings.get_solo().kill_switch is True


def test_api_refuses_inconsistent_patch_with_field_error(alpha, revops):
    response = revops.patch(
        "/api/v1/policy/sending/", {"daily_limit": 999999}, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {"daily_limit": ["The daily limit cannot exceed the monthly limit."]}
    with tenant_context(alpha):
        assert SendingPolicy.get_solo().daily_limit != 999999


def test_policy_edit_is_audited_with_actor_and_ip_and_entries_are_read_only(alpha, make_user, client_for):
    revops_user = make_user(alpha, Role.REVOPS)
    client = client_for(alpha, revops_user)

    client.post("/admin/policy/sendingpolicy/", {**SENDING, "daily_limit": "77"}, REMOTE_ADDR="203.0.113.9")

    with tenant_context(alpha):
        entry = LogEntry.objects.get_for_model(SendingPolicy).latest("timestamp")
    assert entry.actor == revops_user
    assert entry.remote_addr == "203.0.113.9"
    assert entry.changes_dict["daily_limit"][1] == "77"

    admin_client = client_for(alpha, make_user(alpha, Role.TENANT_ADMIN))
    listing = admin_client.get("/admin/auditlog/logentry/")
    assert listing.status_code == 200 and "sending policy" in listing.content.decode().lower()
    assert admin_client.post(f"/admin/auditlog/logentry/{entry.pk}/change/", {}).status_code == 403
    assert (
        admin_client.post(f"/admin/auditlog/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
