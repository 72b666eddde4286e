"""The platform admin's forms people trip on: creating a tenant (password rules, the link to its
admin), deactivating one (a confirmation page first) and granting access (viewer by default, a
set-password email for a person without a password)."""

from __future__ import annotations

import re

import pytest
from auditlog.models import LogEntry
from django.contrib import messages
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_exists, tenant_context

from mh1.links import host_url
from tenants.models import Tenant, TenantAccessGrant
from tenants.roles import Role
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.django_db

TENANTS = "/admin/tenants/tenant/"
GRANT = "/admin/tenants/tenantaccessgrant/add/"


@pytest.fixture
def operator(db):
    connection.set_schema_to_public()
    user = User.objects.create_user("op@mh1.test", email="op@mh1.test", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))
    return user


@pytest.fixture
def operator_on(operator):
    """The operator's client on the public host as typed in the browser (``localhost:8000``)."""

    def make(host: str = "localhost") -> Client:
        client = Client(HTTP_HOST=host)
        client.force_login(operator)
        return client

    return make


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in response.context["messages"]]


def _login(host: str, username: str, password: str) -> int:
    response = Client(HTTP_HOST=host).post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}
    )
    return response.status_code


# --- tenant creation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("password123", "This password is too common."),
        ("40817236451", "This password is entirely numeric."),
        ("k7#Qx", "This password is too short."),
        ("boss@weak-pw", "The password is too similar to the"),
    ],
)
def test_a_weak_first_admin_password_is_a_field_error_and_creates_nothing(operator_on, password, reason):
    # given
    tenants_before = Tenant.objects.count()

    # when
    response = operator_on().post(
        f"{TENANTS}add/",
        {
            "name": "Weak",
            "slug": "weak-pw",
            "admin_email": "boss@weak-pw.example",
            "admin_password": password,
        },
    )

    # then: the reason is on the password field, and nothing was provisioned
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(reason in e for e in errors["admin_password"]), errors
    assert Tenant.objects.count() == tenants_before
    assert not schema_exists("weak_pw")


def test_the_ready_message_links_to_the_new_tenants_admin_on_the_operators_port(operator_on):
    response = operator_on("localhost:8000").post(
        f"{TENANTS}add/",
        {"name": "Portly", "slug": "portly", "admin_email": "a@portly.example", "admin_password": PASSWORD},
        follow=True,
    )

    [(level, text)] = [(lvl, t) for lvl, t in _messages(response) if "is ready at" in t]
    assert level == messages.SUCCESS
    assert 'Tenant Portly is ready at <a href="http://portly.localhost:8000/admin/">' in text
    assert 'href="http://portly.localhost:8000/admin/"' in response.content.decode()  # a real link


def test_the_tenants_time_zone_is_set_at_creation_and_changed_on_its_page(operator_on):
    client = operator_on("localhost:8000")
    client.post(
        f"{TENANTS}add/",
        {
            "name": "Zoned",
            "slug": "zoned",
            "time_zone": "Asia/Tokyo",
            "admin_email": "a@zoned.example",
            "admin_password": PASSWORD,
        },
    )
    tenant = Tenant.objects.get(slug="zoned")
    assert str(tenant.time_zone) == "Asia/Tokyo"

    refused = client.post(f"{TENANTS}{tenant.pk}/change/", {"name": "Zoned", "time_zone": "Mars/Olympus"})
    assert refused.status_code == 200 and "time_zone" in refused.context["adminform"].form.errors
    client.post(
        f"{TENANTS}{tenant.pk}/change/",
        {"name": "Zoned", "time_zone": "Europe/Lisbon", **_no_domains()},
    )
    tenant.refresh_from_db()
    assert str(tenant.time_zone) == "Europe/Lisbon"


def _no_domains() -> dict[str, str]:
    prefix = "domains"
    return {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}


def test_host_links_keep_the_request_port_else_the_demo_port(rf, settings):
    settings.DEBUG, settings.DEMO_PORT = True, "8123"
    assert host_url("acme.localhost", "/admin/") == "http://acme.localhost:8123/admin/"
    assert host_url("acme.localhost", "/x/", request=rf.get("/", HTTP_HOST="localhost:9000")) == (
        "http://acme.localhost:9000/x/"
    )
    assert host_url("acme.localhost", "/x/", request=rf.get("/", HTTP_HOST="localhost")) == (
        "http://acme.localhost/x/"
    )
    settings.DEBUG = False
    assert host_url("acme.example.com", "/admin/") == "https://acme.example.com/admin/"


# --- deactivation ------------------------------------------------------------------------------


def test_deactivating_from_the_list_asks_first_and_says_how_many_logins_it_blocks(
    operator_on, bravo, make_user
):
    # given: bravo has its first admin and two more active logins, and one revoked
    make_user(bravo, Role.AE, email="ae@bravo.test")
    make_user(bravo, Role.VIEWER, email="viewer@bravo.test")
    with tenant_context(bravo):
        User.objects.create_user("gone@bravo.test", is_active=False)
        expected = User.objects.filter(is_active=True).count()
    connection.set_schema_to_public()
    assert expected == 3
    client = operator_on()
    selected = {"action": "deactivate", "_selected_action": [bravo.pk]}

    # when: the action is chosen
    asked = client.post(TENANTS, selected)

    # then: a confirmation page, and nothing has happened yet
    html = asked.content.decode()
    assert asked.status_code == 200 and "Are you sure?" in html
    assert "blocks <strong>3 active logins</strong>" in html
    assert "3 users can no longer sign in at bravo.localhost" in html
    assert 'name="post" value="yes"' in html and f'name="_selected_action" value="{bravo.pk}"' in html
    bravo.refresh_from_db()
    assert bravo.is_active
    assert Client(HTTP_HOST="bravo.localhost").get("/admin/login/").status_code == 200

    # when: confirmed
    done = client.post(TENANTS, {**selected, "post": "yes"}, follow=True)

    # then: deactivated, said so, audited with the operator as actor
    assert any(
        level == messages.SUCCESS and "Deactivated 1 tenant(s): Bravo" in text
        for level, text in _messages(done)
    )
    bravo.refresh_from_db()
    assert not bravo.is_active
    assert Client(HTTP_HOST="bravo.localhost").get("/admin/login/").status_code == 404
    entry = LogEntry.objects.get_for_object(bravo).latest("timestamp")
    assert entry.changes_dict["is_active"] == ["True", "False"] and entry.actor.username == "op@mh1.test"


def test_the_change_pages_deactivate_button_confirms_and_reactivate_acts_directly(operator_on, bravo):
    client = operator_on()
    change = f"{TENANTS}{bravo.pk}/change/"
    assert f'href="{TENANTS}{bravo.pk}/deactivate/"' in client.get(change).content.decode()

    # the button's page asks; a POST that does not confirm does nothing
    asked = client.get(f"{TENANTS}{bravo.pk}/deactivate/")
    assert asked.status_code == 200 and "Yes, deactivate" in asked.content.decode()
    client.post(f"{TENANTS}{bravo.pk}/deactivate/", {})
    bravo.refresh_from_db()
    assert bravo.is_active

    done = client.post(f"{TENANTS}{bravo.pk}/deactivate/", {"post": "yes"})
    assert done.status_code == 302 and done["Location"] == change
    bravo.refresh_from_db()
    assert not bravo.is_active

    # reactivation takes nothing away: one POST, no confirmation; a GET changes nothing
    page = client.get(change).content.decode()
    assert f'action="{TENANTS}{bravo.pk}/reactivate/"' in page and "Deactivate…" not in page
    assert client.get(f"{TENANTS}{bravo.pk}/reactivate/").status_code == 405
    back = client.post(f"{TENANTS}{bravo.pk}/reactivate/", follow=True)
    assert any("Reactivated Bravo" in text for _, text in _messages(back))
    bravo.refresh_from_db()
    assert bravo.is_active


def test_only_operators_reach_the_deactivation_page(bravo, make_user):
    # a public-host staff login without the operator role
    connection.set_schema_to_public()
    clerk = User.objects.create_user("clerk@mh1.test", password=PASSWORD, is_staff=True)
    client = Client(HTTP_HOST="localhost")
    client.force_login(clerk)
    assert client.get(f"{TENANTS}{bravo.pk}/deactivate/").status_code == 403
    assert client.post(f"{TENANTS}{bravo.pk}/deactivate/", {"post": "yes"}).status_code == 403
    bravo.refresh_from_db()
    assert bravo.is_active


# --- access grants -----------------------------------------------------------------------------


def test_the_grant_form_offers_viewer_first(operator_on):
    html = operator_on().get(GRANT).content.decode()
    selected = re.findall(r'<option value="([a-z_]+)"[^>]*selected', html)
    assert selected == [Role.VIEWER.value]


def test_a_grant_without_a_password_emails_a_set_password_link_that_works(operator_on, alpha):
    # when: a new person is granted access with no password, the operator on localhost:8000
    response = operator_on("localhost:8000").post(
        GRANT,
        {
            "email": "New.Person@example.com",
            "full_name": "New Person",
            "tenants": [alpha.pk],
            "role": "viewer",
        },
        follow=True,
    )

    # then: the grant is made, the operator is told an email went out, and it did
    texts = [text for _, text in _messages(response)]
    assert "new.person@example.com now has Viewer access to Alpha." in texts[0]
    assert "a link to set one was emailed to new.person@example.com for Alpha" in texts[1]
    [email] = mail.outbox
    assert email.to == ["new.person@example.com"] and "Alpha" in email.subject
    link = re.search(r"http://alpha\.localhost:8000(/reset/[^/\s]+/[^/\s]+/)", email.body)
    assert link, email.body
    assert "op@mh1.test gave you Viewer access to Alpha" in email.body

    # and: the audit says who sent what, on the grant
    grant = TenantAccessGrant.objects.get(email="new.person@example.com", tenant=alpha)
    entry = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(TenantAccessGrant), object_pk=str(grant.pk)
    ).latest("timestamp")
    assert entry.changes_dict["set_password_link"] == ["", "emailed to new.person@example.com"]
    assert entry.actor.username == "op@mh1.test"

    # when: the person opens the link on the tenant's host and sets a password
    assert _login("alpha.localhost", "new.person@example.com", "a-fresh-passphrase-9") == 200
    person = Client(HTTP_HOST="alpha.localhost:8000")
    form_page = person.get(link.group(1), follow=True)
    assert form_page.status_code == 200 and "MH1 Console — Alpha" in form_page.content.decode()
    done = person.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-fresh-passphrase-9", "new_password2": "a-fresh-passphrase-9"},
        follow=True,
    )

    # then: they can sign in, and the link is spent
    assert "Password reset complete" in done.content.decode()
    assert _login("alpha.localhost", "new.person@example.com", "a-fresh-passphrase-9") == 302
    assert "invalid" in Client(HTTP_HOST="alpha.localhost").get(link.group(1), follow=True).content.decode()


def test_a_grant_to_someone_who_has_a_password_sends_nothing(operator_on, alpha, make_user):
    make_user(alpha, Role.VIEWER, email="has.password@example.com")
    response = operator_on().post(
        GRANT, {"email": "has.password@example.com", "tenants": [alpha.pk], "role": "ae"}, follow=True
    )
    assert [text for _, text in _messages(response)] == [
        "Access granted: has.password@example.com now has Account executive access to Alpha."
    ]
    assert mail.outbox == []


def test_a_weak_grant_password_is_a_field_error_and_grants_nothing(operator_on, alpha):
    response = operator_on().post(
        GRANT, {"email": "weak@example.com", "tenants": [alpha.pk], "role": "viewer", "password": "12345678"}
    )
    assert response.status_code == 200
    assert "This password is too common." in response.context["form"].errors["password"]
    assert not TenantAccessGrant.objects.filter(email="weak@example.com").exists()


class _BrokenBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP server refused the connection")


def test_a_set_password_email_that_fails_is_said_and_audited_and_the_grant_stays(
    operator_on, alpha, settings
):
    settings.EMAIL_BACKEND = f"{__name__}._BrokenBackend"

    response = operator_on().post(
        GRANT, {"email": "unlucky@example.com", "tenants": [alpha.pk], "role": "viewer"}, follow=True
    )

    [(_, granted), (level, warning)] = _messages(response)
    assert "unlucky@example.com now has Viewer access to Alpha." in granted
    assert level == messages.WARNING
    assert "could not be sent (ConnectionRefusedError: SMTP server refused the connection)" in warning
    assert "Forgotten your login credentials?" in warning
    grant = TenantAccessGrant.objects.get(email="unlucky@example.com", tenant=alpha)
    entry = LogEntry.objects.filter(object_pk=str(grant.pk), changes__has_key="set_password_link").get()
    assert entry.changes_dict["set_password_link"][1].startswith("not sent (ConnectionRefusedError")


def test_a_person_whose_link_expired_gets_a_new_one_from_the_login_page(alpha):
    # given: granted without a password (no usable password in alpha)
    from tenants.services import access_grant

    access_grant(acting_user=None, email="late@example.com", tenants=[alpha], role=Role.VIEWER)
    login_page = Client(HTTP_HOST="alpha.localhost").get("/admin/login/").content.decode()
    assert 'href="/admin/password_reset/"' in login_page

    # when: they ask for a reset on the tenant's host
    client = Client(HTTP_HOST="alpha.localhost:8000")
    response = client.post("/admin/password_reset/", {"email": "late@example.com"}, follow=True)

    # then: a link on that host arrives (Django's own form skips logins without a password)
    assert response.status_code == 200
    [email] = mail.outbox
    assert re.search(r"http://alpha\.localhost:8000/reset/\S+/\S+/", email.body), email.body
