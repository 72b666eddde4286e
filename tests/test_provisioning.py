"""Tenants created through the public admin and the command get a working schema and host."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_exists, tenant_context

from mh1.tenancy import active_tenant_schemas
from tenants.models import Domain, Tenant, TenantAccessGrant
from tenants.policy.models import RolloutPhase, RolloutSettings
from tenants.roles import Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client_for):
    connection.set_schema_to_public()
    operator = User.objects.create_user("operator@example.com", password=PASSWORD, is_staff=True)
    operator.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))
    return client_for(Tenant.objects.get(schema_name="public"), operator)


def test_tenant_created_in_public_admin_gets_schema_host_and_first_admin(operator_client):
    response = operator_client.post(
        "/admin/tenants/tenant/add/",
        {
            "name": "Initech",
            "slug": "initech",
            "admin_email": "Boss@Initech.example",
            "admin_password": PASSWORD,
        },
        follow=True,
    )

    assert response.status_code == 200
    assert (
        'Tenant Initech is ready at <a href="http://initech.localhost/admin/">' in response.content.decode()
    )
    tenant = Tenant.objects.get(slug="initech")
    assert schema_exists("initech")
    assert Domain.objects.get(tenant=tenant).domain == "initech.localhost"
    assert TenantAccessGrant.objects.get(tenant=tenant).role == Role.TENANT_ADMIN
    with tenant_context(tenant):
        assert RolloutSettings.get_solo().phase == RolloutPhase.SHADOW  # safe default
        assert Group.objects.get(name="RevOps").permissions.exists()

    # the new host serves its admin to its first admin
    client = Client(HTTP_HOST="initech.localhost")
    login = client.post(
        "/admin/login/?next=/admin/", {"username": "boss@initech.example", "password": PASSWORD}
    )
    assert login.status_code == 302
    assert "Initech" in client.get("/admin/").content.decode()


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("public", "is reserved"),
        ("alpha", "already exists"),
        ("Bad Slug!", "Enter a valid"),
        ("ab", "Use 3-40 lowercase letters"),
        ("under_score", "Use 3-40 lowercase letters"),
        ("tenant-template", "is reserved"),
    ],
)
def test_bad_slug_is_a_form_error_and_creates_nothing(slug, message, operator_client):
    tenants_before = Tenant.objects.count()

    response = operator_client.post(
        "/admin/tenants/tenant/add/", {"name": "X", "slug": slug, "admin_email": "x@example.com"}
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert Tenant.objects.count() == tenants_before


def test_create_tenant_command(capsys):
    call_command("create_tenant", name="Umbrella", slug="umbrella", admin_email="a@umbrella.example")

    out = capsys.readouterr().out
    assert "Created tenant Umbrella in" in out and "http://umbrella.localhost:8000/admin/" in out
    assert "Password (shown once):" in out
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_tenant", name="Umbrella", slug="umbrella", admin_email="a@umbrella.example")


def test_deactivated_tenant_host_answers_404_and_jobs_skip_it(operator_client, alpha):
    assert "alpha" in active_tenant_schemas()

    selected = {"action": "deactivate", "_selected_action": [alpha.pk]}
    asked = operator_client.post("/admin/tenants/tenant/", selected)
    assert asked.status_code == 200 and "Are you sure?" in asked.content.decode()  # asks first
    assert "alpha" in active_tenant_schemas()

    response = operator_client.post("/admin/tenants/tenant/", {**selected, "post": "yes"})

    assert response.status_code == 302
    assert Client().get("/admin/login/", HTTP_HOST="alpha.localhost").status_code == 404
    assert "alpha" not in active_tenant_schemas()
    alpha.refresh_from_db()
    assert alpha.deactivated_at is not None


def test_one_person_gets_access_to_several_tenants_at_once(operator_client, alpha, bravo):
    response = operator_client.post(
        "/admin/tenants/tenantaccessgrant/add/",
        {
            "email": "Agency.AE@example.com",
            "full_name": "Agency AE",
            "tenants": [alpha.pk, bravo.pk],
            "role": Role.AE.value,
            "password": PASSWORD,
        },
    )

    assert response.status_code == 302
    for slug in ("alpha", "bravo"):
        login = Client(HTTP_HOST=f"{slug}.localhost").post(
            "/admin/login/?next=/admin/", {"username": "agency.ae@example.com", "password": PASSWORD}
        )
        assert login.status_code == 302, slug

    # revoking bravo ends access there only
    grant = TenantAccessGrant.objects.get(email="agency.ae@example.com", tenant=bravo)
    operator_client.post(
        "/admin/tenants/tenantaccessgrant/", {"action": "revoke", "_selected_action": [grant.pk]}
    )
    refused = Client(HTTP_HOST="bravo.localhost").post(
        "/admin/login/?next=/admin/", {"username": "agency.ae@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 200
    allowed = Client(HTTP_HOST="alpha.localhost").post(
        "/admin/login/?next=/admin/", {"username": "agency.ae@example.com", "password": PASSWORD}
    )
    assert allowed.status_code == 302


def test_tenant_staff_cannot_enter_public_admin(alpha, make_user, client_for):
    make_user(alpha, Role.TENANT_ADMIN, email="tadmin@example.com")
    login = Client(HTTP_HOST="localhost").post(
        "/admin/login/?next=/admin/", {"username": "tadmin@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200  # no such user on the public host


def test_global_kill_switch_needs_a_reason(operator_client):
    response = operator_client.post("/admin/tenants/platformsettings/", {"global_kill_switch": "on"})
    assert response.status_code == 200 and "Say why the kill switch is on." in response.content.decode()
    response = operator_client.post(
        "/admin/tenants/platformsettings/", {"global_kill_switch": "on", "kill_switch_reason": "Incident 42"}
    )
    assert response.status_code == 302
    from tenants.services import global_kill_switch_on

    assert global_kill_switch_on() is True


def test_create_tenant_command_refuses_a_weak_admin_password():
    with pytest.raises(CommandError, match=r"Admin password refused: This password is too common\."):
        call_command(
            "create_tenant",
            name="Weakco",
            slug="weakco",
            admin_email="a@weakco.example",
            admin_password="password",
        )
    assert not Tenant.objects.filter(slug="weakco").exists()
    assert not schema_exists("weakco")
