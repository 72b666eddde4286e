"""Leads in from the CRMs (HubSpot, GoHighLevel in the sandbox) through the tenant's field map."""

from __future__ import annotations

import httpx
import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from campaigns.models import Lead
from connectors.errors import ConnectorError
from connectors.http import reset_circuit_breakers
from connectors.models import Credential, CrmPull, Suppression
from connectors.pull import crm_pull, crm_pull_all
from connectors.sandbox import SandboxServer

pytestmark = pytest.mark.django_db
HEADERS = {"Authorization": "Bearer sandbox-token", "Version": "2021-07-28"}


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def crm(alpha, sandbox):
    sandbox.reset()
    reset_circuit_breakers()
    connection.set_tenant(alpha)
    for system in ("hubspot", "gohighlevel"):
        Credential.objects.create(
            system=system,
            base_url=sandbox.url,
            secret={"token": "sandbox-token", "extra": {"location_id": "loc-1"}},
            timeout_seconds=2,
        )
    yield sandbox
    connection.set_schema_to_public()


def hubspot_contact(sandbox, **properties):
    response = httpx.post(
        f"{sandbox.url}/crm/v3/objects/contacts", json={"properties": properties}, headers=HEADERS
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def ghl_contact(sandbox, **fields):
    response = httpx.post(
        f"{sandbox.url}/contacts/upsert", json={"locationId": "loc-1", **fields}, headers=HEADERS
    )
    assert response.status_code == 200, response.text
    return response.json()["contact"]["id"]


def test_hubspot_contacts_become_leads_through_the_field_map(crm):
    contact_id = hubspot_contact(
        crm,
        email="Dana@Northwind.example",
        firstname="Dana",
        lastname="Reyes",
        company="Northwind",
        jobtitle="Head of Growth",
        lifecyclestage="marketingqualifiedlead",
    )

    result = crm_pull("hubspot")

    assert result["created"] == 1 and result["complete_sweep"] is True
    lead = Lead.objects.get()
    assert (lead.email, lead.first_name, lead.last_name, lead.company, lead.title) == (
        "dana@northwind.example",
        "Dana",
        "Reyes",
        "Northwind",
        "Head of Growth",
    )
    assert lead.lifecycle_stage == "mql"  # HubSpot's value, converted by the tenant's taxonomy
    assert (lead.source_system, lead.source_id, lead.data_source) == ("hubspot", contact_id, "hubspot")
    assert lead.collected_at is not None


def test_a_large_crm_is_read_in_bounded_runs_that_resume_where_they_stopped(crm):
    for n in range(250):
        hubspot_contact(crm, email=f"lead{n}@prospect.example", firstname=f"Lead{n}")

    first = crm_pull("hubspot", max_pages=2)
    state = CrmPull.objects.get(system="hubspot")
    assert (first["pages"], first["created"], first["complete_sweep"]) == (2, 200, False)
    assert state.cursor and state.last_sweep_completed_at is None

    second = crm_pull("hubspot", max_pages=2)
    state.refresh_from_db()
    assert (second["pages"], second["created"], second["complete_sweep"]) == (1, 50, True)
    assert state.cursor is None and state.last_sweep_completed_at is not None
    assert state.leads_pulled == 250 and Lead.objects.count() == 250

    third = crm_pull("hubspot", max_pages=5)  # the next sweep starts over: updates, no new leads
    assert (third["created"], third["updated"]) == (0, 250)


def test_a_bad_record_is_skipped_and_named_and_the_rest_are_read(crm):
    hubspot_contact(crm, email="good@prospect.example", firstname="Good")
    bad = hubspot_contact(crm, email="odd@prospect.example", lifecyclestage="partner")
    hubspot_contact(crm, firstname="No email")

    result = crm_pull("hubspot")

    assert (result["created"], result["skipped"]) == (1, 2)
    assert any(f"contact {bad}" in e and "partner" in e for e in result["errors"])
    assert list(Lead.objects.values_list("email", flat=True)) == ["good@prospect.example"]
    assert CrmPull.objects.get(system="hubspot").last_result["skipped"] == 2


def test_a_do_not_contact_in_the_crm_suppresses_here_within_one_pull(crm):
    hubspot_contact(crm, email="optout@prospect.example", hs_email_optout="true")
    ghl_contact(crm, email="dnd@prospect.example", dnd=True)
    ghl_contact(crm, email="tagged@prospect.example", tags=["DNC", "tier_1"])
    ghl_contact(crm, email="fine@prospect.example", firstName="Fine")

    results = crm_pull_all()

    assert results["hubspot"]["suppressed"] == 1 and results["gohighlevel"]["suppressed"] == 2
    suppressed = dict(Suppression.objects.values_list("email", "source"))
    assert suppressed == {
        "optout@prospect.example": "hubspot",
        "dnd@prospect.example": "gohighlevel",
        "tagged@prospect.example": "gohighlevel",
    }
    assert Lead.objects.get(email="tagged@prospect.example").icp_tier == "A"  # tier_1 tag, mapped
    assert crm_pull_all()["gohighlevel"]["suppressed"] == 0  # already on the list: not added twice


def test_a_lead_from_elsewhere_keeps_its_source(crm):
    from campaigns.services import lead_upsert

    lead_upsert(data={"email": "csv@prospect.example", "first_name": "C"}, source_system="csv")
    hubspot_contact(crm, email="csv@prospect.example", firstname="Cee", jobtitle="CMO")

    crm_pull("hubspot")

    lead = Lead.objects.get()
    assert (lead.first_name, lead.title, lead.source_system) == ("Cee", "CMO", "csv")


def test_a_vendor_outage_keeps_the_pages_read_and_the_next_run_resumes(crm):
    for n in range(150):
        hubspot_contact(crm, email=f"p{n}@prospect.example")
    assert crm_pull("hubspot", max_pages=1)["created"] == 100
    crm.state.add_fault(method="GET", path_prefix="/crm/v3/objects/contacts", status=503, times=None)

    with pytest.raises(ConnectorError):
        crm_pull("hubspot")

    state = CrmPull.objects.get(system="hubspot")
    assert Lead.objects.count() == 100 and state.cursor  # nothing lost, the cursor still at page 2
    assert "503" in state.last_result["error"]
    crm.state.clear_faults()
    reset_circuit_breakers()
    assert crm_pull("hubspot")["created"] == 50
    assert Lead.objects.count() == 150


def test_a_pull_in_one_tenant_never_writes_another(crm, bravo):
    hubspot_contact(crm, email="only-alpha@prospect.example")

    crm_pull("hubspot")

    with tenant_context(bravo):
        assert not Lead.objects.exists()
        assert not CrmPull.objects.exists()


def _admin(alpha, make_user, client_for):
    from tenants.roles import Role

    user = make_user(alpha, Role.TENANT_ADMIN)
    client = client_for(alpha, user)
    connection.set_tenant(alpha)
    return client


def test_rotating_a_gohighlevel_token_keeps_its_location_and_shows_neither_secret(
    crm, alpha, make_user, client_for
):
    client = _admin(alpha, make_user, client_for)
    credential = Credential.objects.get(system="gohighlevel")
    url = f"/admin/connectors/credential/{credential.pk}/change/"

    response = client.post(
        url,
        {"system": "gohighlevel", "base_url": crm.url, "timeout_seconds": 5, "new_secret": "rotated-tok"},
    )
    connection.set_tenant(alpha)
    assert response.status_code == 200 and "needs the location id" in response.content.decode()

    response = client.post(
        url,
        {
            "system": "gohighlevel",
            "base_url": crm.url,
            "timeout_seconds": 5,
            "new_secret": "rotated-tok",
            "location_id": "loc-2",
        },
    )
    connection.set_tenant(alpha)
    assert response.status_code == 302
    assert Credential.objects.get(pk=credential.pk).secret == {
        "token": "rotated-tok",
        "extra": {"location_id": "loc-2"},
    }
    page = client.get(url).content.decode()
    connection.set_tenant(alpha)
    assert "loc-2" in page and "rotated-tok" not in page


def test_clay_credentials_need_a_webhook_url_that_is_never_shown_back(crm, alpha, make_user, client_for):
    client = _admin(alpha, make_user, client_for)
    form = {"system": "clay", "timeout_seconds": 30, "new_secret": ""}

    response = client.post("/admin/connectors/credential/add/", form)
    connection.set_tenant(alpha)
    assert "needs the table&#x27;s webhook source URL" in response.content.decode()

    source = "https://api.clay.com/v3/sources/webhook/pull-in-data-from-a-webhook-SECRET42"
    response = client.post("/admin/connectors/credential/add/", {**form, "webhook_url": source})
    connection.set_tenant(alpha)
    assert response.status_code == 302
    credential = Credential.objects.get(system="clay")
    assert credential.secret == {"webhook_url": source}
    page = client.get(f"/admin/connectors/credential/{credential.pk}/change/").content.decode()
    connection.set_tenant(alpha)
    assert "SECRET42" not in page


def test_pull_leads_now_queues_a_pull_for_each_crm(crm, alpha, make_user, client_for, monkeypatch):
    from connectors import tasks

    queued = []
    monkeypatch.setattr(tasks.pull_crm_leads, "delay", lambda *args: queued.append(args))
    client = _admin(alpha, make_user, client_for)
    ids = list(Credential.objects.values_list("pk", flat=True))

    page = client.post(
        "/admin/connectors/credential/", {"action": "pull_leads", "_selected_action": ids}, follow=True
    )
    connection.set_tenant(alpha)

    assert sorted(queued) == [(alpha.schema_name, "gohighlevel"), (alpha.schema_name, "hubspot")]
    assert "Lead pull from HubSpot queued" in page.content.decode()


def test_a_lead_written_to_gohighlevel_through_the_map_reads_back_the_same(crm, alpha, make_user):
    from approvals.models import Status
    from approvals.services import action_approve, action_execute
    from approvals.tests.factories import set_phase
    from campaigns.services import lead_crm_upsert_propose, lead_upsert
    from tenants.roles import Role

    approver = make_user(alpha, Role.AE)
    connection.set_tenant(alpha)
    set_phase("assisted")
    lead, _ = lead_upsert(
        data={
            "email": "li@contoso.example",
            "first_name": "Li",
            "last_name": "Wei",
            "company": "Contoso",
            "title": "VP Marketing",
            "icp_score": "82.5",
            "icp_tier": "A",
        },
        source_system="csv",
    )
    lead.refresh_from_db()

    request, created = lead_crm_upsert_propose(lead=lead, system="gohighlevel")
    assert created and lead_crm_upsert_propose(lead=lead, system="gohighlevel") == (request, False)
    properties = request.payload["properties"]
    assert sorted(properties.pop("customFields"), key=lambda f: f["key"]) == [
        {"key": "icp_score", "field_value": "82.50"},
        {"key": "title", "field_value": "VP Marketing"},
    ]
    assert properties == {"firstName": "Li", "lastName": "Wei", "companyName": "Contoso", "tags": ["tier_1"]}
    action_approve(request_id=request.pk, acting_user=approver)
    assert action_execute(request.pk) == Status.EXECUTED

    (contact,) = crm.state.snapshot(include_data=True)["data"]["gohighlevel"]["contacts"]
    assert (contact["firstName"], contact["companyName"], contact["tags"]) == ("Li", "Contoso", ["tier_1"])
    Lead.objects.all().delete()
    crm_pull("gohighlevel")
    back = Lead.objects.get()
    assert (back.first_name, back.last_name, back.company, back.title, back.icp_tier) == (
        "Li",
        "Wei",
        "Contoso",
        "VP Marketing",
        "A",
    )
    assert str(back.icp_score) == "82.50"


def test_the_lead_admin_proposes_crm_writes_for_approval(crm, alpha, make_user, client_for):
    from approvals.models import ActionRequest
    from approvals.tests.factories import set_phase
    from campaigns.services import lead_upsert
    from tenants.roles import Role

    lead, _ = lead_upsert(
        data={"email": "ana@tailspin.example", "first_name": "Ana", "title": "RevOps Manager"},
        source_system="csv",
    )
    viewer = client_for(alpha, make_user(alpha, Role.VIEWER))
    revops = client_for(alpha, make_user(alpha, Role.REVOPS))
    connection.set_tenant(alpha)
    set_phase("assisted")
    form = {"action": "propose_hubspot_upsert", "_selected_action": [lead.pk]}

    viewer.post("/admin/campaigns/lead/", form)
    connection.set_tenant(alpha)
    assert not ActionRequest.objects.exists()  # viewers cannot propose writes

    first = revops.post("/admin/campaigns/lead/", form, follow=True).content.decode()
    again = revops.post("/admin/campaigns/lead/", form, follow=True).content.decode()
    connection.set_tenant(alpha)

    (request,) = ActionRequest.objects.all()
    assert request.kind == "crm.upsert_contact" and request.status == "pending"
    assert request.payload == {
        "system": "hubspot",
        "email": "ana@tailspin.example",
        "properties": {"firstname": "Ana", "jobtitle": "RevOps Manager", "lifecyclestage": "lead"},
    }
    assert "1 CRM write(s) to hubspot proposed for approval" in first
    assert "already proposed with the same values" in again
