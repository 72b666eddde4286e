"""The approval queue over HTTP: list and filters, detail, propose, decisions, errors, isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from approvals.models import ActionRequest, ApproverRule, Event, Status
from approvals.services import action_propose, action_reject
from approvals.tests.factories import email_payload, propose_email, set_phase
from tenants.policy.tokens import api_token_create
from tenants.roles import Role

pytestmark = pytest.mark.django_db

BASE = "/api/v1/approvals/requests/"


def url(request_id: int, verb: str = "") -> str:
    return f"{BASE}{request_id}/{verb + '/' if verb else ''}"


@pytest.fixture
def people(alpha, make_user):
    users = {
        "ae": make_user(alpha, Role.AE, email="ae1@alpha.test"),
        "ae2": make_user(alpha, Role.AE, email="ae2@alpha.test"),
        "revops": make_user(alpha, Role.REVOPS),
        "viewer": make_user(alpha, Role.VIEWER),
        "admin": make_user(alpha, Role.TENANT_ADMIN),
    }
    with tenant_context(alpha):
        set_phase("assisted")
    return users


@pytest.fixture
def in_alpha(alpha):
    """Run ORM code inside alpha's schema, then come back to public (where every test starts)."""

    def run(fn, *args, **kwargs):
        with tenant_context(alpha):
            result = fn(*args, **kwargs)
        connection.set_schema_to_public()
        return result

    return run


def _post(client, path, data=None):
    return client.post(path, data or {}, content_type="application/json")


def _without_set_calls(captured) -> int:
    return sum(1 for query in captured.captured_queries if not query["sql"].startswith("SET "))


def _reload(alpha, request_id: int) -> ActionRequest:
    with tenant_context(alpha):
        request = ActionRequest.objects.get(pk=request_id)
        request.event_verbs = list(Event.objects.filter(request=request).values_list("verb", flat=True))
    connection.set_schema_to_public()
    return request


# --- list and detail -----------------------------------------------------------------------------


def test_list_is_ordered_by_deadline_and_filters(alpha, people, client_for, in_alpha):
    # given requests with different deadlines, kinds, impacts, states and assignees
    now = timezone.now()
    later = in_alpha(propose_email, requested_by=people["admin"], deadline=now + timedelta(hours=9))
    sooner = in_alpha(propose_email, requested_by=people["admin"], deadline=now + timedelta(hours=2))
    in_alpha(
        ApproverRule.objects.create,
        kind="enrichment.lookup",
        primary_role=Role.REVOPS,
        primary_approver=people["revops"],
    )
    costly = in_alpha(
        action_propose,
        kind="enrichment.lookup",
        payload={"provider": "clay", "email": "x@prospect.example", "budget_usd": 500},
        idempotency_key="enrich-1",
        deadline=now + timedelta(hours=5),
    )
    rejected = in_alpha(propose_email, requested_by=people["admin"], deadline=now + timedelta(hours=1))
    in_alpha(action_reject, request_id=rejected.pk, acting_user=people["ae"], reason="Off-brand.")
    in_alpha(ActionRequest.objects.filter(pk=later.pk).update, sla_due_at=now - timedelta(minutes=5))
    ae, revops = client_for(alpha, people["ae"]), client_for(alpha, people["revops"])

    def ids(client, query=""):
        response = client.get(BASE + query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    # then
    assert ids(ae) == [rejected.pk, sooner.pk, costly.pk, later.pk]
    assert ids(ae, "?status=pending") == [sooner.pk, costly.pk, later.pk]
    assert ids(ae, "?status=rejected") == [rejected.pk]
    assert ids(ae, "?kind=enrichment.lookup") == [costly.pk]
    assert ids(ae, "?impact_level=high") == [costly.pk]
    assert ids(ae, "?overdue=1") == [later.pk]
    # the AE role's unassigned queue; the enrichment belongs to the RevOps person by the roster
    assert ids(ae, "?mine=1") == [sooner.pk, later.pk]
    assert ids(revops, "?mine=1") == [costly.pk]
    assert ids(ae, "?mine=1&overdue=1") == [later.pk]
    page = ae.get(BASE + "?limit=2&offset=1").json()
    assert page["count"] == 4 and [row["id"] for row in page["results"]] == [sooner.pk, costly.pk]
    row = ae.get(BASE + "?kind=enrichment.lookup").json()["results"][0]
    assert row["assigned_to"] == people["revops"].username
    assert row["requested_by"] is None and row["impact_level"] == "high"


def test_list_rejects_unknown_filter_values(alpha, people, client_for):
    response = client_for(alpha, people["ae"]).get(BASE + "?status=lost")

    assert response.status_code == 400
    assert "status" in response.json()


def test_list_makes_a_fixed_number_of_queries(
    alpha, people, make_user, client_for, in_alpha, django_assert_max_num_queries
):
    # given requests from twelve different requesters, half of them assigned to somebody each
    # (the other half wait for the AE role)
    for i in range(12):
        requester = make_user(alpha, Role.REVOPS, email=f"requester{i}@alpha.test")
        request = in_alpha(propose_email, requested_by=requester)
        if i % 2:
            assignee = make_user(alpha, Role.AE, email=f"assignee{i}@alpha.test")
            in_alpha(ActionRequest.objects.filter(pk=request.pk).update, assigned_to=assignee)
    client = client_for(alpha, people["ae"])

    # then tenant, session, user, the permissions (one read), count and one page (+ the user's role for
    # "mine"), not one per row; django-tenants adds a SET search_path before each query unless
    # TENANT_LIMIT_SET_CALLS is on, so the bound counts them and the tight check leaves them out
    with django_assert_max_num_queries(14) as listing:
        everything = client.get(BASE)
    with django_assert_max_num_queries(16) as filtering:
        mine = client.get(BASE + "?mine=1")

    assert _without_set_calls(listing) == 6
    assert _without_set_calls(filtering) == 7
    assert everything.status_code == 200 and everything.json()["count"] == 12
    assert {row["assigned_to"] for row in everything.json()["results"]} == {
        None,
        *(f"assignee{i}@alpha.test" for i in range(1, 12, 2)),
    }
    assert mine.status_code == 200 and mine.json()["count"] == 6
    assert {row["requested_by"] for row in mine.json()["results"]} == {
        f"requester{i}@alpha.test" for i in range(0, 12, 2)
    }


def test_detail_shows_timeline_and_approvals(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])
    client = client_for(alpha, people["ae"])
    assert _post(client, url(request.pk, "approve"), {"comment": "Looks right."}).status_code == 200

    response = client.get(url(request.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == request.pk and body["status"] == Status.APPROVED
    # the default sender is filled in at proposal, so the request shows From
    assert body["payload"] == {**email_payload(), "from_mailbox": "console@mh1.local"}
    assert body["requested_by"] == people["admin"].username
    assert [(e["verb"], e["from_status"], e["to_status"]) for e in body["events"]] == [
        ("proposed", "", "pending"),
        ("approved", "pending", "approved"),
    ]
    assert body["events"][0]["actor_label"] == people["admin"].username
    assert body["events"][1]["actor_label"] == people["ae"].username
    assert body["events"][1]["comment"] == "Looks right."
    assert [a["approver"] for a in body["approvals"]] == [people["ae"].username]


def test_detail_needs_the_view_permission(alpha, people, make_user, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])
    nobody = make_user(alpha, Role.VIEWER, email="nobody@alpha.test")
    in_alpha(nobody.groups.clear)

    assert client_for(alpha).get(url(request.pk)).status_code == 401
    assert client_for(alpha, nobody).get(url(request.pk)).status_code == 403
    assert _post(client_for(alpha, nobody), url(request.pk, "approve")).status_code == 403
    assert client_for(alpha, people["viewer"]).get(url(request.pk)).status_code == 200


# --- decisions -----------------------------------------------------------------------------------


def test_approve_moves_the_request_to_approved(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])

    response = _post(client_for(alpha, people["ae"]), url(request.pk, "approve"), {"comment": "Go."})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == Status.APPROVED
    stored = _reload(alpha, request.pk)
    assert stored.status == Status.APPROVED and stored.decided_at is not None
    assert stored.event_verbs == ["proposed", "approved"]


def test_critical_request_needs_two_different_approvers(alpha, people, client_for, in_alpha):
    # a C-level recipient on the tenant's first email is critical
    request = in_alpha(propose_email, requested_by=people["admin"], payload=email_payload(to_title="CEO"))
    assert request.approvals_required == 2

    first = _post(client_for(alpha, people["ae"]), url(request.pk, "approve"))
    again = _post(client_for(alpha, people["ae"]), url(request.pk, "approve"))
    second = _post(client_for(alpha, people["ae2"]), url(request.pk, "approve"))

    assert first.status_code == 200 and first.json()["status"] == Status.PENDING
    assert again.status_code == 403 and again.json()["code"] == "not_allowed"
    assert second.status_code == 200 and second.json()["status"] == Status.APPROVED
    assert len(second.json()["approvals"]) == 2


def test_requester_cannot_approve_own_request(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["ae"])

    response = _post(client_for(alpha, people["ae"]), url(request.pk, "approve"))

    assert response.status_code == 403
    assert response.json() == {
        "code": "not_allowed",
        "detail": "You requested this action; someone else must approve it.",
    }
    assert _reload(alpha, request.pk).status == Status.PENDING


def test_viewer_cannot_approve(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])

    response = _post(client_for(alpha, people["viewer"]), url(request.pk, "approve"))

    assert response.status_code == 403
    assert response.json()["code"] == "not_allowed"
    assert "cannot decide on 'Email: send' actions" in response.json()["detail"]
    stored = _reload(alpha, request.pk)
    assert stored.status == Status.PENDING and stored.event_verbs == ["proposed"]


def test_approving_a_decided_request_is_a_conflict(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])
    in_alpha(action_reject, request_id=request.pk, acting_user=people["ae"], reason="No.")

    response = _post(client_for(alpha, people["ae2"]), url(request.pk, "approve"))

    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert "only pending requests can be approved" in response.json()["detail"]
    assert _reload(alpha, request.pk).status == Status.REJECTED


def test_reject_needs_a_reason_and_keeps_it(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])
    client = client_for(alpha, people["ae"])

    missing = _post(client, url(request.pk, "reject"), {})
    blank = _post(client, url(request.pk, "reject"), {"reason": "   "})
    stored = _reload(alpha, request.pk)
    assert missing.status_code == 400 and "reason" in missing.json()
    assert blank.status_code == 400 and "reason" in blank.json()
    assert stored.status == Status.PENDING and stored.event_verbs == ["proposed"]

    response = _post(
        client, url(request.pk, "reject"), {"reason": "Wrong tone.", "redo_instructions": "Be brief."}
    )

    assert response.status_code == 200 and response.json()["status"] == Status.REJECTED
    stored = _reload(alpha, request.pk)
    assert (stored.status, stored.rejection_reason, stored.redo_instructions) == (
        Status.REJECTED,
        "Wrong tone.",
        "Be brief.",
    )


def test_delegate_hands_the_request_to_a_colleague(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])
    client = client_for(alpha, people["ae"])
    until = timezone.now() + timedelta(days=1)

    unknown = _post(client, url(request.pk, "delegate"), {"to_user": "ghost@alpha.test"})
    past = _post(
        client,
        url(request.pk, "delegate"),
        {"to_user": people["ae2"].username, "until": (timezone.now() - timedelta(hours=1)).isoformat()},
    )
    response = _post(
        client,
        url(request.pk, "delegate"),
        {"to_user": people["ae2"].username, "until": until.isoformat(), "comment": "Holiday."},
    )

    assert unknown.status_code == 400 and "to_user" in unknown.json()
    assert past.status_code == 400 and past.json()["code"] == "payload_invalid"
    assert response.status_code == 200, response.content
    assert response.json()["assigned_to"] == people["ae2"].username
    assert response.json()["events"][-1]["verb"] == "delegated"
    stored = _reload(alpha, request.pk)
    assert stored.assigned_to_id == people["ae2"].pk and stored.delegated_until == until


def test_viewer_cannot_delegate(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])

    response = _post(
        client_for(alpha, people["viewer"]), url(request.pk, "delegate"), {"to_user": people["ae2"].username}
    )

    assert response.status_code == 403 and response.json()["code"] == "not_allowed"
    assert _reload(alpha, request.pk).assigned_to_id is None


def test_edit_changes_only_editable_fields_and_keeps_the_original(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])
    client = client_for(alpha, people["ae"])

    refused = _post(client, url(request.pk, "edit"), {"changes": {"to": "other@prospect.example"}})
    empty = _post(client, url(request.pk, "edit"), {"changes": {}})
    response = _post(client, url(request.pk, "edit"), {"changes": {"subject": "A better subject"}})

    assert refused.status_code == 400 and refused.json()["code"] == "payload_invalid"
    assert "to cannot be edited" in refused.json()["detail"]
    assert empty.status_code == 400 and "changes" in empty.json()
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["payload"]["subject"] == "A better subject"
    assert body["original_payload"]["subject"] == "Quick idea"
    assert body["payload_diff"] == {"subject": {"before": "Quick idea", "after": "A better subject"}}
    stored = _reload(alpha, request.pk)
    assert stored.payload["to"] == "lead@prospect.example" and stored.status == Status.PENDING


# --- propose -------------------------------------------------------------------------------------


def test_propose_creates_once_per_idempotency_key(alpha, people, client_for):
    client = client_for(alpha, people["revops"])
    body = {"kind": "email.send", "payload": email_payload(), "idempotency_key": "api-key-1"}

    created = _post(client, BASE, body)
    repeated = _post(client, BASE, {**body, "payload": email_payload(subject="Changed")})

    assert created.status_code == 201, created.content
    assert created.json()["status"] == Status.PENDING
    assert created.json()["requested_by"] == people["revops"].username
    assert repeated.status_code == 200
    assert repeated.json()["id"] == created.json()["id"]
    assert repeated.json()["payload"]["subject"] == "Quick idea"
    with tenant_context(alpha):
        assert ActionRequest.objects.filter(idempotency_key="api-key-1").count() == 1


def test_propose_in_shadow_phase_ends_shadowed(alpha, people, client_for, in_alpha):
    in_alpha(set_phase, "shadow")
    body = {"kind": "email.send", "payload": email_payload(), "idempotency_key": "shadow-1"}

    response = _post(client_for(alpha, people["revops"]), BASE, body)

    assert response.status_code == 201
    assert response.json()["status"] == Status.SHADOWED
    assert [e["verb"] for e in response.json()["events"]] == ["proposed", "shadowed"]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"kind": "crm.delete_everything", "payload": {}},
            "unknown_kind",
            "Unknown action kind 'crm.delete_everything'. Known kinds: ",
        ),
        (
            {"kind": "email.send", "payload": email_payload(to="not-an-email")},
            "payload_invalid",
            "to: 'not-an-email' is not exactly one email address",
        ),
        (
            {"kind": "email.send", "payload": {"to": "a@b.example", "body": "x"}},
            "payload_invalid",
            "'subject' is a required property",
        ),
        (
            {"kind": "email.send", "payload": ["not", "an", "object"]},
            "payload_invalid",
            "is not of type 'object'",
        ),
    ],
    ids=["unknown-kind", "bad-email", "missing-field", "not-an-object"],
)
def test_propose_refuses_what_the_registry_refuses(alpha, people, client_for, body, code, message):
    response = _post(client_for(alpha, people["revops"]), BASE, {**body, "idempotency_key": "refused"})

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert message in response.json()["detail"]
    with tenant_context(alpha):
        assert not ActionRequest.objects.filter(idempotency_key="refused").exists()


def test_propose_checks_its_fields(alpha, people, client_for, in_alpha):
    before = in_alpha(ActionRequest.objects.count)

    response = _post(
        client_for(alpha, people["revops"]),
        BASE,
        {"kind": "email.send", "payload": email_payload(), "execution_mode": "yolo"},
    )

    assert response.status_code == 400
    assert set(response.json()) == {"idempotency_key", "execution_mode"}
    assert in_alpha(ActionRequest.objects.count) == before


def test_a_person_cannot_claim_auto_deliver(alpha, people, client_for, in_alpha):
    # in the autonomous phase auto_deliver would skip every approver
    in_alpha(set_phase, "autonomous")
    before = in_alpha(ActionRequest.objects.count)
    body = {
        "kind": "email.send",
        "payload": email_payload(),
        "idempotency_key": "self-approved",
        "release_decision": "auto_deliver",
    }

    response = _post(client_for(alpha, people["admin"]), BASE, body)
    reviewed = _post(
        client_for(alpha, people["admin"]),
        BASE,
        {key: value for key, value in body.items() if key != "release_decision"}
        | {"idempotency_key": "reviewed"},
    )

    assert response.status_code == 400
    assert "only by the evaluation of a skill run" in response.json()["release_decision"][0]
    assert reviewed.status_code == 201 and reviewed.json()["status"] == Status.PENDING
    assert in_alpha(ActionRequest.objects.count) == before + 1


# --- isolation, auth, schema ---------------------------------------------------------------------


def test_another_tenants_request_is_not_found(alpha, bravo, people, make_user, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])
    bravo_ae = make_user(bravo, Role.AE)
    client = client_for(bravo, bravo_ae)
    with tenant_context(bravo):
        # make sure the id is free in bravo, whatever other tests left in its sequence
        ActionRequest.objects.filter(pk=request.pk).delete()
    connection.set_schema_to_public()

    assert client.get(url(request.pk)).status_code == 404
    assert _post(client, url(request.pk, "approve")).status_code == 404
    assert client.get(BASE).json()["count"] == 0
    assert _reload(alpha, request.pk).status == Status.PENDING


def test_token_auth_lists_and_decides(alpha, people, client_for, in_alpha):
    request = in_alpha(propose_email, requested_by=people["admin"])
    _, key = in_alpha(api_token_create, acting_user=people["ae"], name="script")
    client = client_for(alpha)
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}

    listed = client.get(BASE, **auth)
    approved = client.post(url(request.pk, "approve"), {}, content_type="application/json", **auth)
    bad = client.get(BASE, HTTP_AUTHORIZATION="Token not-a-token")

    assert listed.status_code == 200 and [r["id"] for r in listed.json()["results"]] == [request.pk]
    assert approved.status_code == 200 and approved.json()["status"] == Status.APPROVED
    assert approved.json()["approvals"][0]["approver"] == people["ae"].username
    assert bad.status_code == 401


def test_schema_documents_the_approval_endpoints(alpha, people, client_for):
    response = client_for(alpha, people["viewer"]).get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths[BASE])
    assert "get" in paths[BASE + "{id}/"]
    for verb, body in [
        ("approve", "Approve"),
        ("reject", "Reject"),
        ("delegate", "Delegate"),
        ("edit", "EditPayload"),
    ]:
        operation = paths[f"{BASE}{{id}}/{verb}/"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{body}"
    assert schema["components"]["schemas"]["Reject"]["required"] == ["reason"]
    list_params = {p["name"] for p in paths[BASE]["get"]["parameters"]}
    assert {"status", "kind", "impact_level", "mine", "overdue", "limit", "offset"} <= list_params


# --- proposals: who may propose, and who sets the evaluation -----------------------------------


def test_viewer_cannot_propose(alpha, people, client_for, in_alpha):
    before = in_alpha(ActionRequest.objects.count)
    body = {"kind": "email.send", "payload": email_payload(), "idempotency_key": "viewer-proposes"}

    response = _post(client_for(alpha, people["viewer"]), BASE, body)

    assert response.status_code == 403
    assert in_alpha(ActionRequest.objects.count) == before


@pytest.mark.parametrize("who", ["admin", "revops", "ae"])
def test_proposer_roles_may_propose(alpha, people, client_for, who):
    body = {"kind": "email.send", "payload": email_payload(), "idempotency_key": f"{who}-proposes"}

    response = _post(client_for(alpha, people[who]), BASE, body)

    assert response.status_code == 201, response.content
    assert response.json()["requested_by"] == people[who].username


def test_the_service_refuses_a_person_without_the_proposer_permission(alpha, people, in_alpha):
    from approvals.errors import NotAllowed

    with pytest.raises(NotAllowed, match="cannot propose"):
        in_alpha(propose_email, requested_by=people["viewer"])


@pytest.mark.parametrize(
    "evaluation",
    [
        {"evaluation_score": "0.99"},
        {"release_decision": "human_review"},
        {"release_decision": "auto_deliver"},
    ],
    ids=["score", "human_review", "auto_deliver"],
)
def test_a_proposer_cannot_set_the_evaluation(alpha, people, client_for, in_alpha, evaluation):
    before = in_alpha(ActionRequest.objects.count)
    body = {"kind": "email.send", "payload": email_payload(), "idempotency_key": "self-scored", **evaluation}

    response = _post(client_for(alpha, people["revops"]), BASE, body)

    assert response.status_code == 400
    (field,) = evaluation
    assert "only by the evaluation of a skill run" in response.json()[field][0]
    assert in_alpha(ActionRequest.objects.count) == before


def test_the_service_keeps_the_evaluation_to_skill_runs(alpha, people, in_alpha):
    from approvals.errors import PayloadInvalid

    with pytest.raises(PayloadInvalid, match="skill run"):
        in_alpha(propose_email, requested_by=people["revops"], evaluation_score=0.99)
    scored = in_alpha(propose_email, skill_run="run-1", evaluation_score=0.5, release_decision="human_review")

    assert float(scored.evaluation_score) == 0.5 and scored.release_decision == "human_review"
