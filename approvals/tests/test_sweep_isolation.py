"""The approvals sweep survives a failing step, and escalation notices survive a failing SMTP.

A broken mail server used to make ``requests_escalate`` raise from its on-commit notice, which
made the whole sweep raise, so the deferred sends it would release next were never released.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.utils import timezone

from approvals.models import EscalationPolicy
from approvals.tests.factories import propose_email, set_phase

pytestmark = pytest.mark.django_db

STEPS = ("expired", "delegations_ended", "escalated", "released", "redispatched")


class RefusingSMTP(BaseEmailBackend):
    """An SMTP server that is down."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


@pytest.fixture
def tenant(alpha):
    connection.set_tenant(alpha)
    set_phase("assisted")
    yield alpha
    connection.set_schema_to_public()


@pytest.fixture
def smtp_down(settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingSMTP"


@pytest.fixture
def due_for_escalation(tenant):
    policy = EscalationPolicy.get_solo()
    policy.l2_contact = "lead@a.test"
    policy.save()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        request = propose_email(deadline=start + timedelta(hours=30))
    return request, start + timedelta(hours=4.1)


def test_escalation_notice_with_smtp_down_is_logged_not_raised(due_for_escalation, smtp_down, caplog):
    from approvals.notify import notify_escalation

    request, _ = due_for_escalation
    caplog.set_level(logging.WARNING, logger="approvals.notify")

    notify_escalation(request, 2)  # no exception

    assert any(
        "escalation notice" in r.getMessage() and f"#{request.pk}" in r.getMessage() for r in caplog.records
    )


def test_escalation_with_smtp_down_escalates_and_the_commit_hook_does_not_raise(
    due_for_escalation, smtp_down, django_capture_on_commit_callbacks
):
    from approvals.services import requests_escalate

    request, later = due_for_escalation
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True) as hooks:
        assert requests_escalate() == 1

    assert len(hooks) == 1
    request.refresh_from_db()
    assert request.escalation_level == 2


def test_a_notice_that_raises_anyway_does_not_fail_the_escalation(
    due_for_escalation, django_capture_on_commit_callbacks
):
    from approvals.services import requests_escalate

    request, later = due_for_escalation
    with (
        mock.patch("approvals.notify.notify_escalation", side_effect=RuntimeError("template broke")),
        time_machine.travel(later, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert requests_escalate() == 1  # the hook is robust: logged by Django, not raised

    request.refresh_from_db()
    assert request.escalation_level == 2


def test_one_failing_sweep_step_does_not_stop_the_others(tenant, caplog):
    from approvals import tasks

    caplog.set_level(logging.ERROR, logger="approvals.tasks")
    others = {name: mock.Mock(return_value=1) for name in STEPS if name != "escalated"}
    with (
        mock.patch.object(tasks, "requests_expire", others["expired"]),
        mock.patch.object(tasks, "delegations_fall_back", others["delegations_ended"]),
        mock.patch.object(tasks, "requests_escalate", side_effect=smtplib.SMTPServerDisconnected("gone")),
        mock.patch.object(tasks, "requests_release_deferred", others["released"]),
        mock.patch.object(tasks, "requests_redispatch_stale", others["redispatched"]),
    ):
        result = tasks.sweep.apply(args=(tenant.schema_name,)).get()

    assert all(step.call_count == 1 for step in others.values())
    assert {name: result[name] for name in others} == dict.fromkeys(others, 1)
    assert result["escalated"] is None
    assert result["errors"] == {"escalated": "SMTPServerDisconnected: gone"}
    assert any("escalated" in r.getMessage() for r in caplog.records)


def test_every_step_failing_is_reported_and_the_sweep_still_returns(tenant):
    from approvals import tasks

    patches = [
        mock.patch.object(tasks, name, side_effect=RuntimeError(name))
        for name in (
            "requests_expire",
            "delegations_fall_back",
            "requests_escalate",
            "requests_release_deferred",
            "requests_redispatch_stale",
        )
    ]
    for patch in patches:
        patch.start()
    try:
        result = tasks.sweep.apply(args=(tenant.schema_name,)).get()
    finally:
        for patch in patches:
            patch.stop()

    assert set(result["errors"]) == set(STEPS)
    assert all(result[name] is None for name in STEPS)


def test_a_clean_sweep_reports_counts_and_no_errors(tenant):
    from approvals import tasks

    result = tasks.sweep.apply(args=(tenant.schema_name,)).get()

    assert set(result) == {*STEPS, "errors"} and result["errors"] == {}
    assert all(isinstance(result[name], int) for name in STEPS)
