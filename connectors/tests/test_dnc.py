"""One mapping from a CRM's do-not-contact to a suppression, for webhooks and the lead pull alike."""

from __future__ import annotations

import pytest
from django.db import connection

from connectors.models import Suppression

pytestmark = pytest.mark.django_db


HS_OPT_OUT = "opted out of email in HubSpot (hs_email_optout)"
GHL_EMAIL_DND = "email do-not-disturb in GoHighLevel"


@pytest.mark.parametrize(
    ("system", "record", "why"),
    [
        ("hubspot", {"hs_email_optout": "true"}, HS_OPT_OUT),
        ("hubspot", {"hs_email_optout": True}, HS_OPT_OUT),
        (
            "hubspot",
            {"propertyName": "hs_email_optout", "propertyValue": "true"},
            "opted out of email in HubSpot (hs_email_optout)",
        ),
        ("hubspot", {"hs_email_optout": "false"}, None),
        ("hubspot", {"propertyName": "hs_email_optout", "propertyValue": "false"}, None),
        ("hubspot", {"propertyName": "firstname", "propertyValue": "true"}, None),
        ("gohighlevel", {"dnd": True}, "do-not-disturb on every channel in GoHighLevel (dnd)"),
        (
            "gohighlevel",
            {"dndSettings": {"Email": {"status": "active"}}},
            "email do-not-disturb in GoHighLevel",
        ),
        (
            "gohighlevel",
            {"dndSettings": {"SMS": {"status": "active"}, "Email": {"status": "inactive"}}},
            None,
        ),
        ("gohighlevel", {"tags": ["Customer", " DNC "]}, "tagged 'DNC' in GoHighLevel"),
        ("gohighlevel", {"tags": ["Do-Not-Contact"]}, "tagged 'Do-Not-Contact' in GoHighLevel"),
        ("gohighlevel", {"tags": ["dnc-review"], "dnd": False}, None),
        ("gohighlevel", {"tags": "DNC"}, "tagged 'DNC' in GoHighLevel"),
        ("instantly", {"dnd": True}, None),
    ],
)
def test_do_not_contact_says_whether_and_why(system, record, why):
    from connectors.dnc import do_not_contact

    assert do_not_contact(system, record) == why


def test_pull_suppresses_an_email_dnd_record_through_the_same_mapping(alpha):
    from connectors.pull import crm_record_read

    connection.set_tenant(alpha)
    record = {"id": "c-5", "email": "Quiet@GHL.example", "dndSettings": {"Email": {"status": "active"}}}

    outcome = crm_record_read("gohighlevel", record)

    assert "suppressed" in outcome
    entry = Suppression.objects.get(email="quiet@ghl.example")
    assert (entry.reason, entry.note) == ("dnc", "email do-not-disturb in GoHighLevel")
