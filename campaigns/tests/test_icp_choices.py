"""The ICP's industries and geographies: chosen from the lists in campaigns.icp_choices, with an
"other" entry, duplicates merged, the admin form and the API validating through the same model
code, and ICPs stored before the lists still loading and saving."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from campaigns.icp_choices import GEOGRAPHY_LIST, INDUSTRY_LIST, OTHER
from tenants.policy.models import IcpDefinition
from tenants.roles import Role

pytestmark = pytest.mark.django_db

FORM_URL = "/admin/policy/icpdefinition/"
API_URL = "/api/v1/policy/icp/"
SIZES = {"company_size_min": "10", "company_size_max": "1000"}


@pytest.fixture
def revops(alpha, make_user, client_for):
    return client_for(alpha, make_user(alpha, Role.REVOPS))


def _icp(tenant) -> IcpDefinition:
    with tenant_context(tenant):
        return IcpDefinition.get_solo()


def _patch(client, body: dict):
    response = client.patch(API_URL, json.dumps(body), content_type="application/json")
    connection.set_schema_to_public()
    return response


def _form_errors(response) -> dict[str, str]:
    assert response.status_code == 200, "an invalid form is shown again, not saved"
    return {name: " ".join(errors) for name, errors in response.context["adminform"].form.errors.items()}


def test_the_lists_are_the_console_s_own_and_hold_the_values_leads_carry():
    assert INDUSTRY_LIST.listed("saas ") == "SaaS"
    assert INDUSTRY_LIST.listed("e commerce") == "E-commerce"
    # the codes Lead.country holds (CRM pulls, demo and synthetic data), names and ISO aliases alike
    assert [GEOGRAPHY_LIST.listed(v) for v in ("us", "United States of America", "Germany", "GB", "uk")] == [
        "US",
        "US",
        "DE",
        "UK",
        "UK",
    ]
    assert GEOGRAPHY_LIST.listed("EMEA") is None
    assert len(GEOGRAPHY_LIST.choices) == 249


def test_the_form_saves_chosen_values_and_other_values_in_canonical_form(alpha, revops):
    response = revops.post(
        FORM_URL,
        {
            **SIZES,
            "industries": ["SaaS", "Fintech", OTHER],
            "industries_other": "  Space   mining \nsaas ",
            "geographies": ["US", "DE", OTHER],
            "geographies_other": "Bavaria\nunited kingdom",
        },
    )

    assert response.status_code == 302
    icp = _icp(alpha)
    assert icp.industries == ["SaaS", "Fintech", "Space mining"]  # "saas " merged into SaaS
    assert icp.geographies == ["US", "DE", "Bavaria", "UK"]


@pytest.mark.parametrize(
    ("chosen", "other", "message"),
    [
        (["SaaS"], "Space mining", "Choose “Other” in the list to add values that are not on it"),
        (["SaaS", OTHER], "", "Type the other values, one per line, or unselect “Other”."),
    ],
    ids=["text without other", "other without text"],
)
def test_free_text_only_with_other_chosen(alpha, revops, chosen, other, message):
    before = _icp(alpha).updated_at

    response = revops.post(FORM_URL, {**SIZES, "industries": chosen, "industries_other": other})

    assert message in _form_errors(response)["industries_other"]
    assert _icp(alpha).updated_at == before


def test_a_value_outside_the_list_is_refused_alike_by_the_form_and_the_api(alpha, revops):
    message = "Not an industry: '---'"

    form = revops.post(FORM_URL, {**SIZES, "industries": [OTHER], "industries_other": "---"})
    api = _patch(revops, {"industries": ["SaaS", "---"]})

    assert message in _form_errors(form)["industries"]
    assert api.status_code == 400 and message in api.json()["industries"][0]
    assert _icp(alpha).industries == []


def test_case_insensitive_duplicates_are_merged_alike_by_the_form_and_the_api(alpha, revops):
    api = _patch(
        revops,
        {
            "industries": ["SaaS", "saas ", "SAAS", "Aero-space", "aero space"],
            "geographies": ["us", "US", "usa"],
        },
    )
    through_api = _icp(alpha)
    form = revops.post(
        FORM_URL,
        {
            **SIZES,
            "industries": ["SaaS", OTHER],
            "industries_other": "saas \nSAAS\nAero-space\naero space",
            "geographies": ["US", OTHER],
            "geographies_other": "us\nusa",
        },
    )
    through_form = _icp(alpha)

    assert api.status_code == 200 and form.status_code == 302
    assert through_api.industries == through_form.industries == ["SaaS", "Aero-space"]
    assert through_api.geographies == through_form.geographies == ["US"]
    assert api.json()["industries"] == ["SaaS", "Aero-space"]


def test_an_icp_stored_before_the_lists_loads_with_its_values_as_other_and_saves_unchanged(alpha, revops):
    # given an ICP written before the lists existed (or through the API) with values outside them
    with tenant_context(alpha):
        IcpDefinition.objects.filter(pk=IcpDefinition.get_solo().pk).update(
            industries=["Alpha-only Aerospace", "saas"], geographies=["EMEA", "uk"]
        )

    # when RevOps opens the form
    page = revops.get(FORM_URL)

    # then listed values are selected in the list's spelling and the rest are "other" values
    form = page.context["adminform"].form
    assert form.initial["industries"] == ["SaaS", OTHER]
    assert form.initial["industries_other"] == ["Alpha-only Aerospace"]
    assert form.initial["geographies"] == ["UK", OTHER]
    assert form.initial["geographies_other"] == ["EMEA"]
    assert "Alpha-only Aerospace" in page.content.decode()

    # and saving the form as shown keeps every value
    response = revops.post(
        FORM_URL,
        {
            **SIZES,
            "industries": form.initial["industries"],
            "industries_other": "\n".join(form.initial["industries_other"]),
            "geographies": form.initial["geographies"],
            "geographies_other": "\n".join(form.initial["geographies_other"]),
        },
    )
    assert response.status_code == 302
    icp = _icp(alpha)
    assert (icp.industries, icp.geographies) == (["SaaS", "Alpha-only Aerospace"], ["UK", "EMEA"])


def test_saving_the_icp_form_or_api_rescores_the_leads(alpha, revops, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as form_callbacks:
        assert revops.post(FORM_URL, {**SIZES, "industries": ["SaaS"]}).status_code == 302
    with django_capture_on_commit_callbacks() as api_callbacks:
        assert _patch(revops, {"industries": ["Fintech"]}).status_code == 200

    for callbacks in (form_callbacks, api_callbacks):
        assert [getattr(c, "func", c).__name__ for c in callbacks] == ["_enqueue_rescore"]
