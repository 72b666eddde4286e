"""The admin is the queue: list, filters, detail with preview and timeline, decisions, bulk actions."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from approvals.models import ActionRequest, Status
from approvals.services import action_propose
from approvals.tests.factories import email_payload, propose_email, set_phase
from tenants.roles import Role

pytestmark = pytest.mark.django_db
QUEUE = "/admin/approvals/actionrequest/"


@pytest.fixture
def setup(alpha, make_user, client_for):
    ae = make_user(alpha, Role.AE)
    viewer = make_user(alpha, Role.VIEWER)
    with tenant_context(alpha):
        set_phase("assisted")
    connection.set_schema_to_public()
    return {
        "ae": ae,
        "viewer": viewer,
        "ae_client": client_for(alpha, ae),
        "viewer_client": client_for(alpha, viewer),
    }


def _in(alpha, fn):
    with tenant_context(alpha):
        result = fn()
    connection.set_schema_to_public()
    return result


def test_queue_lists_pending_by_deadline_with_bounded_queries(alpha, setup, django_assert_max_num_queries):
    now = timezone.now()

    def make():
        late = propose_email(key="late", deadline=now + timedelta(days=3))
        soon = propose_email(key="soon", deadline=now + timedelta(hours=1))
        for i in range(40):
            propose_email(key=f"bulk-{i}", deadline=now + timedelta(days=2))
        done = propose_email(key="done")
        ActionRequest.objects.filter(pk=done.pk).update(status=Status.REJECTED)
        return late, soon, done

    late, soon, done = _in(alpha, make)

    with django_assert_max_num_queries(12):
        page = setup["ae_client"].get(QUEUE)

    body = page.content.decode()
    assert page.status_code == 200
    assert body.index(f"/{soon.pk}/change/") < body.index(f"/{late.pk}/change/")
    assert f"/{done.pk}/change/" not in body  # default view: pending only
    assert f"/{done.pk}/change/" in setup["ae_client"].get(QUEUE + "?status=all").content.decode()


def test_my_queue_and_overdue_filters(alpha, setup):
    def make():
        mine = propose_email(key="mine")
        ActionRequest.objects.filter(pk=mine.pk).update(assigned_to=setup["ae"])
        other = propose_email(key="other")
        ActionRequest.objects.filter(pk=other.pk).update(assigned_role=Role.REVOPS)
        overdue = propose_email(key="overdue")
        ActionRequest.objects.filter(pk=overdue.pk).update(sla_due_at=timezone.now() - timedelta(minutes=5))
        return mine, other, overdue

    mine, other, overdue = _in(alpha, make)

    body = setup["ae_client"].get(QUEUE + "?queue=mine").content.decode()
    assert f"/{mine.pk}/change/" in body and f"/{other.pk}/change/" not in body
    body = setup["ae_client"].get(QUEUE + "?sla=overdue").content.decode()
    assert f"/{overdue.pk}/change/" in body and f"/{mine.pk}/change/" not in body
    assert "overdue" in body


def test_detail_shows_the_email_as_rendered_risk_and_timeline(alpha, setup):
    request = _in(
        alpha, lambda: propose_email(payload=email_payload(subject="Hello <b>there</b>", to_title="CEO"))
    )

    page = setup["ae_client"].get(f"{QUEUE}{request.pk}/change/").content.decode()

    assert "<th>Subject</th><td>Hello &lt;b&gt;there&lt;/b&gt;</td>" in page  # escaped, never raw HTML
    assert "C-level recipient" in page and "needs 2 distinct approvers" in page
    assert "proposed" in page and 'id="decide"' in page


def test_crm_detail_shows_before_and_after(alpha, setup):
    request = _in(
        alpha,
        lambda: action_propose(
            kind="crm.upsert_contact",
            payload={
                "system": "hubspot",
                "email": "a@b.example",
                "properties": {"lifecyclestage": "sql", "firstname": "Ann"},
                "before": {"lifecyclestage": "mql", "firstname": "Ann"},
            },
            idempotency_key="crm-1",
        ),
    )

    page = setup["ae_client"].get(f"{QUEUE}{request.pk}/change/").content.decode()

    assert '<tr class="changed"><td>lifecyclestage</td><td>mql</td><td>sql</td></tr>' in page


def test_approve_and_reject_buttons(alpha, setup, django_capture_on_commit_callbacks):
    one, two = _in(alpha, lambda: (propose_email(key="one"), propose_email(key="two")))
    client = setup["ae_client"]

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"{QUEUE}{one.pk}/decide/approve/", {"comment": "ok"}, follow=True)
    assert f"Request #{one.pk} approved; it is queued to run." in response.content.decode()
    assert len(callbacks) == 1  # execution scheduled after commit

    response = client.post(f"{QUEUE}{two.pk}/decide/reject/", {"reason": ""}, follow=True)
    assert "Reason: This field is required." in response.content.decode()
    assert _in(alpha, lambda: ActionRequest.objects.get(pk=two.pk).status) == Status.PENDING

    client.post(f"{QUEUE}{two.pk}/decide/reject/", {"reason": "off-brand", "redo_instructions": "shorter"})
    two = _in(alpha, lambda: ActionRequest.objects.get(pk=two.pk))
    assert (two.status, two.redo_instructions) == (Status.REJECTED, "shorter")


def test_edit_email_before_approving(alpha, setup):
    request = _in(alpha, lambda: propose_email(key="edit-me"))

    setup["ae_client"].post(
        f"{QUEUE}{request.pk}/decide/edit/", {"subject": "Better subject", "body": "Short."}
    )

    request = _in(alpha, lambda: ActionRequest.objects.get(pk=request.pk))
    assert request.payload["subject"] == "Better subject"
    assert request.original_payload["subject"] == "Quick idea"


def test_an_edited_body_is_stored_with_the_line_ends_of_every_other_body(alpha, setup):
    request = _in(alpha, lambda: propose_email(key="edit-crlf"))

    setup["ae_client"].post(
        f"{QUEUE}{request.pk}/decide/edit/", {"subject": "Hi", "body": "Line one.\r\nLine two.\rEnd."}
    )

    request = _in(alpha, lambda: ActionRequest.objects.get(pk=request.pk))
    assert request.payload["body"] == "Line one.\nLine two.\nEnd."


def test_bulk_approve_and_bulk_reject_with_comment(alpha, setup):
    ids = _in(alpha, lambda: [propose_email(key=f"b{i}").pk for i in range(4)])
    client = setup["ae_client"]

    confirm = client.post(QUEUE, {"action": "reject_selected", "_selected_action": ids[:2]})
    assert confirm.status_code == 200 and "Reason" in confirm.content.decode()
    client.post(
        QUEUE, {"action": "reject_selected", "_selected_action": ids[:2], "apply": "1", "reason": "no"}
    )
    client.post(
        QUEUE, {"action": "approve_selected", "_selected_action": ids[2:], "apply": "1", "comment": ""}
    )

    statuses = _in(alpha, lambda: dict(ActionRequest.objects.filter(pk__in=ids).values_list("pk", "status")))
    assert [statuses[i] for i in ids] == [Status.REJECTED, Status.REJECTED, Status.APPROVED, Status.APPROVED]


def test_requester_gets_a_clear_error_approving_own_request(alpha, setup):
    request = _in(alpha, lambda: propose_email(key="own", requested_by=setup["ae"]))

    response = setup["ae_client"].post(f"{QUEUE}{request.pk}/decide/approve/", {}, follow=True)

    assert "You requested this action; someone else must approve it." in response.content.decode()
    assert _in(alpha, lambda: ActionRequest.objects.get(pk=request.pk).status) == Status.PENDING


def test_queue_reports_ai_human_agreement_of_the_parallel_phase(alpha, setup):
    def make():
        set_phase("parallel")
        agreed = propose_email(key="p1", release_decision="auto_deliver")
        disagreed = propose_email(key="p2", release_decision="blocked")
        ActionRequest.objects.filter(pk__in=[agreed.pk, disagreed.pk]).update(
            status=Status.APPROVED, decided_at=timezone.now()
        )

    _in(alpha, make)

    page = setup["ae_client"].get(QUEUE).content.decode()

    assert "AI and people agreed on <strong>50%</strong>" in page and "(1 of 2)" in page


def test_viewer_reads_only(alpha, setup):
    request = _in(alpha, lambda: propose_email(key="view"))
    client = setup["viewer_client"]

    listing = client.get(QUEUE).content.decode()
    detail = client.get(f"{QUEUE}{request.pk}/change/").content.decode()
    response = client.post(f"{QUEUE}{request.pk}/decide/approve/", {}, follow=True)

    assert f"/{request.pk}/change/" in listing and "approve_selected" not in listing
    assert 'id="decide"' not in detail
    assert "Your role cannot decide" in response.content.decode()
    assert _in(alpha, lambda: ActionRequest.objects.get(pk=request.pk).status) == Status.PENDING


def test_saved_views_link_my_queue_and_overdue_and_mark_the_one_shown(alpha, setup):
    def make():
        mine = propose_email(payload=email_payload(subject="Mine, late"))
        late = propose_email(payload=email_payload(subject="Someone's, late"))
        fresh = propose_email(payload=email_payload(subject="Someone's, fresh"))
        past = timezone.now() - timedelta(hours=1)
        ActionRequest.objects.filter(pk=mine.pk).update(assigned_to=setup["ae"], sla_due_at=past)
        ActionRequest.objects.filter(pk__in=[late.pk, fresh.pk]).update(assigned_to=setup["viewer"])
        ActionRequest.objects.filter(pk=late.pk).update(sla_due_at=past)

    _in(alpha, make)
    client = setup["ae_client"]
    page = client.get(QUEUE).content.decode()
    nav = page[page.index('id="saved-views"') :].split("</nav>")[0]
    links = dict(re.findall(r'<a href="([^"]+)" class="button"[^>]*>([^<]+)</a>', nav))
    by_label = {label: html.unescape(url) for url, label in links.items()}
    assert by_label["My queue"].endswith("?queue=mine")
    assert by_label["My overdue"].endswith("?queue=mine&sla=overdue")
    # the default page is "All pending", and it is marked as the one shown
    assert re.search(r'aria-current="page"[^>]*>All pending<', nav)

    mine_overdue = client.get(by_label["My overdue"]).content.decode()
    assert "Mine, late" in mine_overdue and "Someone&#x27;s" not in mine_overdue
    assert re.search(r'aria-current="page"[^>]*>My overdue<', mine_overdue)
    all_overdue = client.get(by_label["All overdue"]).content.decode()
    assert "Mine, late" in all_overdue and "Someone&#x27;s, late" in all_overdue
    assert "Someone&#x27;s, fresh" not in all_overdue
