"""Vendor clients against respx mocks of the vendors' documented requests and responses."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import respx

from connectors.clients.clay import AUTH_HEADER, ClayWriteClient
from connectors.clients.gohighlevel import API_VERSION, GoHighLevelReadClient, GoHighLevelWriteClient
from connectors.clients.hubspot import HubSpotReadClient, HubSpotWriteClient
from connectors.clients.instantly import (
    MAX_LEADS_PER_ADD,
    InstantlyReadClient,
    InstantlyWriteClient,
    validate_timezone,
)
from connectors.errors import FatalError, RetryableError, VendorValidationError
from connectors.http import ClientConfig, reset_circuit_breakers

TOKEN = "pat-na1-test-token"
HUBSPOT = "https://api.hubapi.com"
GHL = "https://services.leadconnectorhq.com"
INSTANTLY = "https://api.instantly.ai"
LOCATION = "ve9EPM428h8vShlRW1KT"


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_circuit_breakers()
    yield
    reset_circuit_breakers()


def config(system: str, base_url: str = "", **extra) -> ClientConfig:
    return ClientConfig(
        system=system,
        base_url=base_url,
        token=TOKEN,
        tenant_key=f"tenant-{uuid.uuid4().hex[:8]}",
        extra=extra,
    )


def body_of(route: respx.Route) -> object:
    return json.loads(route.calls.last.request.content)


def assert_bearer(route: respx.Route) -> None:
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


# --- HubSpot ---------------------------------------------------------------------------------------


@pytest.fixture
def hubspot():
    with respx.mock(base_url=HUBSPOT, assert_all_called=True) as mock:
        yield mock


def hubspot_contact(contact_id: str = "151", **properties) -> dict:
    return {
        "id": contact_id,
        "properties": {"email": "ada@example.com", "hs_object_id": contact_id, **properties},
        "createdAt": "2025-01-10T10:00:00.000Z",
        "updatedAt": "2025-01-10T10:00:00.000Z",
        "archived": False,
    }


def test_hubspot_get_contact_by_email(hubspot):
    route = hubspot.get("/crm/v3/objects/contacts/ada@example.com").respond(200, json=hubspot_contact())

    contact = HubSpotReadClient(config("hubspot")).get_contact_by_email(
        "ada@example.com", properties=["email", "lifecyclestage"]
    )

    assert contact["id"] == "151" and contact["properties"]["email"] == "ada@example.com"
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.params["idProperty"] == "email"
    assert request.url.params["properties"] == "email,lifecyclestage"
    assert_bearer(route)


def test_hubspot_get_contact_by_email_returns_none_when_missing(hubspot):
    hubspot.get("/crm/v3/objects/contacts/nobody@example.com").respond(
        404,
        json={"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"},
    )

    assert HubSpotReadClient(config("hubspot")).get_contact_by_email("nobody@example.com") is None


def test_hubspot_email_with_plus_is_escaped_in_the_path(hubspot):
    route = hubspot.get(url__regex=r"/crm/v3/objects/contacts/ada%2Bcrm@example\.com").respond(
        200, json=hubspot_contact()
    )

    HubSpotReadClient(config("hubspot")).get_contact_by_email("ada+crm@example.com")

    assert route.calls.last.request.url.raw_path.startswith(
        b"/crm/v3/objects/contacts/ada%2Bcrm@example.com?"
    )


def test_hubspot_search_contacts(hubspot):
    route = hubspot.post("/crm/v3/objects/contacts/search").respond(
        200, json={"total": 1, "results": [hubspot_contact()], "paging": {"next": {"after": "1"}}}
    )
    filters = [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]

    page = HubSpotReadClient(config("hubspot")).search_contacts(filters, 5, properties=["email"], after="0")

    assert page["total"] == 1 and page["results"][0]["id"] == "151"
    assert body_of(route) == {
        "filterGroups": [{"filters": filters}],
        "limit": 5,
        "properties": ["email"],
        "after": "0",
    }


def test_hubspot_list_contacts_pages_by_after(hubspot):
    route = hubspot.get("/crm/v3/objects/contacts").respond(
        200, json={"results": [hubspot_contact()], "paging": {"next": {"after": "152", "link": "..."}}}
    )

    page = HubSpotReadClient(config("hubspot")).list_contacts(
        100, after="151", properties=["email", "jobtitle"]
    )

    assert page["paging"]["next"]["after"] == "152" and page["results"][0]["id"] == "151"
    params = route.calls.last.request.url.params
    assert (params["limit"], params["after"], params["properties"]) == ("100", "151", "email,jobtitle")
    assert_bearer(route)
    with pytest.raises(VendorValidationError):
        HubSpotReadClient(config("hubspot")).list_contacts(101)


def test_hubspot_search_limit_is_checked_before_calling():
    with pytest.raises(VendorValidationError):
        HubSpotReadClient(config("hubspot")).search_contacts([], 500)


def test_hubspot_get_company(hubspot):
    route = hubspot.get("/crm/v3/objects/companies/9001").respond(
        200, json={"id": "9001", "properties": {"name": "Acme", "domain": "acme.example"}}
    )

    company = HubSpotReadClient(config("hubspot")).get_company("9001", properties=["name", "domain"])

    assert company["properties"]["name"] == "Acme"
    assert route.calls.last.request.url.params["properties"] == "name,domain"
    assert_bearer(route)


def test_hubspot_upsert_updates_an_existing_contact_by_email(hubspot):
    route = hubspot.patch("/crm/v3/objects/contacts/ada@example.com").respond(
        200, json=hubspot_contact(lifecyclestage="lead")
    )

    result = HubSpotWriteClient(config("hubspot")).upsert_contact_by_email(
        "ada@example.com", {"lifecyclestage": "lead"}
    )

    assert result == {
        "id": "151",
        "created": False,
        "properties": {"email": "ada@example.com", "hs_object_id": "151", "lifecyclestage": "lead"},
    }
    assert route.calls.last.request.url.params["idProperty"] == "email"
    assert body_of(route) == {"properties": {"lifecyclestage": "lead"}}
    assert_bearer(route)


def test_hubspot_upsert_creates_when_the_email_is_unknown(hubspot):
    patch = hubspot.patch("/crm/v3/objects/contacts/ada@example.com").respond(
        404, json={"status": "error", "message": "Object not found.", "category": "OBJECT_NOT_FOUND"}
    )
    create = hubspot.post("/crm/v3/objects/contacts").respond(
        201, json=hubspot_contact("152", firstname="Ada")
    )

    result = HubSpotWriteClient(config("hubspot")).upsert_contact_by_email(
        "ada@example.com", {"firstname": "Ada"}
    )

    assert result["id"] == "152" and result["created"] is True
    assert patch.call_count == 1
    assert body_of(create) == {"properties": {"firstname": "Ada", "email": "ada@example.com"}}


def test_hubspot_upsert_conflict_patches_the_existing_id(hubspot):
    hubspot.patch("/crm/v3/objects/contacts/ada@example.com").respond(404, json={"status": "error"})
    hubspot.post("/crm/v3/objects/contacts").respond(
        409,
        json={
            "status": "error",
            "message": "Contact already exists. Existing ID: 512",
            "correlationId": "c0ffee",
            "category": "CONFLICT",
        },
    )
    by_id = hubspot.patch("/crm/v3/objects/contacts/512").respond(
        200, json=hubspot_contact("512", firstname="Ada")
    )

    result = HubSpotWriteClient(config("hubspot")).upsert_contact_by_email(
        "ada@example.com", {"firstname": "Ada"}
    )

    assert result["id"] == "512" and result["created"] is False
    assert body_of(by_id) == {"properties": {"firstname": "Ada"}}
    assert "idProperty" not in by_id.calls.last.request.url.params


def test_hubspot_conflict_without_an_id_is_fatal(hubspot):
    hubspot.patch("/crm/v3/objects/contacts/ada@example.com").respond(404, json={"status": "error"})
    hubspot.post("/crm/v3/objects/contacts").respond(
        409, json={"status": "error", "message": "Conflict", "category": "CONFLICT"}
    )

    with pytest.raises(FatalError) as caught:
        HubSpotWriteClient(config("hubspot")).upsert_contact_by_email("ada@example.com", {})

    assert caught.value.status_code == 409 and caught.value.vendor_code == "CONFLICT"


def test_hubspot_set_properties(hubspot):
    route = hubspot.patch("/crm/v3/objects/contacts/151").respond(200, json=hubspot_contact(mh1_tag="vip"))

    result = HubSpotWriteClient(config("hubspot")).set_properties("151", {"mh1_tag": "vip"})

    assert result["id"] == "151" and result["properties"]["mh1_tag"] == "vip"
    assert body_of(route) == {"properties": {"mh1_tag": "vip"}}


def test_hubspot_validation_error_carries_the_vendor_message(hubspot):
    hubspot.patch("/crm/v3/objects/contacts/151").respond(
        400,
        json={
            "status": "error",
            "message": 'Property values were not valid: [{"name":"lifecyclestage"}]',
            "correlationId": "c0ffee",
            "category": "VALIDATION_ERROR",
        },
    )

    with pytest.raises(VendorValidationError) as caught:
        HubSpotWriteClient(config("hubspot")).set_properties("151", {"lifecyclestage": "nope"})

    assert caught.value.vendor_message.startswith("Property values were not valid")
    assert caught.value.vendor_code == "VALIDATION_ERROR"


def test_hubspot_429_body_is_parsed_with_its_policy(hubspot):
    hubspot.get("/crm/v3/objects/companies/1").respond(
        429,
        headers={"Retry-After": "600"},
        json={
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
    )

    with pytest.raises(RetryableError) as caught:
        HubSpotReadClient(config("hubspot")).get_company("1")

    assert caught.value.vendor_code == "RATE_LIMIT"
    assert "TEN_SECONDLY_ROLLING" in caught.value.vendor_message


# --- GoHighLevel -----------------------------------------------------------------------------------


@pytest.fixture
def ghl():
    with respx.mock(base_url=GHL, assert_all_called=True) as mock:
        yield mock


def assert_ghl_headers(route: respx.Route) -> None:
    headers = route.calls.last.request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Version"] == API_VERSION


GHL_CONTACT = {
    "id": "seD4PfOuKoVMLkEZqohJ",
    "locationId": LOCATION,
    "email": "ada@example.com",
    "firstName": "Ada",
    "tags": ["lead"],
}


def test_ghl_needs_a_location_id():
    with pytest.raises(FatalError, match="location_id"):
        GoHighLevelReadClient(config("gohighlevel"))


def test_ghl_get_contact(ghl):
    route = ghl.get(f"/contacts/{GHL_CONTACT['id']}").respond(200, json={"contact": GHL_CONTACT})

    contact = GoHighLevelReadClient(config("gohighlevel", location_id=LOCATION)).get_contact(
        GHL_CONTACT["id"]
    )

    assert contact == GHL_CONTACT
    assert_ghl_headers(route)


def test_ghl_get_contact_missing_returns_none(ghl):
    ghl.get("/contacts/nope").respond(404, json={"statusCode": 404, "message": "Contact not found"})

    assert GoHighLevelReadClient(config("gohighlevel", location_id=LOCATION)).get_contact("nope") is None


def test_ghl_search_contact_by_email(ghl):
    route = ghl.get("/contacts/search/duplicate").respond(200, json={"contact": GHL_CONTACT})

    contact = GoHighLevelReadClient(config("gohighlevel", location_id=LOCATION)).search_contact_by_email(
        "ada@example.com"
    )

    assert contact["id"] == GHL_CONTACT["id"]
    params = route.calls.last.request.url.params
    assert (params["locationId"], params["email"]) == (LOCATION, "ada@example.com")
    assert_ghl_headers(route)


def test_ghl_search_contacts_pages_by_search_after(ghl):
    contact = {**GHL_CONTACT, "searchAfter": [1736503200000, GHL_CONTACT["id"]]}
    route = ghl.post("/contacts/search").respond(200, json={"contacts": [contact], "total": 1})

    page = GoHighLevelReadClient(config("gohighlevel", location_id=LOCATION)).search_contacts(
        100, search_after=[1736500000000, "abc"]
    )

    assert page["contacts"][0]["searchAfter"] == [1736503200000, GHL_CONTACT["id"]]
    assert body_of(route) == {
        "locationId": LOCATION,
        "pageLimit": 100,
        "searchAfter": [1736500000000, "abc"],
    }
    assert_ghl_headers(route)
    with pytest.raises(VendorValidationError):
        GoHighLevelReadClient(config("gohighlevel", location_id=LOCATION)).search_contacts(501)


def test_ghl_search_contact_by_email_none(ghl):
    ghl.get("/contacts/search/duplicate").respond(200, json={"contact": None})

    client = GoHighLevelReadClient(config("gohighlevel", location_id=LOCATION))
    assert client.search_contact_by_email("new@example.com") is None


def test_ghl_list_pipelines(ghl):
    pipelines = [{"id": "p1", "name": "Sales", "stages": [{"id": "s1", "name": "New"}]}]
    route = ghl.get("/opportunities/pipelines").respond(200, json={"pipelines": pipelines})

    assert GoHighLevelReadClient(config("gohighlevel", location_id=LOCATION)).list_pipelines() == pipelines
    assert route.calls.last.request.url.params["locationId"] == LOCATION
    assert_ghl_headers(route)


@pytest.mark.parametrize("new", [True, False])
def test_ghl_upsert_contact_reads_the_new_flag(ghl, new):
    route = ghl.post("/contacts/upsert").respond(
        200, json={"new": new, "contact": GHL_CONTACT, "traceId": "t-1"}
    )

    result = GoHighLevelWriteClient(config("gohighlevel", location_id=LOCATION)).upsert_contact(
        "ada@example.com", {"firstName": "Ada", "tags": ["lead"]}
    )

    assert result == {"id": GHL_CONTACT["id"], "created": new, "contact": GHL_CONTACT}
    assert body_of(route) == {
        "firstName": "Ada",
        "tags": ["lead"],
        "locationId": LOCATION,
        "email": "ada@example.com",
    }
    assert_ghl_headers(route)


def test_ghl_add_and_remove_tags(ghl):
    add = ghl.post("/contacts/c1/tags").respond(201, json={"tags": ["lead", "vip"]})
    remove = ghl.delete("/contacts/c1/tags").respond(200, json={"tags": ["lead"]})
    client = GoHighLevelWriteClient(config("gohighlevel", location_id=LOCATION))

    assert client.add_tags("c1", ["vip"]) == ["lead", "vip"]
    assert client.remove_tags("c1", ["vip"]) == ["lead"]

    assert body_of(add) == {"tags": ["vip"]} and body_of(remove) == {"tags": ["vip"]}
    assert_ghl_headers(add)
    assert_ghl_headers(remove)


def test_ghl_create_opportunity(ghl):
    opportunity = {"id": "o1", "name": "Acme deal", "pipelineStageId": "s1", "status": "open"}
    route = ghl.post("/opportunities/").respond(201, json={"opportunity": opportunity})

    result = GoHighLevelWriteClient(config("gohighlevel", location_id=LOCATION)).create_opportunity(
        pipeline_id="p1", stage_id="s1", contact_id="c1", name="Acme deal", monetary_value=1200
    )

    assert result == opportunity
    assert body_of(route) == {
        "locationId": LOCATION,
        "pipelineId": "p1",
        "pipelineStageId": "s1",
        "contactId": "c1",
        "name": "Acme deal",
        "status": "open",
        "monetaryValue": 1200,
    }
    assert_ghl_headers(route)


def test_ghl_update_opportunity_stage(ghl):
    route = ghl.put("/opportunities/o1").respond(
        200, json={"opportunity": {"id": "o1", "pipelineStageId": "s2"}}
    )

    result = GoHighLevelWriteClient(config("gohighlevel", location_id=LOCATION)).update_opportunity_stage(
        "o1", "s2"
    )

    assert result["pipelineStageId"] == "s2"
    assert body_of(route) == {"pipelineStageId": "s2"}
    assert_ghl_headers(route)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"statusCode": 422, "message": ["email must be an email"], "error": "Unprocessable Entity"},
            "email must be an email",
        ),
        ({"msg": "Invalid JWT"}, "Invalid JWT"),
    ],
)
def test_ghl_error_messages_are_parsed(ghl, body, expected):
    ghl.post("/contacts/upsert").respond(422, json=body)

    with pytest.raises(VendorValidationError) as caught:
        GoHighLevelWriteClient(config("gohighlevel", location_id=LOCATION)).upsert_contact("x", {})

    assert caught.value.vendor_message == expected


# --- Instantly -------------------------------------------------------------------------------------


@pytest.fixture
def instantly():
    with respx.mock(base_url=INSTANTLY, assert_all_called=True) as mock:
        yield mock


CAMPAIGN = {
    "id": "0190fb7c-1b2a-7c3d-8e9f-000000000001",
    "name": "Q3 outbound",
    "status": 0,
    "campaign_schedule": {"schedules": [{"name": "Weekdays", "timezone": "America/Detroit"}]},
}


def test_instantly_get_campaign(instantly):
    route = instantly.get(f"/api/v2/campaigns/{CAMPAIGN['id']}").respond(200, json=CAMPAIGN)

    assert InstantlyReadClient(config("instantly")).get_campaign(CAMPAIGN["id"]) == CAMPAIGN
    assert_bearer(route)


def test_instantly_get_campaign_missing(instantly):
    instantly.get("/api/v2/campaigns/nope").respond(
        404, json={"statusCode": 404, "error": "Not Found", "message": "Campaign not found"}
    )

    assert InstantlyReadClient(config("instantly")).get_campaign("nope") is None


def test_instantly_list_campaigns(instantly):
    page = {"items": [CAMPAIGN], "next_starting_after": CAMPAIGN["id"]}
    route = instantly.get("/api/v2/campaigns").respond(200, json=page)

    result = InstantlyReadClient(config("instantly")).list_campaigns(limit=10, starting_after="abc", status=1)

    assert result == page
    assert dict(route.calls.last.request.url.params) == {
        "limit": "10",
        "starting_after": "abc",
        "status": "1",
    }


def test_instantly_campaign_analytics(instantly):
    row = {
        "campaign_id": CAMPAIGN["id"],
        "campaign_name": "Q3 outbound",
        "emails_sent_count": 120,
        "reply_count": 7,
        "bounced_count": 2,
    }
    route = instantly.get("/api/v2/campaigns/analytics").respond(200, json=[row])

    result = InstantlyReadClient(config("instantly")).campaign_analytics(
        CAMPAIGN["id"], start_date="2025-01-01"
    )

    assert result == row
    assert dict(route.calls.last.request.url.params) == {"id": CAMPAIGN["id"], "start_date": "2025-01-01"}


def test_instantly_list_emails_defaults_to_replies(instantly):
    page = {"items": [{"id": "e1", "subject": "Re: hi", "ue_type": 2}], "next_starting_after": None}
    route = instantly.get("/api/v2/emails").respond(200, json=page)

    result = InstantlyReadClient(config("instantly")).list_emails(campaign_id=CAMPAIGN["id"], is_unread=True)

    assert result == page
    params = route.calls.last.request.url.params
    assert (params["email_type"], params["campaign_id"], params["is_unread"], params["limit"]) == (
        "received",
        CAMPAIGN["id"],
        "true",
        "100",
    )


def test_instantly_list_block_list(instantly):
    page = {"items": [{"id": "b1", "bl_value": "competitor.example"}]}
    route = instantly.get("/api/v2/block-lists-entries").respond(200, json=page)

    assert InstantlyReadClient(config("instantly")).list_block_list(search="competitor") == page
    assert route.calls.last.request.url.params["search"] == "competitor"


def test_instantly_add_leads(instantly):
    answer = {
        "status": "success",
        "total_sent": 2,
        "leads_uploaded": 2,
        "duplicated_leads": 0,
        "in_blocklist": 0,
    }
    route = instantly.post("/api/v2/leads/add").respond(200, json=answer)
    leads = [{"email": "a@x.example", "first_name": "A"}, {"email": "b@x.example"}]

    assert InstantlyWriteClient(config("instantly")).add_leads(CAMPAIGN["id"], leads) == answer
    assert body_of(route) == {"campaign_id": CAMPAIGN["id"], "leads": leads, "skip_if_in_campaign": True}
    assert_bearer(route)


def test_instantly_add_leads_refuses_more_than_1000_without_calling():
    leads = [{"email": f"l{i}@x.example"} for i in range(MAX_LEADS_PER_ADD + 1)]

    with respx.mock(base_url=INSTANTLY, assert_all_called=False) as mock:
        route = mock.post("/api/v2/leads/add").respond(200, json={})
        with pytest.raises(VendorValidationError, match="at most 1000"):
            InstantlyWriteClient(config("instantly")).add_leads("c", leads)

    assert route.call_count == 0


def test_instantly_add_leads_needs_emails():
    with pytest.raises(VendorValidationError, match="without an email"):
        InstantlyWriteClient(config("instantly")).add_leads("c", [{"first_name": "A"}])


@pytest.mark.parametrize(
    ("method", "action", "status"), [("activate_campaign", "activate", 1), ("pause_campaign", "pause", 2)]
)
def test_instantly_activate_and_pause(instantly, method, action, status):
    route = instantly.post(f"/api/v2/campaigns/{CAMPAIGN['id']}/{action}").respond(
        200, json={**CAMPAIGN, "status": status}
    )

    result = getattr(InstantlyWriteClient(config("instantly")), method)(CAMPAIGN["id"])

    assert result["status"] == status
    assert route.calls.last.request.content == b""
    assert_bearer(route)


def test_instantly_add_block_list_entry(instantly):
    route = instantly.post("/api/v2/block-lists-entries").respond(
        200, json={"id": "b2", "bl_value": "gone@x.example", "is_domain": False}
    )

    result = InstantlyWriteClient(config("instantly")).add_block_list_entry(" Gone@X.example ")

    assert result["id"] == "b2"
    assert body_of(route) == {"bl_value": "gone@x.example"}


def test_instantly_block_list_entry_must_look_like_an_email_or_domain():
    with pytest.raises(VendorValidationError):
        InstantlyWriteClient(config("instantly")).add_block_list_entry("not a domain")


def test_instantly_timezones_are_a_closed_list():
    assert validate_timezone("America/Detroit") == "America/Detroit"
    assert validate_timezone("Europe/Isle_of_Man") == "Europe/Isle_of_Man"
    with pytest.raises(VendorValidationError, match="America/Detroit"):
        validate_timezone("America/New_York")
    with pytest.raises(VendorValidationError):
        validate_timezone("Mars/Olympus_Mons")


def test_instantly_error_shape_is_parsed(instantly):
    instantly.post("/api/v2/campaigns/c/activate").respond(
        403, json={"statusCode": 403, "error": "Forbidden", "message": "API key lacks scope campaigns:update"}
    )

    with pytest.raises(FatalError) as caught:
        InstantlyWriteClient(config("instantly")).activate_campaign("c")

    assert caught.value.vendor_message == "API key lacks scope campaigns:update"
    assert caught.value.vendor_code == "Forbidden"


def test_read_clients_have_no_write_methods():
    writes = {"upsert_contact_by_email", "set_properties", "upsert_contact", "add_tags", "remove_tags"}
    writes |= {"create_opportunity", "update_opportunity_stage", "add_leads", "pause_campaign"}
    writes |= {"activate_campaign", "add_block_list_entry", "submit_row"}
    for read_class in (HubSpotReadClient, GoHighLevelReadClient, InstantlyReadClient):
        assert not writes & set(dir(read_class)), read_class


# --- Clay ------------------------------------------------------------------------------------------

CLAY_URL = "https://api.clay.com/v3/sources/webhook/pull-in-data-from-a-webhook-abc123"


def test_clay_submit_row():
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(CLAY_URL).respond(200, text="")

        result = ClayWriteClient(config("clay")).submit_row(
            CLAY_URL, {"email": "ada@example.com", "tenant_secret": "s"}, auth_token="clay-auth"
        )

    assert result is None
    request = route.calls.last.request
    assert json.loads(request.content) == {"email": "ada@example.com", "tenant_secret": "s"}
    assert request.headers[AUTH_HEADER] == "clay-auth"
    assert request.headers["content-type"] == "application/json"
    assert "Authorization" not in request.headers


def test_clay_without_auth_token_sends_no_auth_header():
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(CLAY_URL).respond(200, json={"success": True})
        ClayWriteClient(config("clay")).submit_row(CLAY_URL, {"email": "a@b.example"})

    assert AUTH_HEADER not in route.calls.last.request.headers


def test_clay_refuses_plain_http_and_empty_rows():
    client = ClayWriteClient(config("clay"))
    with pytest.raises(VendorValidationError):
        client.submit_row("http://api.clay.com/x", {"a": 1})
    with pytest.raises(VendorValidationError):
        client.submit_row(CLAY_URL, {})


def test_clients_accept_an_injected_transport():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=CAMPAIGN)

    client = InstantlyReadClient(config("instantly"), transport=httpx.MockTransport(handler))

    assert client.get_campaign(CAMPAIGN["id"]) == CAMPAIGN
    assert str(seen[0].url) == f"{INSTANTLY}/api/v2/campaigns/{CAMPAIGN['id']}"


def test_a_2xx_that_is_not_json_is_a_fatal_contract_break(hubspot):
    hubspot.get("/crm/v3/objects/companies/1").respond(
        200, text="<html>maintenance</html>", content_type="text/html"
    )

    with pytest.raises(FatalError, match="expected JSON"):
        HubSpotReadClient(config("hubspot")).get_company("1")
