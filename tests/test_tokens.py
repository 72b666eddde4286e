"""API tokens: shown once, stored hashed, made only for oneself; a revoked grant takes them away and
its login cannot be re-enabled inside the tenant."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django_tenants.utils import tenant_context

from tenants.models import TenantAccessGrant
from tenants.policy.tokens import ApiToken, api_token_create, key_digest
from tenants.roles import Role
from tenants.services import access_revoke

pytestmark = pytest.mark.django_db

TOKENS = "/admin/policy/apitoken/"
ME = "/api/v1/me/"


@pytest.fixture
def people(alpha, make_user):
    return {
        "admin": make_user(alpha, Role.TENANT_ADMIN, email="tok-admin@alpha.test"),
        "ae": make_user(alpha, Role.AE, email="tok-ae@alpha.test"),
    }


def _in(alpha, fn, *args, **kwargs):
    with tenant_context(alpha):
        result = fn(*args, **kwargs)
    connection.set_schema_to_public()
    return result


def _auth(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


def test_the_stock_token_admin_is_gone(alpha, people, client_for):
    client = client_for(alpha, people["admin"])

    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert client.get("/admin/authtoken/tokenproxy/add/").status_code == 404


def test_a_key_is_shown_once_and_stored_hashed(alpha, people, client_for):
    client = client_for(alpha, people["admin"])

    created = client.post(f"{TOKENS}add/", {"name": "CRM script"})

    assert created.status_code == 200 and "no-store" in created["Cache-Control"]
    key = created.context["key"]
    assert key.startswith("mh1_") and key in created.content.decode()
    token = _in(alpha, ApiToken.objects.get, name="CRM script")
    assert token.digest == key_digest(key) and key not in (token.digest, token.prefix)
    assert token.user_id == people["admin"].pk
    for page in (TOKENS, "/admin/", f"{TOKENS}{token.pk}/delete/"):
        body = client.get(page).content.decode()
        assert key not in body, page
    assert client.get(ME, **_auth(key)).json()["username"] == people["admin"].username


def test_a_person_creates_tokens_only_for_themself(alpha, people, client_for):
    client = client_for(alpha, people["admin"])
    _, ae_key = _in(alpha, api_token_create, acting_user=people["ae"], name="ae-script")

    # a user field in the form is ignored: the token is the acting person's
    created = client.post(f"{TOKENS}add/", {"name": "as the AE", "user": people["ae"].pk})
    listed = client.get(TOKENS).content.decode()

    key = created.context["key"]
    assert client.get(ME, **_auth(key)).json()["username"] == people["admin"].username
    assert "as the AE" in listed and "ae-script" not in listed
    ae_token = _in(alpha, ApiToken.objects.get, name="ae-script")
    client.post(f"{TOKENS}{ae_token.pk}/delete/", {"post": "yes"})
    assert _in(alpha, ApiToken.objects.filter(pk=ae_token.pk).exists)
    assert client_for(alpha).get(ME, **_auth(ae_key)).status_code == 200


def test_a_bad_or_stored_value_is_not_a_key(alpha, people, client_for):
    token, key = _in(alpha, api_token_create, acting_user=people["ae"], name="x")

    assert client_for(alpha).get(ME, **_auth("not-a-token")).status_code == 401
    assert client_for(alpha).get(ME, **_auth(token.digest)).status_code == 401
    assert client_for(alpha).get(ME, **_auth(key)).status_code == 200


def test_revoking_the_grant_deletes_the_persons_tokens(alpha, people, client_for):
    _, key = _in(alpha, api_token_create, acting_user=people["ae"], name="script")
    grant = TenantAccessGrant.objects.get(email=people["ae"].username, tenant=alpha)

    access_revoke(acting_user=None, grant=grant)
    connection.set_schema_to_public()

    assert _in(alpha, ApiToken.objects.filter(user_id=people["ae"].pk).count) == 0
    assert client_for(alpha).get(ME, **_auth(key)).status_code == 401


def test_a_tenant_admin_cannot_reactivate_a_revoked_login(alpha, people, client_for):
    ae = people["ae"]
    grant = TenantAccessGrant.objects.get(email=ae.username, tenant=alpha)
    access_revoke(acting_user=None, grant=grant)
    connection.set_schema_to_public()
    client = client_for(alpha, people["admin"])
    group = _in(alpha, lambda: ae.groups.get().pk)
    form = {
        "username": ae.username,
        "email": ae.username,
        "is_active": "on",
        "groups": [group],
    }

    response = client.post(f"/admin/auth/user/{ae.pk}/change/", form)

    assert response.status_code == 200, response.content[:300]
    assert "revoked by the platform" in response.content.decode()
    assert _in(alpha, lambda: User.objects.get(pk=ae.pk).is_active) is False
