"""Every role by every entry of tenants/permission_matrix.py against the real HTTP surface: allowed →
success and the change is made; denied → 403 or a refusal, and nothing changed. The README's roles
table is the same table."""

from __future__ import annotations

from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import Group, User
from django.core import mail
from django.db import connection
from django_tenants.utils import tenant_context

from approvals.models import ActionRequest, Approval, ApproverRule, Status
from approvals.services import action_delegate
from approvals.tests.factories import email_payload, propose_email, set_phase
from tenants import permission_matrix as pm
from tenants.models import Tenant, TenantAccessGrant
from tenants.policy.tokens import ApiToken
from tenants.roles import Role
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.django_db

QUEUE = "/admin/approvals/actionrequest/"
API = "/api/v1/approvals/requests/"
ROLE_OF = {pm.ADMIN: Role.TENANT_ADMIN, pm.REVOPS: Role.REVOPS, pm.AE: Role.AE, pm.VIEWER: Role.VIEWER}


@pytest.fixture
def world(alpha, make_user):
    users = {name: make_user(alpha, role, email=f"pm-{name}@alpha.test") for name, role in ROLE_OF.items()}
    users[pm.DELEGATE] = make_user(alpha, Role.AE, email="pm-delegate@alpha.test")
    colleague = make_user(alpha, Role.AE, email="pm-colleague@alpha.test")
    connection.set_schema_to_public()
    public = Tenant.objects.get(schema_name="public")
    operator = User.objects.create_user(
        "pm-operator@mh1.test", email="pm-operator@mh1.test", password=PASSWORD
    )
    operator.is_staff = True
    operator.save()
    operator.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))
    users[pm.OPERATOR] = operator
    # where each person signs in: tenant people on alpha's host, the operator on the public one
    hosts = dict.fromkeys(pm.TENANT_PEOPLE, alpha) | {pm.OPERATOR: public}
    with tenant_context(alpha):
        set_phase("assisted")
        ApproverRule.objects.all().delete()
        request = propose_email()
        action_delegate(request_id=request.pk, acting_user=users[pm.ADMIN], to_user=users[pm.DELEGATE])
    connection.set_schema_to_public()
    return {"users": users, "colleague": colleague, "request": request, "hosts": hosts}


def _in(alpha, fn):
    with tenant_context(alpha):
        result = fn()
    connection.set_schema_to_public()
    return result


def _snapshot(alpha, request_id: int):
    def read():
        r = ActionRequest.objects.get(pk=request_id)
        return (
            r.status,
            r.assigned_to_id,
            r.payload.get("subject"),
            Approval.objects.filter(request=r).count(),
        )

    return _in(alpha, read)


def _levels(response) -> set[int]:
    return {m.level for m in response.context["messages"]} if response.context else set()


def _button(client, request_id, decision, data):
    return client.post(f"{QUEUE}{request_id}/decide/{decision}/", data, follow=True)


def _bulk(client, request_id, action, data):
    form = {"action": action, "_selected_action": [request_id], "apply": "1", **data}
    return client.post(QUEUE, form, follow=True)


def _api(client, method, path, data=None):
    if method == "GET":
        return client.get(path)
    return client.post(path, data or {}, content_type="application/json")


def _set_status(alpha, request_id, status):
    _in(alpha, lambda: ActionRequest.objects.filter(pk=request_id).update(status=status))


def _platform(key, client, alpha, world):
    """The public host's entries: (answer looked successful, what changed)."""
    tenants = {t.slug: t for t in Tenant.objects.filter(slug__in=("bravo", "dormant"))}

    def is_active(slug):
        return Tenant.objects.get(slug=slug).is_active

    if key == "platform_deactivate":
        selected = {"action": "deactivate", "_selected_action": [tenants["bravo"].pk]}
        asked = client.post("/admin/tenants/tenant/", selected)
        confirmation_first = (
            asked.status_code == 200 and b"Are you sure?" in asked.content and is_active("bravo")
        )
        done = client.post("/admin/tenants/tenant/", {**selected, "post": "yes"}, follow=True)
        ok = confirmation_first and done.status_code == 200 and messages.SUCCESS in _levels(done)
        return ok, not is_active("bravo")
    if key == "platform_reactivate":
        response = client.post(f"/admin/tenants/tenant/{tenants['dormant'].pk}/reactivate/", follow=True)
        return response.status_code == 200 and messages.SUCCESS in _levels(response), is_active("dormant")
    if key == "platform_grant_link":
        email = f"pm-new-{id(client)}@example.com"
        response = client.post(
            "/admin/tenants/tenantaccessgrant/add/",
            {"email": email, "tenants": [alpha.pk], "role": Role.VIEWER.value},
            follow=True,
        )
        granted = TenantAccessGrant.objects.filter(email=email, tenant=alpha, role=Role.VIEWER).exists()
        emailed = any(email in m.to and "/reset/" in m.body for m in mail.outbox)
        return response.status_code == 200 and messages.SUCCESS in _levels(response), granted and emailed
    raise AssertionError(f"no way to try {key!r}: add one")


def _run(key, client, alpha, world):
    """Do ``key``; return (answer looked successful, what changed as the matrix means it)."""
    rid = world["request"].pk
    colleague = world["colleague"]
    before = _snapshot(alpha, rid)

    def changed():
        return _snapshot(alpha, rid) != before

    ok_admin = lambda response: response.status_code == 200 and messages.SUCCESS in _levels(response)  # noqa: E731
    if key == "button_approve":
        return ok_admin(_button(client, rid, "approve", {"comment": ""})), changed()
    if key == "button_reject":
        return ok_admin(_button(client, rid, "reject", {"reason": "No."})), changed()
    if key == "button_delegate":
        return ok_admin(_button(client, rid, "delegate", {"to_user": colleague.pk})), changed()
    if key == "button_edit":
        response = _button(client, rid, "edit", {"subject": "Edited", "body": "New body."})
        return ok_admin(response), changed()
    if key in ("button_requeue", "button_resolve"):
        _set_status(alpha, rid, Status.FAILED if key == "button_requeue" else Status.UNKNOWN)
        before = _snapshot(alpha, rid)
        decision = "requeue" if key == "button_requeue" else "resolve_executed"
        response = _button(client, rid, decision, {"reason": "Checked at the vendor."})
        return ok_admin(response), _snapshot(alpha, rid) != before
    if key == "action_approve":
        response = _bulk(client, rid, "approve_selected", {"comment": ""})
        return response.status_code == 200 and messages.SUCCESS in _levels(response), changed()
    if key == "action_reject":
        response = _bulk(client, rid, "reject_selected", {"reason": "No.", "redo_instructions": ""})
        return response.status_code == 200 and messages.SUCCESS in _levels(response), changed()
    if key == "action_delegate":
        response = _bulk(client, rid, "delegate_selected", {"to_user": colleague.pk})
        return response.status_code == 200 and messages.SUCCESS in _levels(response), changed()
    if key == "api_list":
        response = _api(client, "GET", API)
        seen = response.status_code == 200 and rid in [r["id"] for r in response.json()["results"]]
        return seen, seen  # a read changes nothing: what it shows is the effect
    if key == "api_detail":
        seen = _api(client, "GET", f"{API}{rid}/").status_code == 200
        return seen, seen
    if key == "api_propose":
        count = _in(alpha, ActionRequest.objects.count)
        body = {"kind": "email.send", "payload": email_payload(), "idempotency_key": f"pm-{id(client)}"}
        response = _api(client, "POST", API, body)
        return response.status_code == 201, _in(alpha, ActionRequest.objects.count) != count
    if key in ("api_approve", "api_reject", "api_delegate", "api_edit"):
        verb = key.removeprefix("api_")
        data = {
            "approve": {},
            "reject": {"reason": "No."},
            "delegate": {"to_user": colleague.username},
            "edit": {"changes": {"subject": "Edited"}},
        }[verb]
        return _api(client, "POST", f"{API}{rid}/{verb}/", data).status_code == 200, changed()
    if key == "api_delegates":
        response = _api(client, "GET", f"{API}{rid}/delegates/")
        seen = response.status_code == 200 and colleague.username in str(response.json())
        return seen, seen
    if key.startswith("platform_"):
        return _platform(key, client, alpha, world)
    if key == "api_root":
        response = client.get("/api/v1/")
        seen = response.status_code == 200 and response.json().get("approval-requests", "").endswith(API)
        return seen, seen
    if key == "admin_unlock_login":
        # a lockout in the schema of the host the person signs in to
        host = world["hosts"][world["role"]]

        def lock():
            return AccessAttempt.objects.create(
                username="pm-locked@example.com",
                ip_address="10.0.0.9",
                user_agent="pytest",
                get_data="",
                post_data="",
                http_accept="*/*",
                path_info="/admin/login/",
                failures_since_start=settings.AXES_FAILURE_LIMIT,
            ).pk

        with tenant_context(host):
            attempt_id = lock()
        connection.set_schema_to_public()
        response = client.post(
            "/admin/axes/accessattempt/",
            {"action": "unlock", "_selected_action": [attempt_id]},
            follow=True,
        )
        with tenant_context(host):
            gone = not AccessAttempt.objects.filter(pk=attempt_id).exists()
        connection.set_schema_to_public()
        return response.status_code == 200 and messages.SUCCESS in _levels(response), gone
    if key == "admin_set_other_password":

        def password_hash():
            return _in(alpha, lambda: User.objects.get(pk=colleague.pk).password)

        before_hash = password_hash()
        new = "Another-Strong-Pass-2026!"
        response = client.post(
            f"/admin/auth/user/{colleague.pk}/password/",
            {"password1": new, "password2": new, "usable_password": "true"},
            follow=True,
        )
        return ok_admin(response), password_hash() != before_hash
    if key == "admin_my_tokens":
        count = _in(alpha, ApiToken.objects.count)
        response = client.post("/admin/policy/apitoken/add/", {"name": "matrix"})
        return response.status_code == 200 and "key" in (response.context or {}), _in(
            alpha, ApiToken.objects.count
        ) != count
    raise AssertionError(f"no way to try {key!r}: add one")


@pytest.mark.parametrize("role", pm.ROLES)
@pytest.mark.parametrize("entry", pm.MATRIX, ids=[e.key for e in pm.MATRIX])
def test_role_by_action(entry, role, alpha, world, client_for):
    client = client_for(world["hosts"][role], world["users"][role])
    world["role"] = role

    succeeded, changed = _run(entry.key, client, alpha, world)

    if role in entry.allowed:
        assert succeeded and changed, f"{role} should be able to: {entry.what}"
    else:
        assert not succeeded and not changed, f"{role} must not: {entry.what}"


def test_every_decision_button_and_queue_action_is_in_the_table():
    from approvals.admin import ActionRequestAdmin

    keys = {e.key for e in pm.MATRIX}
    assert {f"action_{a.removesuffix('_selected')}" for a in ActionRequestAdmin.actions} <= keys
    assert {f"button_{b}" for b in ("approve", "reject", "delegate", "edit", "requeue", "resolve")} <= keys


def test_the_readme_roles_table_is_the_matrix():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    start, end = "<!-- permission-matrix:start -->\n", "\n<!-- permission-matrix:end -->"
    assert start in readme and end in readme, "README needs the permission-matrix markers"
    block = readme.split(start, 1)[1].split(end, 1)[0]
    assert block == pm.markdown(), f"README roles table is stale; paste:\n{pm.markdown()}"
