"""The front door of both hosts: the API root, the OpenAPI schema's nullable and blank fields, the
favicon, and the lockout page (status 429, branded, when it unlocks, who unlocks it)."""

from __future__ import annotations

import re

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.contrib import messages
from django.contrib.auth.models import Group, User
from django.contrib.staticfiles import finders
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models
from django.test import Client
from django_tenants.utils import tenant_context
from rest_framework import serializers

from mh1.api_root import ENDPOINTS
from tenants.models import Tenant
from tenants.roles import Role
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.django_db


# --- API root ----------------------------------------------------------------------------------


def test_the_api_root_lists_every_endpoint_as_an_absolute_url_on_the_host_asked(alpha, make_user):
    user = make_user(alpha, Role.TENANT_ADMIN, email="root-admin@alpha.test")
    client = Client(HTTP_HOST="alpha.localhost:8000")
    with tenant_context(alpha):
        client.force_login(user)
    connection.set_schema_to_public()

    response = client.get("/api/v1/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(ENDPOINTS)
    assert body["approval-requests"] == "http://alpha.localhost:8000/api/v1/approvals/requests/"
    assert body["me"] == "http://alpha.localhost:8000/api/v1/me/"
    for name, url in body.items():  # each one is a real endpoint this admin can read
        path = url.removeprefix("http://alpha.localhost:8000")
        assert client.get(path).status_code == 200, name


def test_the_api_root_needs_a_login(alpha):
    response = Client(HTTP_HOST="alpha.localhost").get("/api/v1/")
    assert response.status_code == 401
    assert "Token" in response["WWW-Authenticate"]


# --- OpenAPI schema ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _props(schema, component):
    return schema["components"]["schemas"][component]["properties"]


def test_nullable_foreign_keys_and_blank_choices_read_as_the_api_answers(schema):
    queue_row = _props(schema, "ActionRequest")
    # SlugRelatedField over a nullable FK: the API answers null for a skill's request
    assert queue_row["requested_by"]["nullable"] is True
    assert queue_row["assigned_to"]["nullable"] is True
    # a blank choice field answers "": the enum admits it
    blank = {"$ref": "#/components/schemas/BlankEnum"}
    assert blank in queue_row["release_decision"]["oneOf"]
    assert blank in queue_row["assigned_role"]["oneOf"]
    assert schema["components"]["schemas"]["BlankEnum"] == {"enum": [""]}
    # already right before, and still: a nullable column, a non-nullable one
    assert queue_row["decided_at"]["nullable"] is True
    assert "nullable" not in queue_row["created_at"]


def test_writable_blank_fields_accept_an_empty_string(schema):
    for component in ("RolloutSettings", "PatchedRolloutSettings"):
        reason = _props(schema, component)["kill_switch_reason"]
        assert "minLength" not in reason and reason["maxLength"] == 500


def _model_serializers():
    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    ours = {"approvals", "skills", "tenants", "connectors", "campaigns", "evaluation"}
    return [
        c
        for c in walk(serializers.ModelSerializer)
        if c.__module__.split(".")[0] in ours and hasattr(c, "Meta")
    ]


def test_every_model_field_that_can_be_null_is_nullable_in_the_schema(schema):
    checked = 0
    for serializer_class in _model_serializers():
        component = schema["components"]["schemas"].get(serializer_class.__name__.removesuffix("Serializer"))
        if component is None:
            continue
        model = serializer_class.Meta.model
        for name, field in serializer_class().fields.items():
            source = field.source if field.source not in ("*", None) else name
            try:
                model_field = model._meta.get_field(source)
            except FieldDoesNotExist:  # a method or a property: not a column
                continue
            if not isinstance(model_field, models.Field) or not model_field.concrete:
                continue
            prop = component["properties"][name]
            if model_field.null:
                checked += 1
                assert prop.get("nullable") is True, f"{serializer_class.__name__}.{name}: {prop}"
            if model_field.blank and isinstance(model_field, models.CharField) and model_field.choices:
                assert any("BlankEnum" in str(option) for option in prop.get("oneOf", [])), (
                    f"{serializer_class.__name__}.{name}: {prop}"
                )
    assert checked >= 10


def test_the_schema_served_on_a_tenant_host_is_the_same(alpha, make_user, client_for):
    user = make_user(alpha, Role.VIEWER, email="schema-viewer@alpha.test")
    response = client_for(alpha, user).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    served = response.json()["components"]["schemas"]["ActionRequest"]["properties"]
    assert served["assigned_to"]["nullable"] is True
    assert response.json()["paths"]["/api/v1/"]["get"]["operationId"] == "api_root"


# --- favicon -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "alpha.localhost"])
def test_the_favicon_is_served_on_both_hosts_and_linked_from_the_admin(host, alpha):
    client = Client(HTTP_HOST=host)

    icon = client.get("/favicon.ico")

    assert icon.status_code == 200
    assert icon["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    login = client.get("/admin/login/").content.decode()
    links = re.findall(r'<link rel="icon" href="([^"]+)"', login)
    assert "/favicon.ico" in links
    svg = next(h for h in links if h.endswith(".svg"))
    assert finders.find(svg.removeprefix("/static/")), svg
    assert client.get(svg).status_code == 200


# --- lockout -----------------------------------------------------------------------------------


def _lock_out(client: Client, username: str) -> object:
    for _ in range(5):
        client.post("/admin/login/?next=/admin/", {"username": username, "password": "wrong"})
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": PASSWORD})


def test_a_locked_out_tenant_login_gets_a_branded_429_saying_when_and_who(alpha, make_user):
    make_user(alpha, Role.AE, email="locked-ae@alpha.test")

    locked = _lock_out(Client(HTTP_HOST="alpha.localhost"), "locked-ae@alpha.test")

    html = locked.content.decode()
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= 15 * 60
    assert "MH1 Console — Alpha" in html  # the tenant's own header, as on its admin pages
    assert '<link rel="icon"' in html
    assert "Too many failed logins" in html and "locked-ae@alpha.test" in html
    assert "After 5 wrong passwords" in html
    assert re.search(r"By itself at <strong><time datetime=\"[^\"]+\">\d\d:\d\d", html)
    assert "15 minutes after the last failed attempt" in html
    assert "A tenant admin of Alpha can unlock it now" in html
    assert 'href="/admin/password_reset/"' in html


def test_a_locked_out_operator_gets_the_platforms_page(db):
    connection.set_schema_to_public()
    User.objects.create_user("locked-op@mh1.test", password=PASSWORD, is_staff=True)

    locked = _lock_out(Client(HTTP_HOST="localhost"), "locked-op@mh1.test")

    html = locked.content.decode()
    assert locked.status_code == 429
    assert "MH1 Console — platform" in html
    assert "Another platform operator can unlock it now" in html


def test_a_tenant_admin_unlocks_a_login_and_it_is_audited(
    alpha, make_user, client_for, django_assert_max_num_queries
):
    # given: an AE locked out of alpha
    admin = make_user(alpha, Role.TENANT_ADMIN, email="unlocker@alpha.test")
    make_user(alpha, Role.AE, email="locked-out@alpha.test")
    assert _lock_out(Client(HTTP_HOST="alpha.localhost"), "locked-out@alpha.test").status_code == 429
    client = client_for(alpha, admin)
    with tenant_context(alpha):
        attempt = AccessAttempt.objects.get(username="locked-out@alpha.test")
    connection.set_schema_to_public()

    # the list shows it (a bounded number of queries)
    with django_assert_max_num_queries(12):
        listing = client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "locked-out@alpha.test" in listing.content.decode()

    # when
    done = client.post(
        "/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": [attempt.pk]}, follow=True
    )

    # then
    assert [str(m) for m in done.context["messages"] if m.level == messages.SUCCESS] == [
        "Unlocked locked-out@alpha.test: they can sign in again now."
    ]
    login = Client(HTTP_HOST="alpha.localhost").post(
        "/admin/login/?next=/admin/", {"username": "locked-out@alpha.test", "password": PASSWORD}
    )
    assert login.status_code == 302
    with tenant_context(alpha):
        entry = LogEntry.objects.get(
            action=LogEntry.Action.DELETE, object_repr__startswith="Attempted Access"
        )
        assert entry.changes_dict["lockout"][1] == "unlocked" and entry.actor_id == admin.pk
    connection.set_schema_to_public()

    # and: the bare delete page is not a way around the audit
    assert client.get(f"/admin/axes/accessattempt/{attempt.pk}/delete/").status_code in (302, 403)


def test_roles_without_the_unlock_permission_cannot_see_lockouts(alpha, make_user, client_for):
    revops = make_user(alpha, Role.REVOPS, email="revops-lock@alpha.test")
    assert client_for(alpha, revops).get("/admin/axes/accessattempt/").status_code == 403


def test_operators_group_can_unlock_on_the_public_host(db):
    connection.set_schema_to_public()
    group = Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name)
    assert {"view_accessattempt", "delete_accessattempt"} <= set(
        group.permissions.values_list("codename", flat=True)
    )
    assert Tenant.objects.filter(schema_name="public").exists()
