"""Clay enrichment end to end: an approved lookup submits one row to the tenant's Clay table (in the
sandbox), Clay's HTTP API column posts the results back, and they land on the canonical lead."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from approvals.models import ActionRequest, Status
from approvals.services import action_approve, action_execute, action_propose
from approvals.tests.factories import set_phase
from campaigns.models import Lead
from connectors.clients.clay import WEBHOOK_SUBMISSIONS_MAX
from connectors.http import reset_circuit_breakers
from connectors.models import (
    CallLedger,
    CallStatus,
    ClaySource,
    Credential,
    Enrichment,
    EnrichmentStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from connectors.sandbox import SandboxServer
from tenants.roles import Role

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/clay/"
SECRET_HEADER = "X-MH1-Webhook-Secret"


class _Capture(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append({"headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def receiver():
    """Stands in for our endpoint behind Clay's HTTP API column: records what Clay posts."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def clay(alpha, make_user, sandbox, receiver):
    """Alpha with Clay credentials for the sandbox's source ``alpha-src`` and its results column."""
    sandbox.reset()
    reset_circuit_breakers()
    approver = make_user(alpha, Role.AE)
    connection.set_tenant(alpha)
    set_phase("assisted")
    Credential.objects.create(
        system="clay",
        secret={"webhook_url": f"{sandbox.url}/clay/webhook/alpha-src", "token": "clay-source-token"},
        timeout_seconds=1,
    )
    endpoint = WebhookEndpoint.objects.create(system="clay")
    sandbox.state.configure(
        clay_columns={
            "alpha-src": {
                "url": f"http://127.0.0.1:{receiver.server_address[1]}/results",
                "headers": {SECRET_HEADER: str(endpoint.secret)},
            }
        }
    )
    yield approver, str(endpoint.secret)
    connection.set_schema_to_public()


def _lookup(approver, key, email="dana@northwind.example", **extra):
    request = action_propose(
        kind="enrichment.lookup",
        payload={"provider": "clay", "email": email, **extra},
        idempotency_key=key,
        skill_run="test",
    )
    action_approve(request_id=request.pk, acting_user=approver)
    return request


def _wait_for(receiver, count: int) -> list[dict]:
    for _ in range(100):
        if len(receiver.received) >= count:
            break
        threading.Event().wait(0.05)
    return receiver.received


def _post(client_for, tenant, body, secret):
    client = client_for(tenant)
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", headers={SECRET_HEADER: secret})


def test_approved_lookup_submits_one_row_and_the_results_update_the_lead(
    clay, sandbox, receiver, alpha, client_for
):
    approver, secret = clay
    Lead.objects.create(email="dana@northwind.example", first_name="Dana", company="Northwind")
    request = _lookup(approver, "enrich-1", linkedin_url="https://www.linkedin.com/in/dana")

    assert action_execute(request.pk) == Status.EXECUTED

    rows = sandbox.state.snapshot(include_data=True)["data"]["clay"]["rows"]["alpha-src"]
    enrichment = Enrichment.objects.get(request=request)
    assert rows == [
        {
            "mh1_ref": str(enrichment.ref),
            "email": "dana@northwind.example",
            "first_name": "Dana",
            "company": "Northwind",
            "linkedin_url": "https://www.linkedin.com/in/dana",
        }
    ]
    assert enrichment.status == EnrichmentStatus.SUBMITTED
    assert ClaySource.objects.get().submissions == 1

    # Clay's HTTP API column posts the results with the tenant's secret; we play them to our endpoint
    (delivery,) = _wait_for(receiver, 1)
    assert delivery["headers"][SECRET_HEADER] == secret
    connection.set_schema_to_public()
    response = _post(client_for, alpha, delivery["body"], delivery["headers"][SECRET_HEADER])

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "stored"
    connection.set_tenant(alpha)
    lead = Lead.objects.get(email="dana@northwind.example")
    body = delivery["body"]
    assert (lead.title, lead.company_size, lead.industry) == (
        body["title"],
        body["company_size"],
        body["company_industry"],
    )
    assert lead.company == "Northwind" and lead.first_name == "Dana"  # what Clay echoed back is kept
    assert (lead.data_source, lead.legal_basis) == ("clay", "legitimate_interest")
    assert lead.collected_at is not None
    enrichment.refresh_from_db()
    assert enrichment.status == EnrichmentStatus.RECEIVED
    assert enrichment.applied["title"] == ["", body["title"]]
    assert enrichment.result["technologies"] == body["technologies"]  # kept beside the lead


def test_results_replayed_three_times_are_applied_once(clay, sandbox, receiver, alpha, client_for):
    approver, secret = clay
    action_execute(_lookup(approver, "enrich-dup").pk)
    (delivery,) = _wait_for(receiver, 1)
    connection.set_schema_to_public()

    answers = [_post(client_for, alpha, delivery["body"], secret).json() for _ in range(3)]

    assert [a["status"] for a in answers] == ["stored", "duplicate", "duplicate"]
    assert len({a["id"] for a in answers}) == 1
    with tenant_context(alpha):
        assert WebhookEvent.objects.filter(system="clay").count() == 1
        assert Lead.objects.filter(email="dana@northwind.example").count() == 1


def test_credentials_never_reach_the_ledger_the_result_or_the_logs(clay, sandbox, caplog):
    approver, _ = clay
    request = _lookup(approver, "enrich-secret")
    with caplog.at_level("DEBUG"):
        action_execute(request.pk)

    request.refresh_from_db()
    ledger = CallLedger.objects.get(idempotency_key="action:enrich-secret")
    stored = json.dumps([ledger.request, ledger.response, request.result]) + caplog.text
    assert "alpha-src" not in stored and "clay-source-token" not in stored
    assert ledger.status == CallStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        ([{"mh1_ref": "x"}], 400, "JSON object"),
        ({"title": "CMO"}, 400, "mh1_ref is required"),
        ({"mh1_ref": "not-a-uuid"}, 400, "is not a UUID"),
        ({"mh1_ref": "0" * 32, "note": "x" * 300_000}, 413, "larger than"),
    ],
)
def test_bad_results_get_a_clear_error_and_store_nothing(clay, alpha, client_for, body, status, message):
    _, secret = clay
    connection.set_schema_to_public()

    response = _post(client_for, alpha, body, secret)

    assert response.status_code == status
    assert message in response.json()["detail"]
    with tenant_context(alpha):
        assert not WebhookEvent.objects.exists()


def test_a_wrong_secret_or_another_tenants_secret_is_refused(clay, alpha, bravo, client_for):
    _, alpha_secret = clay
    with tenant_context(bravo):
        WebhookEndpoint.objects.create(system="clay")
    connection.set_schema_to_public()
    body = {"mh1_ref": "6f1c1f0e-3f57-4a51-9d36-0d2a1b3c4d5e", "title": "CMO"}

    assert _post(client_for, alpha, body, "wrong").status_code == 401
    assert _post(client_for, bravo, body, alpha_secret).status_code == 401  # alpha's secret on bravo's host
    for tenant in (alpha, bravo):
        with tenant_context(tenant):
            assert not WebhookEvent.objects.exists()


def test_results_for_another_tenants_lookup_change_nothing_here(
    clay, sandbox, receiver, alpha, bravo, client_for
):
    approver, _ = clay
    action_execute(_lookup(approver, "enrich-iso").pk)
    (delivery,) = _wait_for(receiver, 1)
    with tenant_context(bravo):
        bravo_secret = str(WebhookEndpoint.objects.create(system="clay").secret)
    connection.set_schema_to_public()

    response = _post(client_for, bravo, delivery["body"], bravo_secret)  # alpha's ref, sent to bravo

    assert response.status_code == 200
    assert "unknown mh1_ref" in response.json()["outcome"]
    with tenant_context(bravo):
        assert not Lead.objects.exists()
    with tenant_context(alpha):
        assert Enrichment.objects.get().status == EnrichmentStatus.SUBMITTED


def test_a_value_of_the_wrong_type_is_skipped_and_named(clay, alpha, client_for):
    approver, secret = clay
    request = _lookup(approver, "enrich-types")
    action_execute(request.pk)
    ref = str(Enrichment.objects.get(request=request).ref)
    connection.set_schema_to_public()

    body = {"mh1_ref": ref, "title": "VP Marketing", "company_size": "about fifty", "legal_basis": "because"}
    outcome = _post(client_for, alpha, body, secret).json()["outcome"]

    assert "skipped invalid company_size, legal_basis" in outcome
    with tenant_context(alpha):
        lead = Lead.objects.get(email="dana@northwind.example")
        assert (lead.title, lead.company_size, lead.legal_basis) == (
            "VP Marketing",
            None,
            "legitimate_interest",
        )


def test_a_full_webhook_source_fails_the_lookup_without_a_call(clay, sandbox):
    approver, _ = clay
    action_execute(_lookup(approver, "enrich-first").pk)
    ClaySource.objects.update(submissions=WEBHOOK_SUBMISSIONS_MAX)
    request = _lookup(approver, "enrich-full", email="li@contoso.example")

    assert action_execute(request.pk) == Status.FAILED

    request.refresh_from_db()
    assert "used all 50,000 of its submissions" in request.error
    assert len(sandbox.state.requests_log("POST", "/clay/")) == 1
    assert not CallLedger.objects.filter(idempotency_key="enrich-full").exists()
    assert not Enrichment.objects.filter(request=request).exists()
    assert ClaySource.objects.get().submissions == WEBHOOK_SUBMISSIONS_MAX


def test_a_suppressed_person_is_not_looked_up(clay, sandbox):
    from connectors.services import suppression_add

    approver, _ = clay
    request = _lookup(approver, "enrich-erased", email="gone@prospect.example")
    suppression_add(email="gone@prospect.example", reason="gdpr_erasure", source="admin")

    request.refresh_from_db()
    assert request.status == Status.CANCELLED
    assert not sandbox.state.requests_log("POST", "/clay/")


def test_an_unknown_outcome_is_not_resubmitted(clay, sandbox):
    approver, _ = clay
    sandbox.state.add_fault(
        mode="timeout_after_apply", method="POST", path_prefix="/clay/", times=1, delay=1.5
    )
    request = _lookup(approver, "enrich-timeout")

    assert action_execute(request.pk) == Status.UNKNOWN  # may have reached Clay: shown as unknown
    ActionRequest.objects.filter(pk=request.pk).update(status=Status.EXECUTING)
    assert action_execute(request.pk) == Status.UNKNOWN

    assert sandbox.state.counts()["clay"]["submissions"] == {"alpha-src": 1}  # Clay got the row once
    assert CallLedger.objects.get(idempotency_key="action:enrich-timeout").status == CallStatus.UNKNOWN
    request.refresh_from_db()
    assert "outcome is unknown" in request.error


def test_the_connection_test_checks_the_source_without_sending_a_row(clay, sandbox):
    from connectors.probe import connection_test

    approver, _ = clay
    action_execute(_lookup(approver, "enrich-probe").pk)
    sent = len(sandbox.state.requests_log())

    result = connection_test("clay")

    assert result == {"webhook source": "ok", "submissions": "1 of 50,000 used", "results endpoint": "ok"}
    assert len(sandbox.state.requests_log()) == sent
    ClaySource.objects.update(submissions=WEBHOOK_SUBMISSIONS_MAX)
    assert connection_test("clay")["webhook source"].startswith("failed: all submissions used")


def test_a_lookup_without_clay_credentials_fails_at_once_with_the_reason(clay, sandbox):
    approver, _ = clay
    Credential.objects.filter(system="clay").delete()
    request = _lookup(approver, "enrich-nocreds")

    assert action_execute(request.pk) == Status.FAILED

    request.refresh_from_db()
    assert "No clay credentials for this tenant" in request.error
    assert request.attempts == 1  # not retried: it cannot work until someone adds them
    assert not sandbox.state.requests_log("POST", "/clay/")
