"""The front pages as people read them: an account executive reads the tenant's queue and its
30-day chart on the tenant's home and follows the overdue number to the requests behind it; the
platform operator finds the tenant in trouble at the top of the operator's home and its own admin
one link away."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from approvals.models import ActionRequest, Event
from tenants.models import PlatformSettings, Tenant
from tenants.policy.models import Heartbeat, RolloutSettings
from tenants.roles import Role

QUEUE = "/admin/approvals/actionrequest/"
CHARTJS = "/static/vendor/chartjs-4.6.1/chart.umd.min.js"
# Outcome events over the past days (days ago, outcome); the 40-day-old one is outside the chart.
OUTCOMES = (
    (1, "approved"),
    (1, "executed"),
    (2, "approved"),
    (2, "rejected"),
    (3, "failed"),
    (5, "approved"),
    (5, "executed"),
    (40, "executed"),
)


def test_ae_reads_the_queue_and_the_chart_and_follows_the_overdue_number(
    site, make_user, log_in, page, propose, in_tenant, screenshot
):
    # given three pending emails: one assigned to this AE, one overdue, one for a colleague
    ae = make_user(site.tenant, Role.AE, "ae@worker.test")
    colleague = make_user(site.tenant, Role.AE, "colleague@worker.test")
    mine = propose("Intro for Dana", "dana@mine-prospect.example")
    late = propose("Follow-up for Lou", "lou@late-prospect.example")
    other = propose("Hello Kim", "kim@other-prospect.example")

    def arrange() -> None:
        now = timezone.now()
        ActionRequest.objects.update(assigned_to=colleague)
        ActionRequest.objects.filter(pk=mine.pk).update(assigned_to=ae)
        ActionRequest.objects.filter(pk=late.pk).update(
            sla_due_at=now - timedelta(hours=2), created_at=now - timedelta(hours=30)
        )
        # and outcomes over the past days, for the chart
        for days_ago, outcome in OUTCOMES:
            Event.objects.create(
                request=other, verb="t", to_status=outcome, created_at=now - timedelta(days=days_ago)
            )

    in_tenant(arrange)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(site, ae)

    # when the AE opens the tenant's home
    page.goto(site.url("/admin/"))

    # then the queue's figures read 3 pending, 1 overdue (in red), 1 assigned to me
    expect(page.get_by_role("heading", name="Approval queue")).to_be_visible()
    expect(page.locator("#pending-count")).to_have_text(re.compile(r"^\s*3\s*pending\s*$"))
    expect(page.locator("#overdue-count")).to_have_text(re.compile(r"^\s*1\s*overdue\s*$"))
    expect(page.locator("#overdue-count .mh1-big")).to_have_class(re.compile(r"\bmh1-alert\b"))
    expect(page.locator("#mine-count")).to_have_text(re.compile(r"^\s*1\s*assigned to me\s*$"))
    # ("failed in 24 h" counts only the last day: the failure three days ago is not in it)
    expect(page.locator("#failed-count")).to_have_text(re.compile(r"^\s*0\s*failed in 24 h\s*$"))
    # an AE reads the queue first: it is above the chart
    queue_box = page.locator("#queue-figures").bounding_box()
    chart_box = page.locator("#activity").bounding_box()
    assert queue_box and chart_box and queue_box["y"] <= chart_box["y"]

    # and the chart is drawn by the pinned Chart.js, from the outcomes of the last 30 days
    expect(page.locator("#activity-totals")).to_have_text(
        re.compile(r"3 approved\s+·\s+1 rejected\s+·\s+2 executed\s+·\s+1 failed")
    )
    page.wait_for_function("() => window.mh1ActivityChart !== undefined")
    assert page.evaluate("typeof Chart") == "function"
    assert page.evaluate(f"!!document.querySelector('script[src=\"{CHARTJS}\"]')")
    canvas = page.locator("#activity-chart")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100, box
    drawn = page.evaluate(
        """() => Object.fromEntries(window.mh1ActivityChart.data.datasets.map(
               d => [d.label, d.data.reduce((a, b) => a + b, 0)]))"""
    )
    assert drawn == {"approved": 3, "rejected": 1, "executed": 2, "failed": 1}
    assert page.evaluate("window.mh1ActivityChart.data.labels.length") == 30
    assert errors == []
    screenshot("1-ae-home")

    # when the AE clicks the overdue number
    page.locator("#overdue-count").click()

    # then the queue shows the overdue request only
    expect(page).to_have_url(re.compile(rf"{QUEUE}\?sla=overdue$"))
    expect(page.get_by_text(re.compile(r"Showing pending requests — 1 found"))).to_be_visible()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("lou@late-prospect.example")
    expect(rows.first).to_contain_text(re.compile(r"overdue \d+"))
    expect(rows.first).to_contain_text("colleague@worker.test")
    for absent in ("dana@mine-prospect.example", "kim@other-prospect.example"):
        expect(page.locator("#result_list")).not_to_contain_text(absent)
    screenshot("2-overdue-queue")


@pytest.fixture
def operator(public_site) -> User:
    """A platform operator in public (the same idempotent login as test_operator.py's: the flush
    after a browser test does not reach public, and deleting the user there is not possible)."""
    connection.set_schema_to_public()
    user, _ = User.objects.get_or_create(username="operator@browser.test", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))
    return user


@pytest.fixture
def healthy_alpha_and_bravo(browser_tenant) -> Iterator[list[Tenant]]:
    """alpha and bravo with a fresh heartbeat and nothing waiting: nothing for the operator. The
    flush after this (transactional) test truncates the worker tenant only, so the heartbeats are
    removed here."""
    tenants = list(Tenant.objects.filter(slug__in=("alpha", "bravo")).order_by("name"))
    made = []
    for tenant in tenants:
        with tenant_context(tenant):
            made.append((tenant, Heartbeat.objects.create(worker="celery@healthy").pk))
    connection.set_schema_to_public()
    yield tenants
    for tenant, pk in made:
        with tenant_context(tenant):
            Heartbeat.objects.filter(pk=pk).delete()
    connection.set_schema_to_public()


def test_operator_finds_the_tenant_in_trouble_first_with_a_link_to_its_admin(
    public_site, site, operator, healthy_alpha_and_bravo, log_in, page, propose, in_tenant, screenshot
):
    # given the worker tenant in trouble: its kill switch on, a request overdue, a failure today
    # (and no heartbeat); alpha and bravo healthy
    late = propose("Overdue at Worker", "pat@trouble-prospect.example")

    def trouble() -> None:
        ActionRequest.objects.filter(pk=late.pk).update(sla_due_at=timezone.now() - timedelta(hours=1))
        Event.objects.create(request=late, verb="t", to_status="failed")
        rollout = RolloutSettings.get_solo()
        rollout.kill_switch, rollout.kill_switch_reason = True, "Bounce spike"
        rollout.save()

    in_tenant(trouble)
    assert PlatformSettings.get_solo().global_kill_switch is False
    log_in(public_site, operator)

    # when the operator opens the platform's home
    page.goto(public_site.url("/admin/"))

    # then the global kill switch's state is at the top
    switch = page.locator("#global-switch")
    expect(switch).to_have_text(
        re.compile(r"Global kill switch:\s+off: each tenant's own switches apply\.\s+Turn on…")
    )
    expect(switch.get_by_role("link", name="Turn on…")).to_be_visible()
    table = page.locator("#tenants-at-a-glance")
    switch_box, table_box = switch.bounding_box(), table.bounding_box()
    assert switch_box and table_box and switch_box["y"] < table_box["y"]

    # and one row per tenant, the one in trouble first (although "Worker" sorts last by name)
    expect(table.get_by_role("heading")).to_contain_text("those needing attention first")
    rows = table.locator("tbody tr")
    ids = rows.evaluate_all("rows => rows.map(r => r.id)")
    ours = [row_id for row_id in ids if row_id in {"tenant-worker", "tenant-alpha", "tenant-bravo"}]
    assert ours == ["tenant-worker", "tenant-alpha", "tenant-bravo"], ids
    assert ids[0] == "tenant-worker", ids
    assert "tenant-dormant" not in ids  # an inactive tenant is not listed

    worker = page.locator("#tenant-worker")
    expect(worker).to_have_class(re.compile(r"\btrouble\b"))
    cells = worker.locator("td")
    expect(cells.nth(0)).to_contain_text("Worker")
    expect(cells.nth(1)).to_have_text("assisted")
    expect(cells.nth(2)).to_have_text("ON")
    expect(cells.nth(2).locator(".mh1-alert")).to_have_attribute("title", "Bounce spike")
    expect(cells.nth(3)).to_have_text("1")  # pending
    expect(cells.nth(4).locator(".mh1-alert")).to_have_text("1")  # overdue, in red
    expect(cells.nth(5).locator(".mh1-alert")).to_have_text("1")  # failed in 24 h, in red
    expect(cells.nth(6)).to_have_text("0")  # unknown
    expect(cells.nth(7)).to_have_text("never")
    expect(cells.nth(9)).to_have_text("kill switch on, 1 overdue, 1 failed in 24 h, no recent heartbeat")

    for tenant in healthy_alpha_and_bravo:
        healthy = page.locator(f"#tenant-{tenant.slug}")
        expect(healthy).not_to_have_class(re.compile(r"\btrouble\b"))
        expect(healthy.locator("td").nth(2)).to_have_text("off")
        expect(healthy.locator("td").nth(9)).to_have_text("—")
    screenshot("1-operator-home")

    # and the troubled tenant's row links to its own admin host, on the port the operator uses
    own_admin = worker.get_by_role("link", name="open its admin ↗")
    href = own_admin.get_attribute("href")
    assert href == site.url("/admin/"), href
    assert urlsplit(href).hostname == "worker.localhost"

    # following it opens that tenant's console (its login: sessions are per tenant)
    own_admin.click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(site.origin)}/admin/login/"))
    expect(page.locator("#site-name")).to_contain_text("MH1 Console — Worker")
    screenshot("2-tenant-admin-login")
