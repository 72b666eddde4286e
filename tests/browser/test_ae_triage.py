"""An account executive works through the approval queue on the decision screen: approve and next
(button and keyboard), reject with a reason and redo instructions, edit then approve, delegate."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from approvals.models import Status
from tenants.roles import Role

pytestmark = pytest.mark.usefixtures("workers_paused")

QUEUE = "/admin/approvals/actionrequest/"
# What an approval leaves behind without a worker running (with one, it may already have run).
APPROVED = {Status.APPROVED, Status.EXECUTING, Status.EXECUTED}


def _change_url(request) -> re.Pattern:
    return re.compile(rf"{QUEUE}{request.pk}/change/$")


def _messages(page):
    return page.locator("ul.messagelist")


def _form_with_button(page, name: str):
    """The decision panel's form whose submit button reads ``name`` (forms are found by what they
    say, not by their position on the page)."""
    return page.locator("form").filter(has=page.get_by_role("button", name=name, exact=True))


def test_ae_triages_five_pending_requests_with_approve_and_next(
    site, make_user, log_in, page, propose, refetch, screenshot
):
    # given five pending emails waiting for an AE
    ae = make_user(site.tenant, Role.AE, "ae@worker.test")
    requests = [propose(f"Triage {n} of 5", f"lead{n}@prospect{n}.example") for n in range(1, 6)]
    log_in(site, ae)

    # when the AE opens the queue, then the first request
    page.goto(site.url(QUEUE))
    expect(page.get_by_text(re.compile(r"Showing pending requests — 5 found"))).to_be_visible()
    # every column fits the 1366 px screen: the list does not scroll sideways, age / SLA shows
    results = page.locator("#changelist .results")
    assert results.evaluate("el => el.scrollWidth <= el.clientWidth"), "the queue scrolls sideways"
    expect(page.locator("#result_list th.column-age_sla")).to_be_in_viewport()
    page.locator("#result_list tr", has_text="Triage 1 of 5").get_by_role("link").first.click()
    expect(page).to_have_url(_change_url(requests[0]))
    expect(page.get_by_role("heading", name="Decide")).to_be_visible()
    screenshot("1-decision-screen")

    # and approves each one with "Approve and next" (the third with its keyboard shortcut `a`)
    confirmations = []
    for n, request in enumerate(requests, start=1):
        expect(page).to_have_url(_change_url(request))
        expect(page.get_by_role("cell", name=f"Triage {n} of 5", exact=True)).to_be_visible()
        if n == 3:
            page.once("dialog", lambda dialog: (confirmations.append(dialog.message), dialog.accept()))
            page.keyboard.press("a")
        else:
            page.get_by_role("button", name="Approve and next").click()
        expect(_messages(page)).to_contain_text(f"Request #{request.pk} approved; it is queued to run.")
        if n == 1:
            screenshot("2-approved-and-next-opened")

    # then each approval said so, the next one opened each time, and the queue is empty
    assert confirmations == ["Approve this request and open the next one?"]
    expect(page).to_have_url(re.compile(rf"{QUEUE}$"))
    expect(_messages(page)).to_contain_text("Nothing else is waiting for you.")
    expect(page.get_by_text(re.compile(r"Showing pending requests — 0 found"))).to_be_visible()
    screenshot("3-queue-empty")
    assert {refetch(request).status for request in requests} <= APPROVED


def test_ae_rejects_one_with_a_reason_and_redo_instructions(
    site, make_user, log_in, page, propose, refetch, screenshot
):
    ae = make_user(site.tenant, Role.AE, "ae@worker.test")
    salesy = propose("Our pricing, today only", "buyer@acme-prospect.example")
    following = propose("A short question", "other@globex-prospect.example")
    log_in(site, ae)

    page.goto(site.url(f"{QUEUE}{salesy.pk}/change/"))
    reject = _form_with_button(page, "Reject")
    reject.locator("[name=reason]").fill("Too salesy for a first touch")
    reject.locator("[name=redo_instructions]").fill("Shorter, no pricing claims")
    screenshot("1-reason-written")
    reject.get_by_role("button", name="Reject and next").click()

    # the next request opens, and the message says which one was rejected
    expect(page).to_have_url(_change_url(following))
    expect(_messages(page)).to_contain_text(f"Request #{salesy.pk} rejected.")
    screenshot("2-next-opened")

    # the rejected request's page: no decision offered any more, the reason in its timeline
    page.goto(site.url(f"{QUEUE}{salesy.pk}/change/"))
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.get_by_text(re.compile(r"rejected .* Too salesy for a first touch"))).to_be_visible()
    expect(page.get_by_role("heading", name="Decide")).to_have_count(0)
    screenshot("3-rejected-request")
    saved = refetch(salesy)
    assert saved.status == Status.REJECTED
    assert (saved.rejection_reason, saved.redo_instructions) == (
        "Too salesy for a first touch",
        "Shorter, no pricing claims",
    )


def test_ae_edits_the_email_then_approves_it(site, make_user, log_in, page, propose, refetch, screenshot):
    ae = make_user(site.tenant, Role.AE, "ae@worker.test")
    request = propose("Quick idea", "lee@edit-prospect.example", body="Hi Lee,\nA long, long note.")
    log_in(site, ae)

    page.goto(site.url(f"{QUEUE}{request.pk}/change/"))
    edit = _form_with_button(page, "Save edit")
    expect(edit.locator("[name=subject]")).to_have_value("Quick idea")
    edit.locator("[name=subject]").fill("A quick idea for Lee")
    edit.locator("[name=body]").fill("Hi Lee,\nA short note.")
    edit.get_by_role("button", name="Save edit").click()

    # the screen now shows the email as edited, and says that it was
    expect(_messages(page)).to_contain_text(f"Request #{request.pk} edited; the original is kept.")
    expect(page.get_by_role("cell", name="A quick idea for Lee", exact=True)).to_be_visible()
    expect(page.get_by_text("Edited before approval")).to_be_visible()
    screenshot("1-edited")

    page.get_by_role("button", name="Approve", exact=True).click()
    expect(_messages(page)).to_contain_text(f"Request #{request.pk} approved; it is queued to run.")
    screenshot("2-approved")
    saved = refetch(request)
    assert saved.status in APPROVED
    assert saved.payload["subject"] == "A quick idea for Lee"
    # a browser sends a textarea's line breaks as CRLF, and the edit keeps them as sent
    assert saved.payload["body"].splitlines() == ["Hi Lee,", "A short note."]
    assert "subject" in saved.payload_diff


def test_ae_delegates_one_to_an_eligible_approver(
    site, make_user, log_in, page, propose, refetch, screenshot
):
    ae = make_user(site.tenant, Role.AE, "ae@worker.test")
    colleague = make_user(site.tenant, Role.TENANT_ADMIN, "lead@worker.test")
    make_user(site.tenant, Role.VIEWER, "viewer@worker.test")  # may not approve: never offered
    request = propose("Renewal note", "cfo-office@delegate-prospect.example")
    log_in(site, ae)

    page.goto(site.url(f"{QUEUE}{request.pk}/change/"))
    delegate = _form_with_button(page, "Delegate")
    choices = delegate.locator("select[name=to_user] option")
    expect(choices).to_contain_text(["lead@worker.test"])
    expect(choices.filter(has_text="viewer@worker.test")).to_have_count(0)
    expect(choices.filter(has_text="ae@worker.test")).to_have_count(0)
    delegate.locator("select[name=to_user]").select_option(label="lead@worker.test")
    delegate.get_by_role("button", name="Delegate").click()

    expect(_messages(page)).to_contain_text(f"Request #{request.pk} delegated to lead@worker.test.")
    screenshot("1-delegated")
    saved = refetch(request)
    assert saved.status == Status.PENDING
    assert saved.assigned_to == colleague
