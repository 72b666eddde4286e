"""What the decision screen offers to whom: a viewer reads a request but is offered no decision; a
tenant admin who turns the tenant kill switch on then reads, on a request, that it would not run."""

from __future__ import annotations

from playwright.sync_api import expect

from tenants.policy.models import RolloutSettings
from tenants.roles import Role

QUEUE = "/admin/approvals/actionrequest/"
ROLLOUT = "/admin/policy/rolloutsettings/"


def test_viewer_sees_a_request_but_is_not_offered_the_decision_panel(
    site, make_user, log_in, page, propose, screenshot
):
    viewer = make_user(site.tenant, Role.VIEWER, "viewer@worker.test")
    request = propose("Hello from the viewer test", "reader@viewer-prospect.example")
    log_in(site, viewer)

    # the viewer finds it in the queue and opens it
    page.goto(site.url(QUEUE))
    page.locator("#result_list tr", has_text="Hello from the viewer test").get_by_role("link").first.click()

    # and reads the email as it would be sent ...
    expect(page.get_by_role("heading", name="What will happen")).to_be_visible()
    expect(page.get_by_role("cell", name="Hello from the viewer test", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    screenshot("1-request-as-viewer")
    # ... but no decision is offered: no panel, no button, no shortcut hint
    expect(page.get_by_role("heading", name="Decide")).to_have_count(0)
    for button in ("Approve", "Approve and next", "Reject", "Reject and next", "Delegate", "Save edit"):
        expect(page.get_by_role("button", name=button, exact=True)).to_have_count(0)
    expect(page.get_by_text("Keyboard:")).to_have_count(0)
    assert request.status == "pending"


def test_tenant_admin_turns_the_kill_switch_on_and_the_decision_screen_warns(
    site, make_user, log_in, page, propose, in_tenant, screenshot
):
    admin = make_user(site.tenant, Role.TENANT_ADMIN, "admin@worker.test")
    request = propose("Spring offer", "buyer@kill-prospect.example")
    log_in(site, admin)

    # the request page warns of nothing yet
    page.goto(site.url(f"{QUEUE}{request.pk}/change/"))
    expect(page.get_by_role("heading", name="Decide")).to_be_visible()
    expect(page.get_by_text("Would not run now")).to_have_count(0)

    # when the tenant admin turns the kill switch on, with a reason
    page.goto(site.url(ROLLOUT))
    page.get_by_label("Kill switch", exact=True).check()
    page.locator("[name=kill_switch_reason]").fill("Mailbox provider incident")
    screenshot("1-kill-switch-form")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("ul.messagelist")).to_contain_text("changed successfully")

    # then the admin home shows it on, and the request says it would not run now, and why
    expect(page.locator("tr", has_text="Tenant kill switch")).to_contain_text(
        "ON — Mailbox provider incident"
    )
    screenshot("2-home-kill-switch-on")
    page.goto(site.url(f"{QUEUE}{request.pk}/change/"))
    warning = "Would not run now: The tenant kill switch is on: Mailbox provider incident"
    expect(page.get_by_text(warning)).to_be_visible()
    expect(page.get_by_text("It would not run now:")).to_be_visible()
    screenshot("3-request-warns")
    rollout = in_tenant(RolloutSettings.get_solo)
    assert (rollout.kill_switch, rollout.kill_switch_reason) == (True, "Mailbox provider incident")
