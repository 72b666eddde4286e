"""Each role by each admin action: allowed or denied; a permission nobody mapped is denied."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django_tenants.utils import tenant_context

from tenants.roles import ROLE_PERMISSIONS, Role

pytestmark = pytest.mark.django_db

ADMIN, REVOPS, AE, VIEWER = Role.TENANT_ADMIN, Role.REVOPS, Role.AE, Role.VIEWER
EVERY_ROLE = {ADMIN, REVOPS, AE, VIEWER}

POLICY_FORMS = {
    "rolloutsettings": {"phase": "assisted", "kill_switch_reason": "", "agreement_override_reason": "Pilot"},
    "icpdefinition": {"company_size_min": "5", "company_size_max": "50"},
    "quotapolicy": {
        "monthly_token_budget": "100",
        "daily_run_limit": "5",
        "daily_usd_limit": "10",
        "per_run_usd_limit": "1",
        "monthly_usd_limit": "100",
        "alert_thresholds": "80,95",
        "crm_requests_per_minute": "10",
    },
    "sendingpolicy": {
        "monthly_limit": "1000",
        "daily_limit": "100",
        "hourly_limit": "20",
        "per_domain_hourly_limit": "2",
        "min_delay_seconds": "30",
    },
}

# A harmless change per policy API endpoint.
API_PATCHES = {
    "rollout": {"safe_mode": True},
    "icp": {"competitor_domains": ["rival.example"]},
    "quotas": {"daily_run_limit": 5},
    "sending": {"min_delay_seconds": 45},
}
START_INPUTS = {"inputs": {"segment": "all"}, "execution_mode": "suggest"}

# (method, path, roles allowed). Allowed GETs answer 200, allowed POSTs redirect (302).
MATRIX = [
    *[("GET", f"/admin/policy/{model}/", EVERY_ROLE) for model in POLICY_FORMS],
    *[("POST", f"/admin/policy/{model}/", {ADMIN, REVOPS}) for model in POLICY_FORMS],
    ("GET", "/admin/policy/heartbeat/", EVERY_ROLE),
    # the budget ledger and its Spend page: read by everyone who reads the quotas, written by nobody
    *[
        ("GET", f"/admin/budget/{model}/", EVERY_ROLE)
        for model in ("budgetcounter", "budgetreservation", "budgetcharge", "budgetalert")
    ],
    ("GET", "/admin/budget/budgetcounter/spend/", EVERY_ROLE),
    ("GET", "/admin/auditlog/logentry/", {ADMIN, REVOPS, VIEWER}),
    ("GET", "/admin/auth/user/", {ADMIN}),
    ("GET", "/admin/auth/user/add/", {ADMIN}),
    ("GET", "/admin/auth/group/", {ADMIN}),
    ("GET", "/admin/policy/apitoken/", EVERY_ROLE),
    *[("GET", f"/api/v1/policy/{name}/", EVERY_ROLE) for name in API_PATCHES],
    *[("PATCH", f"/api/v1/policy/{name}/", {ADMIN, REVOPS}) for name in API_PATCHES],
    ("GET", "/api/v1/heartbeats/", EVERY_ROLE),
    # skills: everyone reads the contracts, runs and evaluations; RevOps and tenant admins start runs
    ("GET", "/api/v1/skills/", EVERY_ROLE),
    ("POST", "/api/v1/skills/data-quality/runs/", {ADMIN, REVOPS}),
    ("GET", "/admin/skills/skillrun/", EVERY_ROLE),
    ("GET", "/admin/skills/skillrun/skills/", EVERY_ROLE),
    ("GET", "/admin/skills/skillrun/start/data-quality/", {ADMIN, REVOPS}),
    ("GET", "/admin/skills/skillschedule/", EVERY_ROLE),
    ("GET", "/admin/evaluation/evaluation/", EVERY_ROLE),
    ("GET", "/admin/campaigns/messagingpack/", EVERY_ROLE),
    ("GET", "/admin/campaigns/messagingpack/add/", {ADMIN, REVOPS}),
    # connectors: credentials (secrets, base URLs) are the tenant admin's
    ("GET", "/admin/connectors/credential/", {ADMIN}),
    ("GET", "/admin/connectors/suppression/", EVERY_ROLE),
    # vendor traffic is operations' to read (the AE works the queue, where each request shows its calls)
    ("GET", "/admin/connectors/webhookevent/", {ADMIN, REVOPS, VIEWER}),
    ("GET", "/admin/connectors/callledger/", {ADMIN, REVOPS, VIEWER}),
]


@pytest.mark.parametrize("role", sorted(EVERY_ROLE, key=str), ids=str)
@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX])
def test_role_matrix(role, method, path, allowed, alpha, make_user, client_for):
    client = client_for(alpha, make_user(alpha, role))
    model = path.rstrip("/").rsplit("/", 1)[-1]

    if method == "GET":
        response = client.get(path)
        expected = 200
    elif method == "PATCH":
        response = client.patch(path, API_PATCHES[model], content_type="application/json")
        expected = 200
    elif path.startswith("/api/"):
        response = client.post(path, START_INPUTS, content_type="application/json")
        expected = 202  # accepted: queued
    else:
        response = client.post(path, POLICY_FORMS[model])
        expected = 302

    if role in allowed:
        assert response.status_code == expected, response.content[:500]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", Role.tenant_roles(), ids=str)
def test_role_holds_exactly_its_mapped_permissions(role, alpha, make_user):
    user = make_user(alpha, role)
    with tenant_context(alpha):
        assert user.get_all_permissions() == ROLE_PERMISSIONS[role]


@pytest.mark.parametrize(
    "permission",
    ["auth.delete_user", "policy.delete_sendingpolicy", "policy.add_heartbeat", "auth.change_group"],
)
def test_permission_nobody_mapped_is_denied_to_every_role(permission, alpha, make_user):
    users = [make_user(alpha, role) for role in Role.tenant_roles()]
    with tenant_context(alpha):
        assert not any(user.has_perm(permission) for user in users)


def test_every_mapped_permission_exists(alpha):
    # A typo in the role map would silently deny; fail loudly instead.
    with tenant_context(alpha):
        existing = {
            f"{app}.{codename}"
            for app, codename in Permission.objects.values_list("content_type__app_label", "codename")
        }
    missing = {
        perm for role in Role.tenant_roles() for perm in ROLE_PERMISSIONS[role] if perm not in existing
    }
    assert missing == set()
    connection.set_schema_to_public()
    public = {
        f"{app}.{codename}"
        for app, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }
    assert ROLE_PERMISSIONS[Role.PLATFORM_OPERATOR] - public == set()


def test_user_without_role_cannot_enter_admin_or_api(alpha, make_user, client_for):
    user = make_user(alpha, Role.VIEWER, email="nobody@example.com")
    with tenant_context(alpha):
        user.groups.clear()
    client = client_for(alpha, user)

    assert client.get("/admin/policy/sendingpolicy/").status_code == 403
    assert client.get("/api/v1/policy/sending/").status_code == 403
