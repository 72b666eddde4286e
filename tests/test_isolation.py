"""One tenant cannot see or touch another: admin, API, sessions, tokens, tasks, public admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django_tenants.utils import tenant_context

from tenants.models import Tenant
from tenants.policy.models import Heartbeat, IcpDefinition
from tenants.policy.tasks import heartbeat
from tenants.policy.tokens import api_token_create
from tenants.roles import Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_policy_edited_in_alpha_is_invisible_in_bravo_admin_and_api(alpha, bravo, make_user, client_for):
    # given an ICP industry only alpha uses
    with tenant_context(alpha):
        icp = IcpDefinition.get_solo()
        icp.industries = ["Alpha-only Aerospace"]
        icp.save()
    revops_alpha = make_user(alpha, Role.REVOPS)
    revops_bravo = make_user(bravo, Role.REVOPS)

    # when each tenant's RevOps opens the ICP page and API
    alpha_page = client_for(alpha, revops_alpha).get("/admin/policy/icpdefinition/")
    bravo_page = client_for(bravo, revops_bravo).get("/admin/policy/icpdefinition/")
    bravo_api = client_for(bravo, revops_bravo).get("/api/v1/policy/icp/")

    # then only alpha sees it
    assert alpha_page.status_code == 200 and "Alpha-only Aerospace" in alpha_page.content.decode()
    assert bravo_page.status_code == 200 and "Alpha-only Aerospace" not in bravo_page.content.decode()
    assert bravo_api.status_code == 200
    assert "Alpha-only Aerospace" not in bravo_api.json()["industries"]


def test_user_of_alpha_cannot_log_in_on_bravo(alpha, bravo, make_user, client_for):
    make_user(alpha, Role.AE, email="only-alpha@example.com")

    on_alpha = client_for(alpha).post(
        "/admin/login/?next=/admin/", {"username": "only-alpha@example.com", "password": PASSWORD}
    )
    on_bravo = client_for(bravo).post(
        "/admin/login/?next=/admin/", {"username": "only-alpha@example.com", "password": PASSWORD}
    )

    assert on_alpha.status_code == 302 and on_alpha["Location"] == "/admin/"
    assert on_bravo.status_code == 200
    assert "Please enter the correct username and password" in on_bravo.content.decode()


def test_session_from_alpha_does_not_work_on_bravo(alpha, bravo, make_user, client_for):
    # given the same person has a login in both tenants
    make_user(bravo, Role.TENANT_ADMIN, email="both@example.com")
    user_alpha = make_user(alpha, Role.TENANT_ADMIN, email="both@example.com")
    client = client_for(alpha, user_alpha)
    assert client.get("/admin/").status_code == 200

    # when the alpha session cookie is replayed on bravo's host
    response = client.get("/admin/", HTTP_HOST="bravo.localhost")

    # then bravo asks for a login
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_api_token_from_alpha_is_refused_on_bravo(alpha, bravo, make_user, client_for):
    user = make_user(alpha, Role.VIEWER)
    with tenant_context(alpha):
        _, key = api_token_create(acting_user=user, name="script")
    connection.set_schema_to_public()
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}

    assert client_for(alpha).get("/api/v1/me/", **auth).json()["tenant"] == "alpha"
    assert client_for(bravo).get("/api/v1/me/", **auth).status_code == 401


def test_heartbeat_task_writes_only_into_its_own_tenant(alpha, bravo):
    with tenant_context(bravo):
        bravo_before = Heartbeat.objects.count()
    connection.set_schema_to_public()

    result = heartbeat.apply(args=("alpha",))

    with tenant_context(alpha):
        assert Heartbeat.objects.filter(pk=result.get()).exists()
    with tenant_context(bravo):
        assert Heartbeat.objects.count() == bravo_before
        assert not Heartbeat.objects.filter(task_id=result.id).exists()


def test_public_admin_shows_no_tenant_users(alpha, make_user, client_for):
    make_user(alpha, Role.VIEWER, email="tenant-person@example.com")
    connection.set_schema_to_public()
    operator = User.objects.create_user("ops@example.com", password=PASSWORD, is_staff=True)
    operator.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))

    page = client_for(Tenant.objects.get(schema_name="public"), operator).get("/admin/auth/user/")

    assert page.status_code == 200
    body = page.content.decode()
    assert "ops@example.com" in body
    assert "tenant-person@example.com" not in body


def test_unknown_and_deactivated_hosts_answer_404(client, tenants):
    assert client.get("/admin/login/", HTTP_HOST="nobody.localhost").status_code == 404
    assert client.get("/healthz", HTTP_HOST="dormant.localhost").status_code == 404
    assert client.get("/admin/login/", HTTP_HOST="dormant.localhost").status_code == 404


def test_tenant_admin_home_shows_its_last_heartbeat(alpha, bravo, make_user, client_for):
    heartbeat.apply(args=("alpha",))
    with tenant_context(alpha):
        last = Heartbeat.objects.latest()
    connection.set_schema_to_public()

    page = client_for(alpha, make_user(alpha, Role.AE)).get("/admin/").content.decode()

    assert f"{last.ran_at:%Y-%m-%d %H:%M:%S} UTC" in page
    assert "Rollout phase" in page and "Alpha" in page
