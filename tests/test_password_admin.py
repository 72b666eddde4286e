"""Nobody sets another person's password in the admin: a tenant admin who could would sign in as
an AE and approve in their name (four eyes defeated). One's own password stays changeable."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django_tenants.utils import tenant_context

from tenants.roles import Role
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.django_db


def _user(tenant, pk) -> User:
    with tenant_context(tenant):
        user = User.objects.get(pk=pk)
    connection.set_schema_to_public()
    return user


def test_a_tenant_admin_cannot_set_an_ae_password(alpha, make_user, client_for):
    admin_user = make_user(alpha, Role.TENANT_ADMIN)
    ae = make_user(alpha, Role.AE)
    client = client_for(alpha, admin_user)
    url = f"/admin/auth/user/{ae.pk}/password/"

    page = client.get(url)
    posted = client.post(url, {"password1": "Taken-Over-2026!", "password2": "Taken-Over-2026!"})
    change = client.get(f"/admin/auth/user/{ae.pk}/change/").content.decode()

    assert page.status_code == 403 and posted.status_code == 403
    assert _user(alpha, ae.pk).check_password(PASSWORD)
    assert not _user(alpha, ae.pk).check_password("Taken-Over-2026!")
    assert "Only this person can change their password" in change


def test_ones_own_password_can_be_changed(alpha, make_user, client_for):
    admin_user = make_user(alpha, Role.TENANT_ADMIN)
    client = client_for(alpha, admin_user)
    url = f"/admin/auth/user/{admin_user.pk}/password/"

    assert client.get(url).status_code == 200
    done = client.post(url, {"password1": "A-new-long-pass-2026", "password2": "A-new-long-pass-2026"})

    assert done.status_code == 302
    assert _user(alpha, admin_user.pk).check_password("A-new-long-pass-2026")
    assert "Only this person" not in client.get(f"/admin/auth/user/{admin_user.pk}/change/").content.decode()
