"""RevOps edits the tenant's policy forms: the ICP that scores leads, and the sending policy (a
mistake there is shown on the form and saves nothing)."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from campaigns.models import IcpRescore, LifecycleStage
from campaigns.services import lead_upsert
from tenants.policy.models import IcpDefinition, SendingPolicy
from tenants.roles import Role

ICP = "/admin/policy/icpdefinition/"
SENDING = "/admin/policy/sendingpolicy/"
LEADS = "/admin/campaigns/lead/"
# A VP of Sales at a 120-person SaaS company, and an engineer at a 40-person one.
FIT = {
    "email": "vp@fit-co.example",
    "company_size": 120,
    "title": "VP Sales",
    "first_name": "Vera",
    "industry": "SaaS",
}
MISFIT = {"email": "dev@tiny-co.example", "company_size": 40, "title": "Engineer", "first_name": "Dev"}
# The re-scoring of a couple of leads takes well under a second on a real worker.
RESCORE_WAIT_SECONDS = 20


def _saved(page):
    expect(page.locator("ul.messagelist")).to_contain_text("changed successfully")


def _lead_row(page, lead: dict):
    return page.locator("#result_list tr", has_text=lead["email"])


def _leads_make() -> None:
    # the default taxonomy comes from a data migration, which a transactional test's flush empties
    LifecycleStage.objects.get_or_create(key="lead", defaults={"label": "Lead"})
    for data in (FIT, MISFIT):
        lead_upsert(data={**data, "lifecycle_stage": "lead"}, source_system="manual")


def _wait_for(condition) -> None:
    deadline = time.monotonic() + RESCORE_WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not done within {RESCORE_WAIT_SECONDS} s"
        time.sleep(0.2)


def test_revops_edits_the_icp_and_the_leads_list_shows_the_new_tiers(
    site, make_user, log_in, page, in_tenant, celery_worker, screenshot
):
    # given two leads nobody has scored yet (a real worker runs the re-scoring)
    revops = make_user(site.tenant, Role.REVOPS, "revops@worker.test")
    in_tenant(_leads_make)
    log_in(site, revops)

    # when RevOps narrows the ICP to mid-sized companies and their sales leaders
    page.goto(site.url(ICP))
    expect(page.get_by_role("heading", name="Change ICP definition")).to_be_visible()
    page.locator("[name=company_size_min]").fill("100")
    page.locator("[name=company_size_max]").fill("500")
    # an industry is picked from the list: its label stands left of the two boxes, as every label
    label = page.locator("label[for=id_industries]").bounding_box()
    available = page.locator("#id_industries_from").bounding_box()
    assert label["x"] + label["width"] <= available["x"], "the Industries label is not left of its boxes"
    page.locator("#id_industries_from").select_option(label="SaaS")
    page.locator("#id_industries_add").click()
    expect(page.locator("#id_industries_to")).to_contain_text("SaaS")
    page.locator("[name=titles]").fill("VP Sales\nHead of Growth\n")
    # a competitor's domain as people paste it: upper case, with www. and a trailing dot
    page.locator("[name=competitor_domains]").fill("WWW.Rival.example.")
    screenshot("1-icp-filled")
    page.get_by_role("button", name="Save", exact=True).click()

    # then it says so, and the form shows what was kept, the domain as the gates compare it
    _saved(page)
    page.goto(site.url(ICP))
    expect(page.locator("[name=company_size_min]")).to_have_value("100")
    expect(page.locator("[name=company_size_max]")).to_have_value("500")
    expect(page.locator("[name=titles]")).to_have_value("VP Sales\nHead of Growth")
    expect(page.locator("[name=competitor_domains]")).to_have_value("rival.example")
    expect(page.locator("#id_industries_to option")).to_have_text(["SaaS"])
    screenshot("2-icp-saved")
    icp = in_tenant(IcpDefinition.get_solo)
    assert (icp.company_size_min, icp.company_size_max) == (100, 500)
    assert (icp.titles, icp.competitor_domains) == (["VP Sales", "Head of Growth"], ["rival.example"])
    assert icp.industries == ["SaaS"]

    # and once the worker has re-scored every lead, the leads list shows their new tiers
    _wait_for(lambda: in_tenant(lambda: IcpRescore.objects.filter(finished_at__isnull=False).exists()))
    page.goto(site.url(LEADS))
    expect(_lead_row(page, FIT).locator("td.field-icp_tier")).to_have_text("A")
    expect(_lead_row(page, MISFIT).locator("td.field-icp_tier")).to_have_text("D")
    screenshot("3-leads-rescored")


def test_revops_edits_the_sending_policy_and_a_mistake_saves_nothing(
    site, make_user, log_in, page, in_tenant, screenshot
):
    revops = make_user(site.tenant, Role.REVOPS, "revops@worker.test")
    before = in_tenant(SendingPolicy.get_solo)
    log_in(site, revops)

    # a daily limit above the monthly one: the form says what is wrong, next to the field
    page.goto(site.url(SENDING))
    expect(page.get_by_role("heading", name="Change sending policy")).to_be_visible()
    page.locator("[name=monthly_limit]").fill("200")
    page.locator("[name=sending_mailboxes]").fill("sales@worker.example")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Please correct the error below.")).to_be_visible()
    expect(page.locator(".errorlist")).to_contain_text("The daily limit cannot exceed the monthly limit.")
    expect(page.locator("ul.messagelist")).to_have_count(0)
    screenshot("1-error-shown")
    # and nothing was saved: not the bad limit, not the mailbox typed beside it
    unchanged = in_tenant(SendingPolicy.get_solo)
    assert (unchanged.monthly_limit, unchanged.sending_mailboxes) == (before.monthly_limit, [])
    assert unchanged.updated_at == before.updated_at

    # when RevOps corrects it, it saves
    page.locator("[name=monthly_limit]").fill("3000")
    page.locator("[name=daily_limit]").fill("150")
    page.get_by_role("button", name="Save", exact=True).click()
    _saved(page)
    page.goto(site.url(SENDING))
    expect(page.locator("[name=monthly_limit]")).to_have_value("3000")
    expect(page.locator("[name=daily_limit]")).to_have_value("150")
    expect(page.locator("[name=sending_mailboxes]")).to_have_value(re.compile("sales@worker.example"))
    screenshot("2-saved")
    saved = in_tenant(SendingPolicy.get_solo)
    assert (saved.monthly_limit, saved.daily_limit, saved.sending_mailboxes) == (
        3000,
        150,
        ["sales@worker.example"],
    )
