"""The request page an AE decides on: the email exactly as the executor will send it (headers,
text part with its unsubscribe footer, an HTML part only in a sandboxed frame), and the risk
flags in words, with the gates that would stop it now among them."""

from __future__ import annotations

import html

import pytest
from django.core.mail import EmailMultiAlternatives
from django.db import connection
from django_tenants.utils import tenant_context

from approvals.flags import FLAG_WORDS, flag_words
from approvals.preview import render_preview
from approvals.tests.factories import email_payload, propose_email, set_phase
from tenants.roles import Role

pytestmark = pytest.mark.django_db
QUEUE = "/admin/approvals/actionrequest/"


@pytest.fixture
def ae_client(alpha, make_user, client_for):
    ae = make_user(alpha, Role.AE)
    with tenant_context(alpha):
        set_phase("assisted")
    connection.set_schema_to_public()
    return client_for(alpha, ae)


def _propose(alpha, **payload):
    with tenant_context(alpha):
        request = propose_email(payload=email_payload(**payload))
    connection.set_schema_to_public()
    return request


def _page(client, request) -> str:
    return client.get(f"{QUEUE}{request.pk}/change/").content.decode()


def test_the_email_is_shown_as_it_will_be_sent_with_its_footer_and_list_unsubscribe(alpha, ae_client):
    request = _propose(alpha, body="Hi Lee,\n<p>Two lines</p> & a tag.", subject="Quick <idea>")

    page = _page(ae_client, request)

    # the text part as the recipient reads it: escaped once, line breaks kept, never as markup
    assert "Hi Lee,\n&lt;p&gt;Two lines&lt;/p&gt; &amp; a tag." in page
    assert "&amp;lt;p&amp;gt;" not in page and "<p>Two lines</p>" not in page
    # the footer and the RFC 8058 headers the executor adds
    assert "\n\n--\nUnsubscribe: http" in page and "/u/" in page
    assert "<th>List-Unsubscribe</th>" in page and "<th>List-Unsubscribe-Post</th>" in page
    assert "List-Unsubscribe=One-Click" in page
    assert "<th>Subject</th><td>Quick &lt;idea&gt;</td>" in page
    assert "<th>To</th><td>Lee Lead &lt;lead@prospect.example&gt;</td>" in page
    assert "Plain text only: no HTML part is sent." in page


def test_an_html_part_is_shown_only_in_a_sandboxed_frame(alpha, monkeypatch):
    def with_html(request, payload, to):
        message = EmailMultiAlternatives(subject="S", body="text", from_email="a@b.example", to=[to])
        message.attach_alternative('<p onclick="x()">Hi</p><script>alert(1)</script>', "text/html")
        return message

    monkeypatch.setattr("connectors.executors.email_message", with_html)
    request = _propose(alpha)
    with tenant_context(alpha):
        shown = str(render_preview(request))

    assert '<iframe class="mh1-html" sandbox=""' in shown
    assert "<script>" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert html.unescape(shown.split('srcdoc="')[1].split('"></iframe>')[0]).startswith('<p onclick="x()">')


def test_risk_flags_are_words_not_slugs(alpha, ae_client):
    request = _propose(alpha, to_title="CEO")
    assert {"c_level_target", "first_run_for_tenant"} <= set(request.risk_flags)

    page = _page(ae_client, request)

    assert "<li>C-level recipient</li>" in page
    assert "<li>first email this tenant sends</li>" in page
    assert "c_level_target" not in page.split('id="flags"')[1].split("</ul>")[0]


def test_a_gate_that_would_stop_it_now_is_among_the_flags(alpha, ae_client):
    request = _propose(alpha)
    with tenant_context(alpha):
        set_phase("assisted", kill_switch=True)
    connection.set_schema_to_public()

    page = _page(ae_client, request)
    flags = page.split('id="flags"')[1].split("</ul>")[0]

    assert '<li class="blocking">Would not run now: ' in flags
    assert "kill switch" in flags.lower()
    assert "No risk flags." not in page


def test_every_flag_the_console_writes_has_words():
    """Each flag slug the impact assessment and the evaluation checks can write has a sentence,
    so no AE ever reads a raw slug (a new flag without words fails here)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    written = set(
        re.findall(
            r'\[\*flags, "([a-z_]+)"\]|flags\.append\("([a-z_]+)"\)',
            (root / "approvals/impact.py").read_text(),
        )
    )
    slugs = {slug for pair in written for slug in pair if slug}
    for source in [*(root / "evaluation/checks").glob("*.py"), root / "evaluation/services.py"]:
        text = source.read_text()
        slugs |= set(re.findall(r'flag="([a-z_]+)"', text)) | set(
            re.findall(r'flags\.append\("([a-z_]+)"\)', text)
        )
    assert {"c_level_target", "first_run_for_tenant", "pii_present", "can_spam", "pii"} <= slugs, slugs
    assert slugs - set(FLAG_WORDS) == set()
    assert (
        flag_words("first_run_for_tenant", "crm.upsert_contact")
        == "first CRM contact write this tenant sends"
    )
    assert flag_words("brand_new_flag", "email.send") == "brand new flag"


# --- messages that say exactly what happened --------------------------------------------------


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_a_first_of_two_approvals_says_it_waits_for_another(alpha, ae_client):
    request = _propose(alpha, to_title="CEO")  # C-level and the tenant's first email: critical
    assert request.approvals_required == 2

    response = ae_client.post(f"{QUEUE}{request.pk}/decide/approve/", {"comment": ""}, follow=True)

    assert _messages(response) == [
        f"Request #{request.pk}: your approval is recorded (1 of 2 approvals needed); "
        "it waits for another approver."
    ]


def test_an_approval_the_kill_switch_stops_says_so(alpha, ae_client):
    request = _propose(alpha)
    with tenant_context(alpha):
        set_phase("assisted", kill_switch=True)
    connection.set_schema_to_public()

    response = ae_client.post(f"{QUEUE}{request.pk}/decide/approve/", {"comment": ""}, follow=True)

    (said,) = _messages(response)
    assert said.startswith(f"Request #{request.pk} approved, but it will not run now: ")
    assert "kill switch" in said.lower()
    assert "approved." not in said


def test_a_bulk_approval_reports_each_request(alpha, ae_client):
    critical = _propose(alpha, to_title="CEO", to="ceo@prospect.example")
    plain = _propose(alpha)
    ae_client.post(f"{QUEUE}{critical.pk}/decide/approve/", {"comment": ""}, follow=True)  # 1 of 2

    response = ae_client.post(
        QUEUE,
        {
            "action": "approve_selected",
            "apply": "1",
            "_selected_action": [critical.pk, plain.pk],
            "comment": "",
        },
        follow=True,
    )
    said = _messages(response)

    assert said[0] == "Approve: 1 of 2 request(s) done, 1 refused."
    assert (
        said[1]
        == f"#{critical.pk}: You already approved this request; a second, different approver is needed."
    )
    assert said[2].startswith(f"Request #{plain.pk} approved")
    assert len(said) == 3


# --- who is offered the panel, and approve / reject and next -----------------------------------


@pytest.fixture
def two_aes(alpha, make_user, client_for):
    first = make_user(alpha, Role.AE, "ae1@alpha.test")
    second = make_user(alpha, Role.AE, "ae2@alpha.test")
    with tenant_context(alpha):
        set_phase("assisted")
    connection.set_schema_to_public()
    return (first, client_for(alpha, first)), (second, client_for(alpha, second))


def test_the_panel_is_not_offered_to_the_requester_or_an_earlier_approver(alpha, two_aes):
    (first, first_client), (_, second_client) = two_aes
    with tenant_context(alpha):
        own = propose_email(requested_by=first)
    connection.set_schema_to_public()
    critical = _propose(alpha, to_title="CEO", to="ceo@prospect.example")
    first_client.post(f"{QUEUE}{critical.pk}/decide/approve/", {"comment": ""}, follow=True)

    response = first_client.get(f"{QUEUE}{own.pk}/change/")
    assert response.status_code == 200, (response.status_code, response.get("Location"))
    own_page = response.content.decode()
    approved_page = _page(first_client, critical)
    second_page = _page(second_client, critical)

    assert 'id="decide"' not in own_page and "You requested this action; someone else decides it." in own_page
    assert 'id="decide"' not in approved_page
    assert "You approved this request (1 of 2 approvals needed)" in approved_page
    assert 'id="decide"' in second_page and 'id="not-yours"' not in second_page
    assert 'id="decide"' in _page(second_client, own)


def test_approve_and_next_opens_the_most_urgent_request_left_then_the_queue(alpha, ae_client):
    from datetime import timedelta

    from django.utils import timezone

    with tenant_context(alpha):
        now = timezone.now()
        first = propose_email(
            payload=email_payload(to="a@prospect.example"), deadline=now + timedelta(hours=1)
        )
        later = propose_email(
            payload=email_payload(to="b@prospect.example"), deadline=now + timedelta(days=2)
        )
        sooner = propose_email(
            payload=email_payload(to="c@prospect.example"), deadline=now + timedelta(hours=2)
        )
    connection.set_schema_to_public()

    step = ae_client.post(f"{QUEUE}{first.pk}/decide/approve/", {"comment": "", "and_next": "1"})
    assert step.status_code == 302 and step["Location"].endswith(f"{QUEUE}{sooner.pk}/change/")

    step = ae_client.post(
        f"{QUEUE}{sooner.pk}/decide/reject/", {"reason": "too long", "redo_instructions": "", "and_next": "1"}
    )
    assert step["Location"].endswith(f"{QUEUE}{later.pk}/change/")

    last = ae_client.post(f"{QUEUE}{later.pk}/decide/approve/", {"comment": "", "and_next": "1"}, follow=True)
    assert last.redirect_chain[0][0] == QUEUE  # nothing left: back to the queue
    assert "Nothing else is waiting for you." in _messages(last)


def test_the_shortcuts_are_shown_and_their_script_is_served_by_us(alpha, ae_client):
    page = _page(ae_client, _propose(alpha))

    assert 'id="shortcuts"' in page and "<kbd>a</kbd> approve and next (asks first)" in page
    assert '<script src="/static/approvals/decide.js" defer></script>' in page
    assert "//cdn" not in page and "https://" not in page.split('id="shortcuts"')[1].split("</p>")[0]
    script = ae_client.get("/static/approvals/decide.js")
    assert script.status_code == 200
    assert b"approve-next" in b"".join(script.streaming_content if script.streaming else [script.content])


# --- the queue list ---------------------------------------------------------------------------


def test_the_queue_shows_subject_and_flags_in_words_and_says_what_it_shows(alpha, ae_client):
    _propose(alpha, subject="A very specific subject line", to_title="CEO")

    page = ae_client.get(QUEUE).content.decode()

    assert '<td class="field-one_line">A very specific subject line</td>' in page
    assert "C-level recipient; first email this tenant sends" in page
    assert "Showing <strong>pending</strong> requests" in page


def test_a_search_that_finds_nothing_pending_offers_every_status(alpha, ae_client):
    done = _propose(alpha, to="gone@prospect.example")
    with tenant_context(alpha):
        from approvals.models import ActionRequest, Status

        ActionRequest.objects.filter(pk=done.pk).update(status=Status.REJECTED)
    connection.set_schema_to_public()

    empty = ae_client.get(QUEUE, {"q": "gone@prospect.example"}).content.decode()
    assert "matching “gone@prospect.example” — 0 found." in empty
    link = html.unescape(empty.split('id="search-everywhere" href="')[1].split('"')[0])
    assert "status=all" in link and "q=gone%40prospect.example" in link

    everywhere = ae_client.get(QUEUE + link).content.decode()
    assert f"/{done.pk}/change/" in everywhere and 'id="search-everywhere"' not in everywhere


def test_the_stored_fields_are_behind_details_and_history_is_the_timeline(alpha, ae_client):
    request = _propose(alpha)

    page = _page(ae_client, request)
    history = ae_client.get(f"{QUEUE}{request.pk}/history/")

    assert page.count("<details") >= 5  # details, evaluation, routing, provenance, payload, outcome
    assert page.index('id="timeline"') < page.index("<details")  # the card first, the raw fields after
    assert history.status_code == 302 and history["Location"] == f"{QUEUE}{request.pk}/change/#timeline"
