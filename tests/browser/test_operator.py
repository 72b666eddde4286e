"""A platform operator, on the public host, creates a tenant and grants a person access to it; the
person then signs in on the new tenant's own host."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from playwright.sync_api import expect

from tenants.models import Tenant, TenantAccessGrant
from tenants.roles import Role

PASSWORD = "Journey-pass-4821!"  # long and mixed: the tenant form may validate passwords


@pytest.fixture
def operator(public_site) -> User:
    """A platform operator in public. The flush after this test does not reach public, so the
    login stays for the session (made idempotently); deleting it there is not possible, since the
    delete cascades to tenant-only tables such as the API tokens, which public does not have."""
    connection.set_schema_to_public()
    user, _ = User.objects.get_or_create(username="operator@browser.test", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))
    return user


@pytest.fixture
def new_slug(browser_tenant) -> Iterator[str]:
    """A slug no run has used; the tenant made under it is removed again (schema, host, grants),
    so no later test's fan-out over active tenants finds it."""
    slug = f"journey{uuid.uuid4().hex[:8]}"
    yield slug
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(slug=slug):
        TenantAccessGrant.objects.filter(tenant=tenant).delete()
        tenant.delete(force_drop=True)


def test_operator_creates_a_tenant_and_grants_a_person_access(
    public_site, site_of, operator, new_slug, log_in, page, new_context, screenshot
):
    log_in(public_site, operator)

    # the operator adds a tenant on the public host
    page.goto(public_site.url("/admin/tenants/tenant/add/"))
    expect(page.get_by_role("heading", name="Add tenant")).to_be_visible()
    page.locator("[name=name]").fill("Journey Co")
    page.locator("[name=slug]").fill(new_slug)
    page.locator("[name=admin_email]").fill(f"boss@{new_slug}.example")
    page.locator("[name=admin_password]").fill(PASSWORD)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("ul.messagelist")).to_contain_text(
        re.compile(rf"Tenant Journey Co is ready at http://{new_slug}\.localhost(:\d+)?/admin/")
    )
    expect(page.locator("#result_list")).to_contain_text(f"{new_slug}.localhost")
    screenshot("1-tenant-created")

    # and grants a person RevOps access to it
    page.goto(public_site.url("/admin/tenants/tenantaccessgrant/add/"))
    expect(page.get_by_role("heading", name="Grant tenant access")).to_be_visible()
    page.locator("[name=email]").fill("sam@agency.example")
    page.locator("[name=full_name]").fill("Sam Agency")
    page.locator("select[name=tenants]").select_option(label=["Journey Co"])
    page.locator("select[name=role]").select_option(label="RevOps")
    page.locator("[name=password]").fill(PASSWORD)
    screenshot("2-grant-form")
    page.get_by_role("button", name="Grant access").click()
    expect(page.locator("ul.messagelist")).to_contain_text(
        "Access granted: sam@agency.example now has RevOps access to Journey Co."
    )
    expect(page.locator("#result_list tr", has_text="sam@agency.example")).to_contain_text("Journey Co")
    screenshot("3-grant-listed")

    # then that person signs in on the new tenant's host and lands in its console
    tenant = Tenant.objects.get(slug=new_slug)
    person = new_context().new_page()
    person.goto(site_of(tenant).url("/admin/"))
    person.locator("[name=username]").fill("sam@agency.example")
    person.locator("[name=password]").fill(PASSWORD)
    person.get_by_role("button", name=re.compile("log in", re.I)).click()
    expect(person.get_by_role("heading", name="Journey Co — status")).to_be_visible()
    expect(person.locator("#user-tools")).to_contain_text(re.compile(r"Welcome,\s+Sam\."))
    screenshot("4-person-signed-in", of=person)
