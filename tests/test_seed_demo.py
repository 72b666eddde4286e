"""`make demo`'s data step runs in the suite: the seeded tenants, people and requests are there and
the pages the README sends a newcomer to answer."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from approvals.models import ActionRequest, EscalationPolicy, Status
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_the_demo_the_readme_describes(monkeypatch):
    monkeypatch.setattr("tenants.management.commands.seed_demo.SANDBOX_URL", "http://127.0.0.1:9")
    call_command("seed_demo", "--port", "8000", stdout=open("/dev/null", "w"))  # noqa: SIM115
    connection.set_schema_to_public()
    acme = Tenant.objects.get(slug="acme")
    assert str(acme.time_zone) == "America/New_York"
    with tenant_context(acme):
        assert ActionRequest.objects.filter(status=Status.PENDING).exists()
        assert EscalationPolicy.get_solo().l2_contact == "lead@acme.example"
        from django.contrib.auth.models import User

        ae = User.objects.get(username="ae@acme.example")
    connection.set_schema_to_public()
    client = Client(HTTP_HOST="acme.localhost")
    with tenant_context(acme):
        client.force_login(ae)
    connection.set_schema_to_public()
    home = client.get("/admin/")
    assert home.status_code == 200 and b'id="pending-count"' in home.content
    # a month of history fills the chart, and today's trouble shows
    page = home.content.decode()
    totals = re.sub(r"<[^>]+>", "", page[page.index('id="activity-totals"') :].split("</p>", 1)[0])
    assert re.search(r"[1-9]\d* executed", totals) and re.search(r"[1-9]\d* rejected", totals), totals
    with tenant_context(acme):
        history = ActionRequest.objects.filter(idempotency_key__startswith="demo-history-")
        assert history.filter(status=Status.FAILED).exists()
        assert history.filter(status=Status.UNKNOWN).exists()
    connection.set_schema_to_public()
    first = client.get("/admin/approvals/actionrequest/")
    assert first.status_code == 200 and b"Northwind" in first.content
