"""The front pages: a tenant's home by role (queue, budget burn, sends, switches, heartbeat, a
30-day chart; each number a link to its list) and the operator's home (one row per tenant,
trouble first, the global kill switch on top). Each is one statement of reads, whatever the data."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import tenant_context

from approvals.models import ActionRequest, Event, Status
from approvals.tests.factories import email_payload, propose_email, set_phase
from connectors.models import SendCounter, WebhookEvent
from tenants.budget.models import BudgetCounter
from tenants.models import PlatformSettings, Tenant
from tenants.policy.models import Heartbeat, QuotaPolicy, RolloutSettings, SendingPolicy
from tenants.roles import Role
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.django_db


def _home(client) -> str:
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def _text(page: str, element_id: str) -> str:
    chunk = page[page.index(f'id="{element_id}"') :][:5000].split(">", 1)[1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", chunk))


def _in(tenant, fn):
    with tenant_context(tenant):
        result = fn()
    connection.set_schema_to_public()
    return result


@pytest.fixture
def ae(alpha, make_user):
    user = make_user(alpha, Role.AE)
    _in(alpha, lambda: set_phase("assisted"))
    return user


def test_the_aes_home_counts_the_queue_and_each_number_links_to_its_list(alpha, ae, make_user, client_for):
    colleague = make_user(alpha, Role.AE, email="colleague@alpha.test")

    def make():
        past = timezone.now() - timedelta(hours=2)
        mine = propose_email(payload=email_payload(to="a@prospect.example"))
        late = propose_email(payload=email_payload(to="b@prospect.example"))
        propose_email(payload=email_payload(to="c@prospect.example"))
        # "mine": assigned to me, or to my role and nobody in particular
        ActionRequest.objects.update(assigned_to=colleague)
        ActionRequest.objects.filter(pk=mine.pk).update(assigned_to=ae)
        ActionRequest.objects.filter(pk=late.pk).update(
            sla_due_at=past, created_at=timezone.now() - timedelta(hours=30)
        )
        unknown = propose_email(payload=email_payload(to="d@prospect.example"))
        ActionRequest.objects.filter(pk=unknown.pk).update(status=Status.UNKNOWN)

    _in(alpha, make)
    page = _home(client_for(alpha, ae))

    queue = _text(page, "queue-figures")
    assert re.search(r"3 pending 1 overdue 1 assigned to me", queue), queue
    assert "1 outcome unknown" in queue
    assert '<a href="/admin/approvals/actionrequest/?sla=overdue" id="overdue-count">' in page
    assert '<a href="/admin/approvals/actionrequest/?queue=mine" id="mine-count">' in page
    assert '<a href="/admin/approvals/actionrequest/?status=unknown" id="unknown-count">' in page
    aging = _text(page, "queue-aging")
    assert "under 1 h 1-4 h 4-24 h over 24 h 2 0 0 1" in aging
    # an AE reads the queue first, RevOps the budget
    assert page.index('id="queue-figures"') < page.index('id="budget-burn"')


def test_revops_reads_budget_burn_and_sends_against_the_limits_first(alpha, make_user, client_for):
    revops = make_user(alpha, Role.REVOPS)

    def make():
        quota = QuotaPolicy.get_solo()
        quota.daily_usd_limit, quota.monthly_usd_limit = Decimal("10.00"), Decimal("100.00")
        quota.save()
        today = timezone.now().date()
        BudgetCounter.objects.create(
            kind="day", period_start=today, usd_spent=Decimal("6.50"), usd_reserved=Decimal("2.00"), runs=3
        )
        BudgetCounter.objects.create(kind="month", period_start=today.replace(day=1), usd_spent=Decimal("20"))
        policy = SendingPolicy.get_solo()
        policy.daily_limit = 300
        policy.save()
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        SendCounter.objects.create(scope="day", window_start=now.replace(hour=0), count=120)

    _in(alpha, make)
    page = _home(client_for(alpha, revops))

    budget = _text(page, "budget-burn")
    assert "Today (USD) $6.50 spent + $2.00 reserved of $10.00 85%" in budget
    assert "This month (USD) $20.00 spent + $0.00 reserved of $100.00 20%" in budget
    assert 'class="high" style="width:85%"' in page
    sends = _text(page, "sends")
    assert "Emails today 120 of 300 40%" in sends
    assert page.index('id="budget-burn"') < page.index('id="queue-figures"')
    assert f'<a href="{reverse("admin:budget_spend", urlconf="mh1.urls_tenant")}">Today (USD)</a>' in page


def test_the_kill_switch_a_late_heartbeat_and_the_last_webhook_are_on_the_home_page(alpha, ae, client_for):
    def make():
        rollout = RolloutSettings.get_solo()
        rollout.kill_switch, rollout.kill_switch_reason = True, "Mailbox provider incident"
        rollout.save()
        beat = Heartbeat.objects.create(worker="celery@w1")
        Heartbeat.objects.filter(pk=beat.pk).update(ran_at=timezone.now() - timedelta(minutes=10))
        WebhookEvent.objects.create(
            system="instantly", event_id="e1", event_type="reply_received", payload={}
        )

    _in(alpha, make)
    page = _home(client_for(alpha, ae))

    status = _text(page, "tenant-status")
    assert "ON — Mailbox provider incident: nothing this tenant proposes is executed." in status
    assert "late: are Celery beat and the workers running?" in status and "celery@w1" in status
    assert "none yet" not in _text(page, "last-webhook")


def test_the_chart_counts_decisions_and_executions_per_day_from_a_pinned_static_chartjs(
    alpha, ae, client_for
):
    def make():
        request = propose_email()
        now = timezone.now()
        for days_ago, status in (
            (0, "approved"),
            (0, "executed"),
            (1, "rejected"),
            (1, "failed"),
            (40, "executed"),
        ):
            Event.objects.create(
                request=request, verb="t", to_status=status, created_at=now - timedelta(days=days_ago)
            )

    _in(alpha, make)
    page = _home(client_for(alpha, ae))

    data = json.loads(
        page.split('<script id="activity-data" type="application/json">')[1].split("</script>")[0]
    )
    assert len(data["labels"]) == 30 and data["labels"][-1] == timezone.localdate().isoformat()
    assert data["series"]["approved"][-1] == 1 and data["series"]["executed"][-1] == 1
    assert data["series"]["rejected"][-2] == 1 and data["series"]["failed"][-2] == 1
    assert sum(data["series"]["executed"]) == 1  # the one 40 days ago is outside the window
    assert "1 approved · 1 rejected · 1 executed · 1 failed" in _text(page, "activity-totals").replace(
        " ·", " ·"
    )
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert "/static/vendor/chartjs-4.6.1/chart.umd.min.js" in scripts
    assert not [src for src in scripts if src.startswith(("http:", "https:", "//"))]
    assert client_for(alpha, ae).get("/static/vendor/chartjs-4.6.1/chart.umd.min.js").status_code == 200


def _chart_data(page: str) -> dict:
    return json.loads(
        page.split('<script id="activity-data" type="application/json">')[1].split("</script>")[0]
    )


def test_the_charts_closed_days_are_counted_once_per_tenant_and_today_on_every_load(
    alpha, bravo, ae, make_user, client_for
):
    def event(status, days_ago):
        Event.objects.create(
            request=propose_email(),
            verb="t",
            to_status=status,
            created_at=timezone.now() - timedelta(days=days_ago),
        )

    _in(alpha, lambda: event("rejected", 2))
    client = client_for(alpha, ae)
    assert _chart_data(_home(client))["series"]["rejected"][-3] == 1

    # a load later: today's events show at once; the closed days are the ones counted before
    _in(alpha, lambda: (event("executed", 0), event("rejected", 2)))
    data = _chart_data(_home(client))
    assert data["series"]["executed"][-1] == 1
    assert data["series"]["rejected"][-3] == 1

    # another tenant's closed days are its own, not the ones kept for alpha
    bravo_ae = make_user(bravo, Role.AE, email="ae@bravo.test")
    _in(bravo, lambda: (set_phase("assisted"), event("failed", 5)))
    bravo_data = _chart_data(_home(client_for(bravo, bravo_ae)))
    assert bravo_data["series"]["failed"][-6] == 1 and sum(bravo_data["series"]["rejected"]) == 0


def _count(client, path="/admin/") -> int:
    client.get(path)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_the_tenant_home_costs_the_same_few_queries_with_more_data(alpha, ae, client_for):
    client = client_for(alpha, ae)
    few = _count(client)

    def more():
        for n in range(25):
            request = propose_email(payload=email_payload(to=f"x{n}@prospect.example"))
            Event.objects.create(request=request, verb="t", to_status="executed")
            WebhookEvent.objects.create(system="instantly", event_id=f"m{n}", event_type="opened", payload={})

    _in(alpha, more)
    many = _count(client)
    assert many == few
    # under 10 for the whole page: 4 route the host and authenticate (the tenant with its primary
    # host, the search path, session, user); the page: the role, the permissions, the home's one
    # statement, the recent actions box
    assert many < 10, many


@pytest.fixture
def operator_client(client_for):
    operator, _ = User.objects.get_or_create(username="operator@example.com", defaults={"is_staff": True})
    operator.set_password(PASSWORD)
    operator.save()
    operator.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))
    return client_for(Tenant.objects.get(schema_name="public"), operator)


def test_the_operators_home_lists_every_tenant_trouble_first_with_the_global_switch_on_top(
    alpha, bravo, operator_client
):
    def trouble():
        set_phase("assisted")
        late = propose_email()
        ActionRequest.objects.filter(pk=late.pk).update(sla_due_at=timezone.now() - timedelta(hours=1))
        Event.objects.create(request=late, verb="t", to_status="failed")
        rollout = RolloutSettings.get_solo()
        rollout.kill_switch, rollout.kill_switch_reason = True, "bounces"
        rollout.save()

    _in(bravo, trouble)
    _in(alpha, lambda: Heartbeat.objects.create(worker="w"))
    settings = PlatformSettings.get_solo()
    settings.global_kill_switch, settings.kill_switch_reason = True, "vendor outage"
    settings.save()

    page = _home(operator_client)

    assert "Global kill switch: ON — vendor outage" in _text(page, "global-switch")
    assert page.index('id="global-switch"') < page.index('id="tenants-at-a-glance"')
    bravo_row = _text(page, f"tenant-{bravo.slug}").split("</tr>")[0]
    assert (
        "ON" in bravo_row and "kill switch on, 1 overdue, 1 failed in 24 h, no recent heartbeat" in bravo_row
    )
    # bravo is in trouble, alpha is not (it has a fresh heartbeat and nothing pending): bravo first
    assert page.index(f'id="tenant-{bravo.slug}"') < page.index(f'id="tenant-{alpha.slug}"')
    alpha_row = page[page.index(f'id="tenant-{alpha.slug}"') :].split("</tr>")[0]
    assert "—</td>" in alpha_row.replace("\n", "")
    assert 'href="http://alpha.localhost/admin/"' in alpha_row  # its own admin, on the operator's port
    dormant = Tenant.objects.get(slug="dormant")
    assert f'id="tenant-{dormant.slug}"' not in page  # inactive tenants are not listed


def test_the_operators_home_is_one_read_for_all_tenants(alpha, bravo, operator_client):
    assert _count(operator_client) == _count(operator_client)
    with CaptureQueriesContext(connection) as captured:
        operator_client.get("/admin/")
    union = [q["sql"] for q in captured.captured_queries if "UNION ALL" in q["sql"]]
    assert len(union) == 1 and '"alpha".approvals_actionrequest' in union[0]
    assert '"bravo".approvals_actionrequest' in union[0]
