"""The admin at volume: every list page of a high-volume table costs a bounded number of queries,
each served by an index: exact searches on canonical values (never ``UPPER(col) = UPPER(%s)``),
a count capped by a LIMIT, filters with fixed choices (never ``SELECT DISTINCT`` over the table),
and hostile filter values (a NUL byte) answer 4xx, never 500.
"""

from __future__ import annotations

import re
import uuid

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django_tenants.utils import tenant_context

from approvals.tests.factories import propose_email
from campaigns.models import Lead
from connectors.models import CallLedger, Enrichment, Suppression, WebhookEvent
from tenants.roles import Role

pytestmark = pytest.mark.django_db

ENRICHMENT_REF = uuid.UUID("6f1c2b8e-0d7a-4c55-9a51-0f3e5a7d9b21")
# The high-volume lists, a search each must answer from an index, and the equality it compiles to.
LISTS = {
    "webhook events": (
        "/admin/connectors/webhookevent/",
        "Bob@Volume.Example",
        '"connectors_webhookevent"."email" = \'bob@volume.example\'',
    ),
    "suppressions": (
        "/admin/connectors/suppression/",
        "Bob@Volume.Example",
        '"connectors_suppression"."email" = \'bob@volume.example\'',
    ),
    "leads": (
        "/admin/campaigns/lead/",
        "Bob@Volume.Example",
        '"campaigns_lead"."email" = \'bob@volume.example\'',
    ),
    "ledger": (
        "/admin/connectors/callledger/",
        " volume-key-1 ",
        '"connectors_callledger"."idempotency_key" = \'volume-key-1\'',
    ),
    "enrichments": (
        "/admin/connectors/enrichment/",
        str(ENRICHMENT_REF),
        f'"connectors_enrichment"."ref" = \'{ENRICHMENT_REF.hex}\'::uuid',
    ),
    "audit log": (
        "/admin/auditlog/logentry/",
        "volume-object-1",
        '"auditlog_logentry"."object_pk" = \'volume-object-1\'',
    ),
    "action requests": (
        "/admin/approvals/actionrequest/?status=all",
        "volume-req-1",
        '"approvals_actionrequest"."idempotency_key" = \'volume-req-1\'',
    ),
}
# Everything a list page does (session, user, permissions, the rows, the capped count, filters):
# the same at 10 rows or 10 million.
MAX_QUERIES = 14


@pytest.fixture
def admin_client(alpha, make_user, client_for):
    client = client_for(alpha, make_user(alpha, Role.TENANT_ADMIN))
    client.raise_request_exception = False  # a 500 is an answer to assert on, not a test crash
    return client


@pytest.fixture
def rows(alpha):
    now = timezone.now()
    with tenant_context(alpha):
        for index in range(3):
            WebhookEvent.objects.create(
                system="instantly",
                event_id=f"volume-{index}",
                event_type="email_bounced" if index else "workspace_custom_label",
                email="bob@volume.example" if index == 0 else f"other{index}@volume.example",
                payload={},
            )
            Lead.objects.create(email="bob@volume.example" if index == 0 else f"lead{index}@volume.example")
            CallLedger.objects.create(
                idempotency_key=f"volume-key-{index}",
                system="hubspot",
                operation="upsert",
                request={},
                started_at=now,
            )
        Suppression.objects.create(email="bob@volume.example", reason="manual", source="admin")
        Suppression.objects.create(domain="volume.example", reason="dnc", source="instantly")
        Enrichment.objects.create(ref=ENRICHMENT_REF, email="bob@volume.example")
        propose_email(key="volume-req-1")
        LogEntry.objects.create(
            content_type=ContentType.objects.get_for_model(Lead),
            object_pk="volume-object-1",
            object_repr="bob@volume.example",
            action=LogEntry.Action.CREATE,
            changes={},
        )


def _sql(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


def _assert_indexed(statements: list[str]) -> None:
    for sql in statements:
        assert "UPPER(" not in sql, f"no btree index serves {sql}"
        assert " LIKE " not in sql.upper(), f"a substring search scans the table: {sql}"
        if "COUNT(*)" in sql.upper():
            assert "LIMIT" in sql.upper(), f"an uncapped count reads every row: {sql}"
        assert "DISTINCT" not in sql.upper(), f"a filter's choices scan the table: {sql}"


@pytest.mark.parametrize("name", list(LISTS))
def test_high_volume_list_is_capped_and_builds_no_all_values_filter(
    name, rows, admin_client, django_assert_max_num_queries
):
    url, _, _ = LISTS[name]

    with django_assert_max_num_queries(MAX_QUERIES) as captured:
        response = admin_client.get(url)

    assert response.status_code == 200
    _assert_indexed(_sql(captured))


@pytest.mark.parametrize("name", list(LISTS))
def test_exact_search_is_an_indexed_equality_on_the_canonical_value(
    name, rows, admin_client, django_assert_max_num_queries
):
    url, term, equality = LISTS[name]
    path, _, query = url.partition("?")

    with django_assert_max_num_queries(MAX_QUERIES) as captured:
        response = admin_client.get(path, {**dict([query.split("=")] if query else []), "q": term})

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1, "the exact search finds the row"
    statements = _sql(captured)
    _assert_indexed(statements)
    assert any(equality in sql for sql in statements), equality


def test_suppression_search_by_address_also_shows_its_domain_entry(rows, admin_client):
    response = admin_client.get("/admin/connectors/suppression/", {"q": "Bob@Volume.Example"})

    shown = {str(entry) for entry in response.context["cl"].result_list}
    assert shown == {"bob@volume.example", "@volume.example"}


def test_search_that_no_field_accepts_runs_no_scan(rows, admin_client, django_assert_max_num_queries):
    # not an address, not a domain: the search cannot match a suppression, so nothing is read
    with django_assert_max_num_queries(MAX_QUERIES) as captured:
        response = admin_client.get("/admin/connectors/suppression/", {"q": "no such thing"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert not any("connectors_suppression" in sql for sql in _sql(captured) if "WHERE" in sql)


def test_event_type_filter_offers_fixed_choices_and_filters_by_them(rows, admin_client):
    response = admin_client.get("/admin/connectors/webhookevent/", {"event_type": "email_bounced"})

    assert response.status_code == 200
    assert {e.event_type for e in response.context["cl"].result_list} == {"email_bounced"}
    body = response.content.decode()
    assert "workspace_custom_label" not in body.split('id="changelist-filter"')[1], (
        "the filter's choices are fixed, not read from the table"
    )


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("/admin/connectors/webhookevent/", "system=insta%00ntly"),
        ("/admin/connectors/webhookevent/", "event_type=email%00bounced"),
        ("/admin/connectors/webhookevent/", "email=a%00b"),
        ("/admin/connectors/suppression/", "source=ad%00min"),
        ("/admin/connectors/suppression/", "q=bob%00@volume.example"),
        ("/admin/campaigns/lead/", "lifecycle_stage=le%00ad"),
        ("/admin/campaigns/lead/", "company_domain__exact=x%00y"),
        ("/admin/approvals/actionrequest/", "target=%00"),
        ("/admin/auditlog/logentry/", "cid=%00"),
        ("/admin/connectors/callledger/", "st%00atus=done"),
    ],
)
def test_nul_in_admin_list_querystring_is_4xx_never_500(url, query, rows, admin_client):
    response = admin_client.get(f"{url}?{query}")

    assert 400 <= response.status_code < 500, response.status_code


def test_no_exact_search_on_the_tables_compiles_to_upper():
    """Every admin on both sites: a ``=field`` search compiles to ``UPPER(col) = UPPER(%s)``."""
    from django.contrib import admin as django_admin

    from mh1.admin_sites import public_site, tenant_site

    offenders = [
        f"{model._meta.label}: {field}"
        for site in (public_site, tenant_site, django_admin.site)
        for model, model_admin in site._registry.items()
        for field in model_admin.search_fields or ()
        if re.match(r"^[=^@]", field)
    ]
    assert offenders == []
