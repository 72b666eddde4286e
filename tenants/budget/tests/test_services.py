"""The budget ledger: reserve within limits, each limit refusing with its reason, settle and
release, the sweep of dead runs, fail-closed errors, prices by date, alerts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import OperationalError, connection
from django.utils import timezone

from approvals.models import EscalationPolicy
from tenants.budget import (
    budget_charge,
    budget_release,
    budget_reservations_sweep,
    budget_reserve,
    budget_settle,
    cost_of,
)
from tenants.budget.errors import BudgetRefused, BudgetUnavailable, Unpriced
from tenants.budget.models import BudgetAlert, BudgetCharge, BudgetCounter, BudgetReservation
from tenants.budget.services import periods_of
from tenants.budget.tests.conftest import TEST_MODEL, set_limits, tokens_for
from tenants.models import ModelPrice

pytestmark = pytest.mark.django_db


def reserve(
    key: str, usd: str = "0.10", *, output_tokens: int = 0, model: str = TEST_MODEL, timeout: int = 60
):
    return budget_reserve(
        key=key,
        skill="test-skill",
        model=model,
        max_input_tokens=tokens_for(usd),
        max_output_tokens=output_tokens,
        timeout_seconds=timeout,
    )


def counters() -> tuple[BudgetCounter, BudgetCounter]:
    day, month = periods_of(timezone.now())
    return (
        BudgetCounter.objects.get(kind="day", period_start=day),
        BudgetCounter.objects.get(kind="month", period_start=month),
    )


# --- reserve ------------------------------------------------------------------------------------


def test_reserve_within_limits_holds_the_worst_case_and_counts_the_run(tenant):
    reservation = reserve("run:1", "0.10", output_tokens=50_000)  # $0.10 in + $0.10 out

    assert reservation.reserved_usd == Decimal("0.200000")
    assert reservation.reserved_tokens == 150_000
    day, month = counters()
    for counter in (day, month):
        assert (counter.usd_spent, counter.usd_reserved, counter.runs) == (0, Decimal("0.2"), 1)
        assert counter.tokens_reserved == 150_000
    row = BudgetReservation.objects.get(key="run:1")
    assert row.status == "open"
    assert row.expires_at == row.created_at + timedelta(seconds=60)


def test_a_repeated_key_returns_the_same_reservation_and_counts_nothing_twice(tenant):
    first = reserve("run:1", "0.30")
    again = reserve("run:1", "0.30")

    assert again.reserved_usd == first.reserved_usd
    day, month = counters()
    assert (day.usd_reserved, day.runs, month.usd_reserved, month.runs) == (
        Decimal("0.3"),
        1,
        Decimal("0.3"),
        1,
    )


def _assert_nothing_reserved(before: dict):
    """No reservation row, and every counter holds what it held before (a counter created empty
    for the period by the refused attempt holds nothing)."""
    assert not BudgetReservation.objects.filter(key="refused").exists()
    assert _snapshot() == before


def _snapshot() -> dict:
    held = {
        (c.kind, c.period_start): (c.usd_reserved, c.tokens_reserved, c.runs)
        for c in BudgetCounter.objects.all()
    }
    return {period: figures for period, figures in held.items() if figures != (0, 0, 0)}


def test_the_daily_usd_limit_refuses_with_the_figures(tenant):
    # given: $24.10 spent today (a priced action) and $0.50 reserved by a run under way
    budget_charge(usd=Decimal("24.10"), key="clay:1", source="clay")
    reserve("run:1", "0.50")
    before = _snapshot()

    # when: a run asks for $0.90 against the $25.00 daily limit
    with pytest.raises(BudgetRefused) as refused:
        reserve("refused", "0.90")

    # then
    assert refused.value.limit == "daily_usd"
    assert refused.value.message == (
        "Daily USD budget exceeded: spent $24.10, reserved $0.50, asked $0.90, limit $25.00"
    )
    assert (refused.value.spent, refused.value.reserved, refused.value.asked, refused.value.allowed) == (
        Decimal("24.1"),
        Decimal("0.5"),
        Decimal("0.9"),
        Decimal("25"),
    )
    _assert_nothing_reserved(before)


def test_the_monthly_usd_limit_refuses_and_the_day_keeps_nothing_of_the_refused_run(tenant):
    set_limits(daily_usd_limit=Decimal("5.00"), monthly_usd_limit=Decimal("5.00"))
    # last day of spend in the month, on another day: the month has $4.50 spent
    day, month = periods_of(timezone.now())
    BudgetCounter.objects.create(kind="month", period_start=month, usd_spent=Decimal("4.50"))
    before = _snapshot()

    with pytest.raises(BudgetRefused) as refused:
        reserve("refused", "0.60")

    assert refused.value.limit == "monthly_usd"
    assert refused.value.message == (
        "Monthly USD budget exceeded: spent $4.50, reserved $0.00, asked $0.60, limit $5.00"
    )
    # the day counter (created empty for the period) holds nothing of the refused run
    assert list(
        BudgetCounter.objects.filter(kind="day", period_start=day).values_list("usd_reserved", "runs")
    ) == [(Decimal("0"), 0)]
    _assert_nothing_reserved(before)


def test_the_monthly_token_limit_refuses(tenant):
    set_limits(monthly_token_budget=1_000_000)
    reserve("run:1", "0.60")  # 600 000 tokens
    before = _snapshot()

    with pytest.raises(BudgetRefused) as refused:
        reserve("refused", "0.50")  # 500 000 more

    assert refused.value.limit == "monthly_tokens"
    assert refused.value.message == (
        "Monthly token budget exceeded: spent 0, reserved 600,000, asked 500,000, limit 1,000,000"
    )
    _assert_nothing_reserved(before)


def test_the_daily_run_limit_refuses(tenant):
    set_limits(daily_run_limit=2)
    reserve("run:1", "0.01")
    reserve("run:2", "0.01")
    before = _snapshot()

    with pytest.raises(BudgetRefused) as refused:
        reserve("refused", "0.01")

    assert refused.value.limit == "daily_runs"
    assert refused.value.message == "Daily run limit reached: 2 runs today, limit 2"
    _assert_nothing_reserved(before)


def test_the_per_run_limit_refuses_without_touching_the_counters(tenant):
    set_limits(per_run_usd_limit=Decimal("1.00"))

    with pytest.raises(BudgetRefused) as refused:
        reserve("refused", "1.50")

    assert refused.value.limit == "per_run_usd"
    assert refused.value.message == "Per-run USD limit exceeded: this run may cost up to $1.50, limit $1.00"
    assert not BudgetCounter.objects.exists()
    assert not BudgetReservation.objects.exists()


def test_a_free_model_is_priced_at_zero_and_still_counts_runs(tenant):
    set_limits(daily_run_limit=1)
    reservation = reserve("run:1", "0.50", model="offline-deterministic")

    assert reservation.reserved_usd == 0
    with pytest.raises(BudgetRefused, match="Daily run limit"):
        reserve("run:2", "0.50", model="offline-deterministic")


# --- settle, release, charge --------------------------------------------------------------------


def test_settle_adds_each_call_then_final_releases_the_rest_once(tenant):
    reserve("run:1", "1.00")

    budget_settle(key="run:1", usd=Decimal("0.30"), tokens=300_000)
    day, month = counters()
    assert (day.usd_spent, day.usd_reserved, day.tokens_spent, day.tokens_reserved) == (
        Decimal("0.3"),
        Decimal("0.7"),
        300_000,
        700_000,
    )

    budget_settle(key="run:1", usd=Decimal("0.10"), tokens=100_000, final=True)
    budget_settle(key="run:1", usd=Decimal("0"), tokens=0, final=True)  # the runner's _finish, again

    day, month = counters()
    for counter in (day, month):
        assert (counter.usd_spent, counter.usd_reserved, counter.tokens_spent, counter.tokens_reserved) == (
            Decimal("0.4"),
            0,
            400_000,
            0,
        )
    row = BudgetReservation.objects.get(key="run:1")
    assert (row.status, row.spent_usd, row.spent_tokens) == ("settled", Decimal("0.4"), 400_000)
    assert row.ended_at is not None


def test_spend_beyond_the_reservation_and_after_its_end_is_still_recorded(tenant):
    reserve("run:1", "0.20")
    budget_settle(key="run:1", usd=Decimal("0.25"), tokens=10)  # the model answered longer
    budget_settle(key="run:1", usd=Decimal("0"), tokens=0, final=True)
    budget_settle(key="run:1", usd=Decimal("0.05"), tokens=5)  # a call that returned after the end

    day, _ = counters()
    assert (day.usd_spent, day.usd_reserved) == (Decimal("0.3"), 0)
    assert BudgetReservation.objects.get(key="run:1").spent_usd == Decimal("0.3")


def test_release_frees_the_whole_reservation_and_keeps_the_run_counted(tenant):
    reserve("run:1", "0.40")

    assert budget_release(key="run:1") is True
    assert budget_release(key="run:1") is False

    day, _ = counters()
    assert (day.usd_spent, day.usd_reserved, day.tokens_reserved, day.runs) == (0, 0, 0, 1)
    assert BudgetReservation.objects.get(key="run:1").status == "released"


def test_a_charge_is_recorded_once_per_key_even_past_the_budget(tenant):
    set_limits(daily_usd_limit=Decimal("1.00"), per_run_usd_limit=Decimal("1.00"))

    assert budget_charge(usd=Decimal("0.80"), key="clay:a", skill="enrich", source="clay") is True
    assert budget_charge(usd=Decimal("0.80"), key="clay:b", skill="enrich", source="clay") is True
    assert budget_charge(usd=Decimal("0.80"), key="clay:b", skill="enrich", source="clay") is False

    day, month = counters()
    assert (day.usd_spent, month.usd_spent, day.runs) == (Decimal("1.6"), Decimal("1.6"), 0)
    assert BudgetCharge.objects.count() == 2
    with pytest.raises(BudgetRefused, match=r"Daily USD budget exceeded: spent \$1\.60"):
        reserve("run:1", "0.01")


# --- the sweep ----------------------------------------------------------------------------------


def test_the_sweep_releases_a_dead_runs_reservation_and_reconciles_the_counters(tenant):
    reserve("run:dead", "0.50", timeout=60)
    reserve("run:alive", "0.20", timeout=3600)
    budget_settle(key="run:dead", usd=Decimal("0.10"), tokens=100_000)  # spent before it died
    # drift the counters as a bug or a hand edit would
    BudgetCounter.objects.filter(kind="day").update(usd_reserved=Decimal("9.99"), runs=7)

    # not yet expired: nothing released, the drift repaired
    assert budget_reservations_sweep() == 0
    day, _ = counters()
    assert (day.usd_spent, day.usd_reserved, day.runs) == (Decimal("0.1"), Decimal("0.6"), 2)

    # past its expiry the run is dead: what it still holds is released, what it spent stays
    assert budget_reservations_sweep(now=timezone.now() + timedelta(seconds=61)) == 1
    assert budget_reservations_sweep(now=timezone.now() + timedelta(seconds=61)) == 0

    dead = BudgetReservation.objects.get(key="run:dead")
    assert (dead.status, dead.spent_usd) == ("expired", Decimal("0.1"))
    assert BudgetReservation.objects.get(key="run:alive").status == "open"
    day, month = counters()
    for counter in (day, month):
        assert (counter.usd_spent, counter.usd_reserved, counter.runs) == (Decimal("0.1"), Decimal("0.2"), 2)
        assert (counter.tokens_spent, counter.tokens_reserved) == (100_000, 200_000)
    # the runner's _finish arriving late changes nothing
    budget_settle(key="run:dead", usd=Decimal("0"), tokens=0, final=True)
    assert BudgetReservation.objects.get(key="run:dead").status == "expired"


def test_the_sweep_task_runs_in_its_tenant(tenant):
    from tenants.budget.tasks import sweep

    reserve("run:dead", "0.50", timeout=1)
    BudgetReservation.objects.filter(key="run:dead").update(expires_at=timezone.now() - timedelta(seconds=5))
    connection.set_schema_to_public()

    assert sweep.apply(args=[tenant.schema_name]).get() == 1

    connection.set_tenant(tenant)
    assert BudgetReservation.objects.get(key="run:dead").status == "expired"


def test_the_sweep_has_a_beat_entry():
    from tenants.schedules import DEFAULT_SCHEDULE

    task, args, seconds = DEFAULT_SCHEDULE["Budgets: release reservations of dead runs, reconcile"]
    assert (task, args, seconds) == ("platform.dispatch_to_tenants", ["budget.sweep"], 60)


# --- fail closed --------------------------------------------------------------------------------


def test_an_unpriced_model_refuses_and_reserves_nothing(tenant):
    with pytest.raises(Unpriced) as unpriced:
        reserve("run:1", "0.10", model="gpt-99-ultra")

    assert "No price is in force for model 'gpt-99-ultra'" in unpriced.value.message
    assert not BudgetReservation.objects.exists()
    assert not BudgetCounter.objects.exists()


def test_a_database_error_while_reserving_fails_closed(tenant):
    with (
        mock.patch(
            "tenants.budget.services.connection.cursor",
            side_effect=OperationalError("server closed the connection"),
        ),
        pytest.raises(BudgetUnavailable) as unavailable,
    ):
        reserve("run:1", "0.10")

    assert "could not be checked" in unavailable.value.message
    assert not BudgetReservation.objects.exists()


def test_a_database_error_while_reading_the_limits_fails_closed(tenant):
    from tenants.policy.models import QuotaPolicy

    QuotaPolicy.objects.all().delete()  # so the read has to create it, and that fails
    with (
        mock.patch("tenants.policy.models.QuotaPolicy.get_solo", side_effect=OperationalError("timeout")),
        pytest.raises(BudgetUnavailable),
    ):
        reserve("run:1", "0.10")

    assert not BudgetCounter.objects.exists()


# --- prices -------------------------------------------------------------------------------------


def test_the_cost_at_a_moment_uses_the_price_in_force_then(tenant):
    t1 = datetime(2025, 3, 1, tzinfo=UTC)
    t2 = datetime(2025, 6, 1, tzinfo=UTC)
    ModelPrice.objects.create(
        model="dated", input_usd_per_mtok=Decimal("3"), output_usd_per_mtok=Decimal("15"), effective_from=t1
    )
    ModelPrice.objects.create(
        model="dated",
        input_usd_per_mtok=Decimal("2"),
        output_usd_per_mtok=Decimal("10"),
        cached_input_usd_per_mtok=Decimal("0.2"),
        effective_from=t2,
    )

    def cost(at):
        return cost_of(model="dated", input_tokens=1000, output_tokens=100, cached_input_tokens=1000, at=at)

    assert cost(t1) == Decimal("0.004500")  # 1000 x $3/M + 100 x $15/M
    assert cost(t2 - timedelta(microseconds=1)) == Decimal("0.004500")
    assert cost(t2) == Decimal("0.003200")  # 1000 x $2/M + 100 x $10/M + 1000 x $0.2/M
    with pytest.raises(Unpriced):
        cost(t1 - timedelta(seconds=1))


def test_seeded_prices_and_dated_snapshot_names(tenant):
    now = timezone.now()
    assert cost_of(model="claude-sonnet-4-5", input_tokens=1_000_000, output_tokens=0, at=now) == Decimal("3")
    # providers answer with snapshot names: priced as their model
    assert cost_of(
        model="claude-sonnet-4-5-20250929", input_tokens=0, output_tokens=1_000_000, at=now
    ) == Decimal("15")
    assert cost_of(model="gpt-4o-2024-08-06", input_tokens=1_000_000, output_tokens=0, at=now) == Decimal(
        "2.5"
    )
    for model in ("offline-deterministic", "claude-haiku-4-5", "claude-opus-4-1", "gpt-4o-mini"):
        cost_of(model=model, input_tokens=1, output_tokens=1, at=now)


# --- alerts -------------------------------------------------------------------------------------


def test_alerts_fire_once_per_threshold_and_period_and_mail_the_escalation_contacts(
    tenant, django_capture_on_commit_callbacks
):
    set_limits(daily_usd_limit=Decimal("10.00"), per_run_usd_limit=Decimal("5.00"), alert_thresholds=[50, 90])
    EscalationPolicy.objects.update_or_create(
        pk=1, defaults={"l2_contact": "lead@alpha.test", "l3_contact": "manager@alpha.test"}
    )

    with django_capture_on_commit_callbacks(execute=True):
        reserve("run:1", "4.00")  # 40 %
    assert not BudgetAlert.objects.exists()
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        reserve("run:2", "2.00")  # 60 %: passes 50 %
    with django_capture_on_commit_callbacks(execute=True):
        reserve("run:3", "1.00")  # 70 %: nothing new
    with django_capture_on_commit_callbacks(execute=True):
        budget_charge(usd=Decimal("3.00"), key="clay:1", source="clay")  # 100 %: passes 90 %
    with django_capture_on_commit_callbacks(execute=True):
        budget_settle(key="run:1", usd=Decimal("0.50"), tokens=1)  # still above: nothing new

    alerts = sorted(BudgetAlert.objects.filter(limit="daily_usd").values_list("threshold", flat=True))
    assert alerts == [50, 90]
    assert BudgetAlert.objects.filter(limit="monthly_usd").count() == 0  # $10 of $500
    assert len(mail.outbox) == 2
    first = mail.outbox[0]
    assert sorted(first.to) == ["lead@alpha.test", "manager@alpha.test"]
    assert "Daily USD budget at 50%" in first.subject
    assert "$6.00 spent or reserved of $10.00" in first.body


def test_an_alert_of_a_refused_or_rolled_back_change_is_not_kept(tenant, django_capture_on_commit_callbacks):
    from django.db import transaction

    set_limits(daily_usd_limit=Decimal("1.00"), per_run_usd_limit=Decimal("1.00"), alert_thresholds=[80])

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        reserve("run:1", "0.90")
        transaction.set_rollback(True)  # the run's start failed: its reservation goes

    assert not BudgetAlert.objects.exists()
    assert mail.outbox == []


def test_the_platform_spend_page_shows_each_tenant_against_its_own_limits(tenant, bravo, client_for):
    from django.contrib.auth.models import Group, User

    from tenants.models import Tenant
    from tenants.roles import Role
    from tests.conftest import PASSWORD

    set_limits(monthly_usd_limit=Decimal("10"), daily_usd_limit=Decimal("10"), per_run_usd_limit=Decimal("5"))
    reserve("run:spend", "4.00")
    budget_settle(key="run:spend", usd=Decimal("1.00"), tokens=1000)  # alpha: $1 spent + $3 held of $10
    connection.set_schema_to_public()
    operator = User.objects.create_user("operator@example.com", password=PASSWORD, is_staff=True)
    operator.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))
    operator_client = client_for(Tenant.objects.get(schema_name="public"), operator)

    page = operator_client.get("/admin/tenants/tenant/spend/")
    tenant_admin_here = client_for(tenant, None).get("/admin/tenants/tenant/spend/")

    html = page.content.decode()
    assert page.status_code == 200
    alpha_row = html[html.index('id="tenant-alpha"') :].split("</tr>")[0]
    assert "4.000000 of 10.00" in alpha_row and "40%" in alpha_row and "test-skill" in alpha_row
    assert 'id="tenant-bravo"' in html
    assert html.index('id="tenant-alpha"') < html.index('id="tenant-bravo"')  # fullest first
    assert tenant_admin_here.status_code in (302, 404)  # not on a tenant's host


@pytest.mark.parametrize(
    ("model", "input_tokens", "output_tokens"),
    [
        ("dated", 1000, 100),
        ("dated", 1, 1),  # $0.000002 + $0.00001: below a cent, to the millionth
        ("dated", 333_333, 7),  # rounds half up at the sixth decimal
        ("dated-20250929", 1200, 50),  # a snapshot is priced as its undated model
        ("snap-20250101", 1000, 0),  # … unless it has a price of its own
    ],
)
def test_a_reservation_holds_exactly_what_cost_of_prices(tenant, model, input_tokens, output_tokens):
    """The reserving function prices the worst case in SQL; it must hold what ``cost_of`` (the
    settling path) charges for the same tokens at the same moment, to the millionth."""
    t0 = timezone.now() - timedelta(days=30)
    ModelPrice.objects.create(
        model="dated", input_usd_per_mtok=Decimal("2.5"), output_usd_per_mtok=Decimal("10"), effective_from=t0
    )
    ModelPrice.objects.create(
        model="snap", input_usd_per_mtok=Decimal("1"), output_usd_per_mtok=Decimal("1"), effective_from=t0
    )
    ModelPrice.objects.create(
        model="snap-20250101",
        input_usd_per_mtok=Decimal("0.123457"),
        output_usd_per_mtok=Decimal("1"),
        effective_from=t0,
    )
    held = budget_reserve(
        key=f"price:{model}:{input_tokens}",
        skill="test",
        model=model,
        max_input_tokens=input_tokens,
        max_output_tokens=output_tokens,
        timeout_seconds=60,
    )
    expected = cost_of(model=model, input_tokens=input_tokens, output_tokens=output_tokens, at=timezone.now())
    assert held.reserved_usd == expected
    assert BudgetReservation.objects.get(key=held.key).reserved_usd == expected
