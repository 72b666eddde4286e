"""Delegation: only someone holding the kind's scope hands a request on, never to themselves, and only
to a colleague whose role may approve that kind; a delegation grants nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django_tenants.utils import tenant_context
from guardian.models import UserObjectPermission

from approvals.errors import NotAllowed
from approvals.models import ActionRequest, ApproverRule, Event, Status
from approvals.services import action_delegate, action_propose
from approvals.tests.factories import propose_email, set_phase
from tenants.roles import Role

pytestmark = pytest.mark.django_db

API = "/api/v1/approvals/requests/"
ADMIN = "/admin/approvals/actionrequest/"
CRM_PAYLOAD = {"system": "hubspot", "email": "dana@prospect.example", "properties": {"jobtitle": "CEO"}}


@pytest.fixture
def people(alpha, make_user):
    users = {
        "admin": make_user(alpha, Role.TENANT_ADMIN, email="deleg-admin@alpha.test"),
        "revops": make_user(alpha, Role.REVOPS, email="deleg-revops@alpha.test"),
        "ae": make_user(alpha, Role.AE, email="deleg-ae@alpha.test"),
        "ae2": make_user(alpha, Role.AE, email="deleg-ae2@alpha.test"),
        "viewer": make_user(alpha, Role.VIEWER, email="deleg-viewer@alpha.test"),
    }
    with tenant_context(alpha):
        set_phase("assisted")
    connection.set_schema_to_public()
    return users


def _in(alpha, fn, *args, **kwargs):
    with tenant_context(alpha):
        result = fn(*args, **kwargs)
    connection.set_schema_to_public()
    return result


def _crm_write_assigned_to(user: User) -> ActionRequest:
    """A CRM write the roster routes to ``user`` (who may not hold its scope)."""
    ApproverRule.objects.create(kind="crm.upsert_contact", primary_approver=user, priority=1)
    request = action_propose(
        kind="crm.upsert_contact",
        payload=CRM_PAYLOAD,
        idempotency_key=f"deleg-crm-{user.pk}-{ActionRequest.objects.count()}",
        skill_run="skill-run-test",
    )
    assert request.assigned_to_id == user.pk
    return request


def _state(alpha, request_id: int) -> tuple[str, int | None, list[str], int]:
    def read():
        request = ActionRequest.objects.get(pk=request_id)
        verbs = list(Event.objects.filter(request=request).values_list("verb", flat=True))
        grants = UserObjectPermission.objects.filter(object_pk=str(request_id)).count()
        return request.status, request.assigned_to_id, verbs, grants

    return _in(alpha, read)


# --- the service -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["revops", "viewer"])
def test_assignee_without_the_scope_cannot_delegate_to_themselves(alpha, people, who):
    # given a CRM write routed to someone whose role may not approve CRM writes
    user = people[who]
    request = _in(alpha, _crm_write_assigned_to, user)

    # when they delegate it to themselves
    with pytest.raises(NotAllowed, match="cannot decide"):
        _in(alpha, action_delegate, request_id=request.pk, acting_user=user, to_user=user)

    # then nothing changed and they hold no scope on it
    status, _assignee, verbs, grants = _state(alpha, request.pk)
    assert (status, verbs, grants) == (Status.PENDING, ["proposed"], 0)


def test_assignee_without_the_scope_cannot_delegate_to_an_approver_either(alpha, people):
    request = _in(alpha, _crm_write_assigned_to, people["revops"])

    with pytest.raises(NotAllowed):
        _in(alpha, action_delegate, request_id=request.pk, acting_user=people["revops"], to_user=people["ae"])

    assert _state(alpha, request.pk)[1] == people["revops"].pk


def test_nobody_delegates_to_themselves(alpha, people):
    request = _in(alpha, propose_email)

    with pytest.raises(NotAllowed, match="yourself"):
        _in(alpha, action_delegate, request_id=request.pk, acting_user=people["ae"], to_user=people["ae"])

    assert _state(alpha, request.pk)[1:3] == (None, ["proposed"])


@pytest.mark.parametrize("who", ["revops", "viewer"])
def test_delegate_must_hold_the_scope_by_role(alpha, people, who):
    request = _in(alpha, propose_email)

    with pytest.raises(NotAllowed, match="role cannot approve"):
        _in(alpha, action_delegate, request_id=request.pk, acting_user=people["ae"], to_user=people[who])

    _status, assignee, verbs, grants = _state(alpha, request.pk)
    assert (assignee, verbs, grants) == (None, ["proposed"], 0)


def test_delegation_grants_no_scope(alpha, people):
    request = _in(alpha, propose_email)

    _in(alpha, action_delegate, request_id=request.pk, acting_user=people["ae"], to_user=people["ae2"])

    _status, assignee, verbs, grants = _state(alpha, request.pk)
    assert (assignee, verbs[-1], grants) == (people["ae2"].pk, "delegated", 0)


# --- the API -----------------------------------------------------------------------------------


def test_api_revops_assignee_cannot_self_delegate_and_approve_a_crm_write(alpha, people, client_for):
    request = _in(alpha, _crm_write_assigned_to, people["revops"])
    client = client_for(alpha, people["revops"])

    delegated = client.post(
        f"{API}{request.pk}/delegate/",
        {"to_user": people["revops"].username},
        content_type="application/json",
    )
    approved = client.post(f"{API}{request.pk}/approve/", {}, content_type="application/json")

    assert delegated.status_code == 403 and delegated.json()["code"] == "not_allowed"
    assert approved.status_code == 403
    status, assignee, verbs, grants = _state(alpha, request.pk)
    assert (status, assignee, verbs, grants) == (Status.PENDING, people["revops"].pk, ["proposed"], 0)


def test_api_delegate_choices_and_validation_show_only_role_approvers(alpha, people, client_for):
    request = _in(alpha, propose_email)
    client = client_for(alpha, people["ae"])

    choices = client.get(f"{API}{request.pk}/delegates/")
    to_viewer = client.post(
        f"{API}{request.pk}/delegate/",
        {"to_user": people["viewer"].username},
        content_type="application/json",
    )

    assert choices.status_code == 200, choices.content
    names = {row["username"] for row in choices.json()}
    assert people["ae2"].username in names and people["admin"].username in names
    assert not names & {people["ae"].username, people["revops"].username, people["viewer"].username}
    assert to_viewer.status_code == 400 and "to_user" in to_viewer.json()
    assert _state(alpha, request.pk)[1] is None


def test_api_viewer_gets_no_delegate_choices(alpha, people, client_for):
    request = _in(alpha, propose_email)

    response = client_for(alpha, people["viewer"]).get(f"{API}{request.pk}/delegates/")

    assert response.status_code == 403


# --- the admin ---------------------------------------------------------------------------------


def test_admin_button_revops_assignee_cannot_self_delegate(alpha, people, client_for):
    request = _in(alpha, _crm_write_assigned_to, people["revops"])
    client = client_for(alpha, people["revops"])

    page = client.get(f"{ADMIN}{request.pk}/change/")
    response = client.post(
        f"{ADMIN}{request.pk}/decide/delegate/", {"to_user": people["revops"].pk}, follow=True
    )
    approve = client.post(f"{ADMIN}{request.pk}/decide/approve/", {"comment": ""}, follow=True)

    assert page.status_code == 200 and 'id="decide"' not in page.content.decode()
    assert "cannot decide" in response.content.decode()
    assert "cannot decide" in approve.content.decode()
    status, _assignee, verbs, grants = _state(alpha, request.pk)
    assert (status, verbs, grants) == (Status.PENDING, ["proposed"], 0)


def test_admin_delegate_list_shows_only_role_approvers_but_not_me(alpha, people, client_for):
    request = _in(alpha, propose_email)
    client = client_for(alpha, people["ae"])

    page = client.get(f"{ADMIN}{request.pk}/change/").content.decode()
    to_revops = client.post(
        f"{ADMIN}{request.pk}/decide/delegate/", {"to_user": people["revops"].pk}, follow=True
    )

    assert f'value="{people["ae2"].pk}"' in page and f'value="{people["admin"].pk}"' in page
    for who in ("ae", "revops", "viewer"):
        assert f'value="{people[who].pk}"' not in page
    assert "to_user" in to_revops.content.decode()
    assert _state(alpha, request.pk)[1] is None


def test_admin_bulk_delegate_refuses_self_and_non_approvers(alpha, people, client_for):
    request = _in(alpha, propose_email)
    client = client_for(alpha, people["ae"])
    form = {"action": "delegate_selected", "_selected_action": [request.pk], "apply": "1"}

    to_self = client.post(ADMIN, {**form, "to_user": people["ae"].pk}, follow=True)
    to_viewer = client.post(ADMIN, {**form, "to_user": people["viewer"].pk}, follow=True)
    to_ae2 = client.post(ADMIN, {**form, "to_user": people["ae2"].pk}, follow=True)

    assert "Select a valid choice" in to_self.content.decode()
    assert "Select a valid choice" in to_viewer.content.decode()
    assert "Delegate: 1 of 1 request(s) done." in to_ae2.content.decode()
    assert _state(alpha, request.pk)[1] == people["ae2"].pk
