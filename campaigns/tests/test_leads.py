"""Leads: default taxonomy and field maps, mapping round trips, upsert, synthetic data, CSV import."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django_tenants.utils import tenant_context

from campaigns.mapping import MappingError, from_remote, to_remote
from campaigns.models import FieldMap, Lead, LifecycleStage
from campaigns.services import lead_upsert, leads_generate_synthetic
from tenants.roles import Role

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/campaigns/lead/import/"
PROCESS_URL = "/admin/campaigns/lead/process_import/"
CSV_HEADER = "email,first_name,last_name,company,lifecycle_stage\n"


def test_new_tenant_has_default_taxonomy_and_field_maps(alpha):
    with tenant_context(alpha):
        stages = list(LifecycleStage.objects.values_list("key", flat=True))
        ghl = dict(
            FieldMap.objects.filter(system="gohighlevel").values_list("canonical_field", "remote_field")
        )
        hubspot = set(FieldMap.objects.filter(system="hubspot").values_list("canonical_field", flat=True))

    assert stages == ["subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist"]
    assert ghl == {
        "email": "email",
        "first_name": "firstName",
        "last_name": "lastName",
        "company": "companyName",
        "title": "customField.title",
        "icp_score": "customField.icp_score",
        "icp_tier": "tags",
    }
    assert hubspot == {"email", "first_name", "last_name", "company", "title", "lifecycle_stage"}


LEAD = {
    "email": "Ada@Example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines",
    "title": "Head of Growth",
    "icp_score": "87.50",
    "icp_tier": "A",
    "lifecycle_stage": "mql",
    "country": "UK",  # not mapped: never sent
}


def test_gohighlevel_round_trip(alpha):
    with tenant_context(alpha):
        remote = to_remote("gohighlevel", LEAD)
        back = from_remote("gohighlevel", remote)

    assert remote == {
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "companyName": "Analytical Engines",
        "customField": {"title": "Head of Growth", "icp_score": "87.50"},
        "tags": ["tier_1"],
    }
    assert back == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical Engines",
        "title": "Head of Growth",
        "icp_score": "87.50",
        "icp_tier": "A",
    }


def test_hubspot_round_trip_maps_lifecycle_stage(alpha, django_assert_max_num_queries):
    with tenant_context(alpha):
        FieldMap.objects.exists()  # the schema switch costs a query of its own
        with django_assert_max_num_queries(2):  # the field maps, then the stages
            remote = to_remote("hubspot", LEAD)
        back = from_remote("hubspot", {**remote, "hs_object_id": "901"})

    assert remote == {
        "email": "ada@example.com",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "company": "Analytical Engines",
        "jobtitle": "Head of Growth",
        "lifecyclestage": "marketingqualifiedlead",
    }
    assert back["lifecycle_stage"] == "mql"
    assert "hs_object_id" not in back


def test_unknown_remote_lifecycle_stage_is_refused(alpha):
    with tenant_context(alpha), pytest.raises(MappingError, match="“zombie” matches no stage"):
        from_remote("hubspot", {"email": "a@b.example", "lifecyclestage": "zombie"})


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        # the message of the one address normaliser (mh1.addresses), as every write path gives it
        ({"email": "not-an-email"}, "email", "'not-an-email' is not exactly one email address."),
        ({"email": ""}, "email", "A lead needs an email address."),
        (
            {"email": "a@b.example", "lifecycle_stage": "zombie"},
            "lifecycle_stage",
            "Unknown lifecycle stage “zombie”",
        ),
        ({"email": "a@b.example", "icp_score": Decimal("120")}, "icp_score", "less than or equal to 100"),
    ],
)
def test_lead_upsert_refuses_invalid_data_and_saves_nothing(alpha, data, field, message):
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as error:
            lead_upsert(data=data, source_system="manual")
        assert Lead.objects.count() == 0
    assert message in " ".join(error.value.message_dict[field])


def test_lead_upsert_refuses_unknown_fields(alpha):
    with tenant_context(alpha), pytest.raises(ValueError, match="Unknown lead fields: shoe_size"):
        lead_upsert(data={"email": "a@b.example", "shoe_size": 42}, source_system="manual")


def test_lead_upsert_deduplicates_by_email_case_insensitively(alpha, make_user):
    user = make_user(alpha, Role.REVOPS)
    with tenant_context(alpha):
        first, created = lead_upsert(
            data={"email": "Grace@Navy.example", "first_name": "Grace"},
            source_system="hubspot",
            acting_user=user,
        )
        again, created_again = lead_upsert(
            data={"email": " GRACE@navy.example ", "lifecycle_stage": "sql"}, source_system="gohighlevel"
        )
        leads = list(Lead.objects.values_list("email", "first_name", "lifecycle_stage", "source_system"))

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert leads == [("grace@navy.example", "Grace", "sql", "gohighlevel")]


def test_synthetic_leads_are_deterministic_and_idempotent(alpha, bravo):
    with tenant_context(alpha):
        assert leads_generate_synthetic(50, seed=7) == 50
        alpha_emails = set(Lead.objects.values_list("email", flat=True))
        assert leads_generate_synthetic(50, seed=7) == 0
        assert Lead.objects.count() == 50
        lead = Lead.objects.first()
    with tenant_context(bravo):
        call_command("generate_leads", "--schema", bravo.schema_name, "--count", "50", "--seed", "7")
        bravo_emails = set(Lead.objects.values_list("email", flat=True))
        Lead.objects.all().delete()

    assert alpha_emails == bravo_emails
    assert len(alpha_emails) == 50
    assert (lead.source_system, lead.legal_basis, lead.data_source) == (
        "synthetic",
        "legitimate_interest",
        "synthetic",
    )
    assert lead.title and lead.industry and lead.company_size and lead.icp_tier


def _csv(body: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("leads.csv", (CSV_HEADER + body).encode(), content_type="text/csv")


@pytest.fixture
def revops(alpha, make_user, client_for):
    return client_for(alpha, make_user(alpha, Role.REVOPS))


def test_csv_import_preview_lists_bad_rows_by_line_and_saves_nothing(alpha, revops):
    body = (
        "ok@acme.example,Ok,Row,Acme,lead\n"
        "not-an-email,Bad,Email,Acme,lead\n"
        "z@acme.example,Bad,Stage,Acme,zombie\n"
    )

    response = revops.post(IMPORT_URL, {"import_file": _csv(body), "format": "0"})

    assert response.status_code == 200
    check = response.context["check"]
    assert [row.line for row in check.good] == [2]
    assert [row.line for row in check.bad] == [3, 4]
    page = response.content.decode()
    assert "line 3 — email: &#x27;not-an-email&#x27; is not exactly one email address." in page
    assert "line 4 — lifecycle_stage: Unknown lifecycle stage “zombie”" in page
    with tenant_context(alpha):
        assert Lead.objects.count() == 0


def test_csv_import_preview_then_confirm_creates_leads(alpha, revops):
    with tenant_context(alpha):
        lead_upsert(data={"email": "old@acme.example", "first_name": "Old"}, source_system="hubspot")
    body = "New@Acme.example,New,Lead,Acme,mql\nOLD@acme.example,Old,Renamed,Acme,sql\n"

    preview = revops.post(IMPORT_URL, {"import_file": _csv(body), "format": "0"})

    assert preview.status_code == 200
    assert not preview.context["check"].bad
    assert (preview.context["check"].created, preview.context["check"].updated) == (1, 1)
    with tenant_context(alpha):
        assert Lead.objects.count() == 1, "the preview is a dry run"
    confirm = preview.context["confirm_form"].initial

    response = revops.post(PROCESS_URL, confirm)

    assert response.status_code == 302
    with tenant_context(alpha):
        leads = dict(Lead.objects.values_list("email", "lifecycle_stage"))
        new = Lead.objects.get(email="new@acme.example")
        old = Lead.objects.get(email="old@acme.example")
    assert leads == {"new@acme.example": "mql", "old@acme.example": "sql"}
    assert new.source_system == "csv"
    assert old.source_system == "hubspot", "an update keeps where the lead came from"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AE], ids=str)
def test_roles_that_only_view_leads_cannot_import_or_export(role, alpha, make_user, client_for):
    client = client_for(alpha, make_user(alpha, role))

    assert client.get("/admin/campaigns/lead/").status_code == 200
    assert client.get(IMPORT_URL).status_code == 403
    assert (
        client.post(
            IMPORT_URL, {"import_file": _csv("x@acme.example,X,Y,Z,lead\n"), "format": "0"}
        ).status_code
        == 403
    )
    assert client.post("/admin/campaigns/lead/export/", {"format": "0"}).status_code == 403
    with tenant_context(alpha):
        assert Lead.objects.count() == 0


def test_lead_list_query_count(alpha, revops, django_assert_max_num_queries):
    with tenant_context(alpha):
        leads_generate_synthetic(120, seed=1)

    with django_assert_max_num_queries(20):
        response = revops.get("/admin/campaigns/lead/")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 120
