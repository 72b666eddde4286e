"""A credential's base URL is the vendor's own or one the operators allowed: nothing else is called with
the tenant's token, and what a vendor answers on an error is its JSON message, never its raw body."""

from __future__ import annotations

import httpx
import pytest
import respx
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings

from connectors.errors import MAX_VENDOR_MESSAGE, FatalError, parse_vendor_message
from connectors.http import ClientConfig, VendorHTTP
from connectors.models import Credential
from connectors.probe import connection_test
from tenants.roles import Role

pytestmark = pytest.mark.django_db

# What production looks like: no allow-list, no loopback (the tests' own settings allow loopback).
PRODUCTION = {"CONNECTOR_BASE_URL_ALLOWLIST": [], "CONNECTOR_ALLOW_LOOPBACK": False}

REFUSED = [
    "http://127.0.0.1:6379",
    "http://localhost:8000/admin/",
    "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/",
    "https://evil.example",
    "https://api.hubapi.com.evil.example",
    "https://api.hubapi.com@evil.example",
    "https://user:pw@api.hubapi.com",
    "http://api.hubapi.com",  # the vendor, but in clear: the token would travel unencrypted
    "https://api.hubapi.com:8443",
    "https://services.leadconnectorhq.com",  # another vendor's host
    "file:///etc/passwd",
]


@pytest.fixture
def tenant_admin(alpha, make_user, client_for):
    client = client_for(alpha, make_user(alpha, Role.TENANT_ADMIN))
    connection.set_tenant(alpha)
    return client


@pytest.fixture
def in_alpha(alpha):
    connection.set_tenant(alpha)
    return alpha


@override_settings(**PRODUCTION)
@pytest.mark.parametrize("url", REFUSED)
def test_the_model_refuses_a_base_url_that_is_not_the_vendors(in_alpha, url):
    credential = Credential(system="hubspot", base_url=url, secret={"token": "t"})

    with pytest.raises(ValidationError) as error:
        credential.full_clean()

    assert "base_url" in error.value.message_dict


@override_settings(**PRODUCTION)
@pytest.mark.parametrize(
    "url", ["", "https://api.hubapi.com", "https://api.hubapi.com/", "https://API.hubapi.com"]
)
def test_the_model_accepts_the_vendors_own_base_url(in_alpha, url):
    Credential(system="hubspot", base_url=url, secret={"token": "t"}).full_clean()


@override_settings(
    CONNECTOR_BASE_URL_ALLOWLIST=["https://eu1.api.hubapi.com"], CONNECTOR_ALLOW_LOOPBACK=False
)
def test_the_model_accepts_an_allow_listed_origin(in_alpha):
    Credential(system="hubspot", base_url="https://eu1.api.hubapi.com", secret={"token": "t"}).full_clean()
    with pytest.raises(ValidationError):
        Credential(
            system="hubspot", base_url="https://eu2.api.hubapi.com", secret={"token": "t"}
        ).full_clean()


@override_settings(CONNECTOR_BASE_URL_ALLOWLIST=["http://127.0.0.1:8025"], CONNECTOR_ALLOW_LOOPBACK=False)
def test_the_demo_sandbox_is_allowed_only_on_its_own_origin(in_alpha):
    Credential(system="hubspot", base_url="http://127.0.0.1:8025", secret={"token": "t"}).full_clean()
    with pytest.raises(ValidationError):
        Credential(system="hubspot", base_url="http://127.0.0.1:6379", secret={"token": "t"}).full_clean()


@override_settings(**PRODUCTION)
def test_the_admin_form_refuses_a_loopback_base_url(alpha, tenant_admin):
    response = tenant_admin.post(
        "/admin/connectors/credential/add/",
        {"system": "hubspot", "base_url": "http://127.0.0.1:6379", "timeout_seconds": 5, "new_secret": "tok"},
    )
    connection.set_tenant(alpha)

    assert response.status_code == 200
    assert "is not an address of HubSpot" in response.content.decode()
    assert not Credential.objects.exists()


@override_settings(**PRODUCTION)
def test_test_connection_sends_no_token_to_a_stored_loopback_url(alpha, tenant_admin):
    # given a credential written before validation existed (or straight into the table)
    credential = Credential.objects.create(
        system="hubspot", base_url="http://127.0.0.1:9", secret={"token": "tenant-token"}
    )

    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="127.0.0.1").respond(200, json={"results": []})
        response = tenant_admin.post(
            "/admin/connectors/credential/",
            {"action": "test_connection", "_selected_action": [credential.pk]},
            follow=True,
        )
    connection.set_tenant(alpha)

    assert not route.called, "nothing may be sent to an address that is not the vendor's"
    page = response.content.decode()
    assert "is not an address of HubSpot" in page


@override_settings(**PRODUCTION)
def test_the_client_refuses_a_base_url_that_is_not_the_vendors():
    with pytest.raises(FatalError, match="is not an address of HubSpot"):
        VendorHTTP(ClientConfig(system="hubspot", base_url="http://127.0.0.1:9", token="t", tenant_key="x"))


@override_settings(**PRODUCTION)
def test_the_client_refuses_an_absolute_url_to_another_host():
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route().respond(200, json={})
        http = VendorHTTP(ClientConfig(system="hubspot", base_url="", token="t", tenant_key="x"))
        with pytest.raises(FatalError, match="is not an address of HubSpot"):
            http.request("GET", "http://127.0.0.1:6379/")
    assert not route.called


@override_settings(**PRODUCTION)
def test_test_connection_shows_the_vendors_json_message_not_its_body(in_alpha):
    Credential.objects.create(system="hubspot", secret={"token": "tenant-token"})
    with respx.mock(base_url="https://api.hubapi.com", assert_all_called=False) as mock:
        mock.route().respond(
            403, text="<html>root:x:0:0:root internal-banner tenant-token</html>", content_type="text/html"
        )
        result = connection_test("hubspot")

    shown = " ".join(result.values())
    assert "root:x" not in shown and "internal-banner" not in shown and "<html>" not in shown
    assert "HTTP 403" in shown


def test_a_vendor_json_message_is_kept_and_trimmed():
    long = "x" * (MAX_VENDOR_MESSAGE * 3)
    request = httpx.Request("GET", "https://api.hubapi.com/")

    message, _ = parse_vendor_message("hubspot", httpx.Response(400, json={"message": long}, request=request))
    plain, _ = parse_vendor_message("hubspot", httpx.Response(400, text="secret page", request=request))
    unknown, _ = parse_vendor_message(
        "hubspot", httpx.Response(400, json={"html": "secret"}, request=request)
    )

    assert message == "x" * MAX_VENDOR_MESSAGE
    assert plain == "Bad Request" and unknown == "Bad Request"
