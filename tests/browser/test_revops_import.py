"""RevOps imports a CSV of leads through the admin: upload, map a column the defaults do not
recognise, see the preview list the bad row by its line in the file and what is wrong with it,
import the good rows; the lead list then shows them scored against the ICP, and not the bad one."""

from __future__ import annotations

from playwright.sync_api import expect

from campaigns.models import Lead, LifecycleStage
from tenants.policy.models import IcpDefinition
from tenants.roles import Role

LEADS = "/admin/campaigns/lead/"
FILE_NAME = "event leads.csv"
# "Employees" is an alias of company_size; nobody told the defaults about "Vertical market".
# Line 4 is blank, so Carl's row (the third) is on line 5 of the file: the line to fix is 5.
CSV = (
    "Email,First Name,Company,Employees,Vertical market\n"  # 1
    "ada@acme.example,Ada,Acme,120,SaaS\n"  # 2: size and industry match: 100, tier A
    "grace@globex.example,Grace,Globex,300,Fintech\n"  # 3: size only (30 of 55): 54.55, tier C
    "\n"  # 4
    "carl@initech.example,Carl,Initech,abc,SaaS\n"  # 5: not a number
    "alan@hooli.example,Alan,Hooli,20,Fintech\n"  # 6: neither: 0, tier D
)
BAD_ROW = "line 5 — company_size: 'abc' is not a number"
# email → (icp tier, icp score as the list shows it)
SCORED = {
    "ada@acme.example": ("A", "100.00"),
    "grace@globex.example": ("C", "54.55"),
    "alan@hooli.example": ("D", "0.00"),
}


def _tenant_ready() -> None:
    # the default taxonomy comes from a data migration, which a transactional test's flush empties
    LifecycleStage.objects.get_or_create(key="lead", defaults={"label": "Lead"})
    icp = IcpDefinition.get_solo()
    icp.company_size_min, icp.company_size_max, icp.industries = 50, 500, ["SaaS"]
    icp.save()


def _column(page, header: str):
    """The mapping table's row of the file's column ``header``."""
    return page.locator("#lead-import-mapping tbody tr", has=page.get_by_text(f"“{header}”", exact=True))


def _lead_row(page, email: str):
    return page.locator("#result_list tbody tr", has_text=email)


def test_revops_imports_a_csv_with_a_bad_row_and_gets_the_good_leads_scored(
    site, make_user, log_in, page, in_tenant, screenshot
):
    # given an ICP that wants SaaS companies of 50 to 500 people, and no leads yet
    revops = make_user(site.tenant, Role.REVOPS, "revops@worker.test")
    in_tenant(_tenant_ready)
    log_in(site, revops)

    # when RevOps opens the import from the lead list and uploads the file
    page.goto(site.url(LEADS))
    page.get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import leads from a CSV file")).to_be_visible()
    page.get_by_label("CSV file").set_input_files(
        {"name": FILE_NAME, "mimeType": "text/csv", "buffer": CSV.encode()}
    )
    page.get_by_role("button", name="Upload and map the columns").click()

    # then each column is shown with its first values and the field it goes to by default
    expect(page.get_by_role("heading", name="Step 2 of 3: map the columns")).to_be_visible()
    expect(page.get_by_text(f"{FILE_NAME}: 4 rows.")).to_be_visible()
    for header, samples, target in [
        ("Email", "ada@acme.example, grace@globex.example, carl@initech.example", "email"),
        ("First Name", "Ada, Grace, Carl", "first_name"),
        ("Company", "Acme, Globex, Initech", "company"),
        ("Employees", "120, 300, abc", "company_size"),
        ("Vertical market", "SaaS, Fintech, SaaS", ""),  # not recognised: ignored
    ]:
        expect(_column(page, header).locator("td.samples")).to_have_text(samples)
        expect(_column(page, header).locator("select")).to_have_value(target)
    screenshot("1-mapping")

    # and once RevOps maps "Vertical market" to the industry, the preview is of that mapping
    _column(page, "Vertical market").locator("select").select_option("industry")
    page.get_by_role("button", name="Update the preview").click()
    expect(_column(page, "Vertical market").locator("select")).to_have_value("industry")
    ready = page.locator("#import-ready")
    expect(ready.locator("thead th")).to_have_text(
        ["Line", "", "email", "first_name", "company", "company_size", "industry"]
    )
    expect(ready.locator("tbody tr")).to_have_count(3)
    expect(ready.locator("tbody tr").first).to_contain_text("SaaS")

    # which lists the bad row by its line in the file, saying what is wrong in words
    expect(page.locator("p.counts")).to_have_text(
        "3 rows ready to import (3 new, 0 updates); 1 row with problems, skipped."
    )
    expect(page.locator("#import-problems li")).to_have_text([BAD_ROW])
    expect(ready.locator("tbody tr td:first-child")).to_have_text(["2", "3", "6"])
    screenshot("2-preview")
    assert in_tenant(lambda: Lead.objects.count()) == 0, "a preview writes nothing"

    # when RevOps imports the good rows
    page.get_by_role("button", name="Import 3 good rows, skip 1 with problems").click()

    # then the lead list says what was imported and what was skipped, and why
    expect(page).to_have_url(site.url(LEADS))
    messages = page.locator("ul.messagelist li")
    expect(messages.filter(has_text="Imported")).to_have_text(
        f"Imported 3 lead(s) from {FILE_NAME} (3 new, 0 updated) and scored them against the ICP."
    )
    expect(messages.filter(has_text="Skipped")).to_have_text(f"Skipped 1 row(s): {BAD_ROW}.")

    # and shows the three good leads with their industry's effect on the score; Carl is not there
    for email, (tier, score) in SCORED.items():
        expect(_lead_row(page, email).locator("td.field-icp_tier")).to_have_text(tier)
        expect(_lead_row(page, email).locator("td.field-icp_score")).to_have_text(score)
    expect(_lead_row(page, "carl@initech.example")).to_have_count(0)
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    screenshot("3-imported")

    leads = in_tenant(
        lambda: {
            lead.email: (lead.industry, lead.company_size, lead.source_system, lead.data_source)
            for lead in Lead.objects.all()
        }
    )
    assert leads == {
        "ada@acme.example": ("SaaS", 120, "csv", f"csv: {FILE_NAME}"),
        "grace@globex.example": ("Fintech", 300, "csv", f"csv: {FILE_NAME}"),
        "alan@hooli.example": ("Fintech", 20, "csv", f"csv: {FILE_NAME}"),
    }
