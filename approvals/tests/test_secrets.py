"""The Slack webhook URL is a secret: encrypted at rest, written but never shown back, masked in the
audit log; and /healthz tells an anonymous caller which part fails, never why."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from approvals.models import EscalationPolicy
from tenants.roles import Role

pytestmark = pytest.mark.django_db

SECRET_PART = "T000/B000/XsEcReTtOkEn"
WEBHOOK = f"https://hooks.slack.com/services/{SECRET_PART}"
ADMIN_URL = "/admin/approvals/escalationpolicy/"


@pytest.fixture
def in_alpha(alpha):
    connection.set_tenant(alpha)
    return alpha


def _client(alpha, make_user, client_for, role):
    client = client_for(alpha, make_user(alpha, role))
    connection.set_tenant(alpha)
    return client


def _policy_form(**extra) -> dict:
    return {
        "l2_after_minutes": 240,
        "l3_after_minutes": 480,
        "l4_after_minutes": 1440,
        "l2_contact": "",
        "l3_contact": "",
        "l4_contact": "",
        "default_deadline_hours": 72,
        **extra,
    }


def test_the_webhook_url_is_encrypted_at_rest(in_alpha):
    policy = EscalationPolicy.get_solo()
    policy.slack_webhook_url = WEBHOOK
    policy.save()

    with connection.cursor() as cursor:
        cursor.execute("SELECT slack_webhook_url FROM approvals_escalationpolicy")
        (stored,) = cursor.fetchone()

    assert SECRET_PART not in stored
    assert EscalationPolicy.get_solo().slack_webhook_url == WEBHOOK


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AE, Role.REVOPS, Role.TENANT_ADMIN], ids=str)
def test_no_role_sees_the_webhook_url_back(alpha, make_user, client_for, role):
    connection.set_tenant(alpha)
    policy = EscalationPolicy.get_solo()
    policy.slack_webhook_url = WEBHOOK
    policy.save()
    client = _client(alpha, make_user, client_for, role)

    page = client.get(ADMIN_URL, follow=True)
    connection.set_tenant(alpha)

    assert page.status_code in (200, 403)
    assert SECRET_PART not in page.content.decode()
    if page.status_code == 200:
        assert "Set (write-only)" in page.content.decode()


def test_the_admin_writes_keeps_and_clears_the_webhook_url(alpha, make_user, client_for):
    client = _client(alpha, make_user, client_for, Role.TENANT_ADMIN)

    written = client.post(ADMIN_URL, _policy_form(new_slack_webhook_url=WEBHOOK), follow=True)
    connection.set_tenant(alpha)
    assert written.status_code == 200
    assert EscalationPolicy.get_solo().slack_webhook_url == WEBHOOK
    assert SECRET_PART not in written.content.decode()

    # an edit that leaves the field empty keeps the stored URL
    client.post(ADMIN_URL, _policy_form(l2_contact="lead@a.test"))
    connection.set_tenant(alpha)
    assert EscalationPolicy.get_solo().slack_webhook_url == WEBHOOK

    client.post(ADMIN_URL, _policy_form(clear_slack_webhook_url="on"))
    connection.set_tenant(alpha)
    assert EscalationPolicy.get_solo().slack_webhook_url == ""


def test_the_admin_refuses_a_webhook_url_that_is_not_https(alpha, make_user, client_for):
    client = _client(alpha, make_user, client_for, Role.TENANT_ADMIN)

    response = client.post(ADMIN_URL, _policy_form(new_slack_webhook_url="http://127.0.0.1:6379/"))
    connection.set_tenant(alpha)

    assert response.status_code == 200
    assert "https" in response.content.decode()
    assert EscalationPolicy.get_solo().slack_webhook_url == ""


def test_the_audit_log_masks_the_webhook_url(alpha, make_user, client_for):
    client = _client(alpha, make_user, client_for, Role.TENANT_ADMIN)
    client.post(ADMIN_URL, _policy_form(new_slack_webhook_url=WEBHOOK))
    connection.set_tenant(alpha)
    policy = EscalationPolicy.get_solo()
    policy.slack_webhook_url = WEBHOOK.replace("XsEc", "YsEc")
    policy.save()

    entries = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(EscalationPolicy))
    recorded = " ".join(f"{entry.changes} {entry.changes_text}" for entry in entries)

    assert entries.count() >= 2
    assert "slack_webhook_url" in recorded, "the change itself is recorded"
    assert "ReTtOkEn" not in recorded and "hooks.slack.com" not in recorded
    viewer = _client(alpha, make_user, client_for, Role.TENANT_ADMIN)
    page = viewer.get("/admin/auditlog/logentry/", follow=True)
    connection.set_tenant(alpha)
    assert "ReTtOkEn" not in page.content.decode()
