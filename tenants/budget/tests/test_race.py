"""Many runs reserving at once against a budget that fits ten: exactly ten are admitted, and
spend plus reservations never pass the limit, also while some admitted runs die and the sweep
releases them. Real threads, each with its own PostgreSQL connection, in the tenant's schema."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from tenants.budget import budget_reservations_sweep, budget_reserve, budget_settle
from tenants.budget.errors import BudgetRefused
from tenants.budget.models import BudgetAlert, BudgetCharge, BudgetCounter, BudgetReservation
from tenants.budget.services import periods_of
from tenants.models import Tenant
from tenants.policy.models import QuotaPolicy

THREADS = 50
# the seeded list price of claude-haiku-4-5: $1 per million input tokens, so 100 000 cost $0.10
MODEL = "claude-haiku-4-5"
RUN_TOKENS = 100_000
RUN_USD = Decimal("0.10")
LIMIT = Decimal("1.00")  # fits exactly 10 runs


@pytest.fixture
def worker_tenant(transactional_db):
    tenant = Tenant.objects.get(slug="worker")
    connection.set_tenant(tenant)  # and stay there: the flush after the test truncates only its tables
    for model in (BudgetReservation, BudgetCharge, BudgetCounter, BudgetAlert):
        model.objects.all().delete()
    policy = QuotaPolicy.get_solo()
    policy.daily_usd_limit = LIMIT
    policy.monthly_usd_limit = Decimal("100.00")
    policy.per_run_usd_limit = LIMIT
    policy.monthly_token_budget = 10**9
    policy.daily_run_limit = 10_000
    policy.alert_thresholds = [50, 80, 100]
    policy.save()
    return tenant


def _race(tenant, keys: list[str]) -> tuple[list[str], list[str], Decimal]:
    """Reserve every key at once from its own thread; (admitted, refused, the most ever used)."""
    admitted: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(keys) + 1)
    done = threading.Event()
    peak = {"used": Decimal("0")}
    day, _ = periods_of(timezone.now())

    def reserve(key: str) -> None:
        connection.set_tenant(tenant)
        try:
            barrier.wait()
            budget_reserve(
                key=key,
                skill="race",
                model=MODEL,
                max_input_tokens=RUN_TOKENS,
                max_output_tokens=0,
                timeout_seconds=60,
            )
            admitted.append(key)
        except BudgetRefused as exc:
            assert exc.limit == "daily_usd", exc.message
            refused.append(key)
        except BaseException as exc:  # noqa: BLE001 - collected, re-raised by the test
            errors.append(exc)
        finally:
            connection.close()

    def watch() -> None:
        # what a reader sees while the race runs: never more than the limit held or spent
        connection.set_tenant(tenant)
        try:
            barrier.wait()
            while not done.is_set():
                row = BudgetCounter.objects.filter(kind="day", period_start=day).first()
                if row is not None:
                    peak["used"] = max(peak["used"], row.usd_spent + row.usd_reserved)
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve, args=(key,)) for key in keys]
    watcher = threading.Thread(target=watch)
    barrier = threading.Barrier(len(keys) + 1)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done.set()
    watcher.join(timeout=10)
    assert errors == []
    return admitted, refused, peak["used"]


def _day_counter() -> BudgetCounter:
    day, _ = periods_of(timezone.now())
    return BudgetCounter.objects.get(kind="day", period_start=day)


def test_fifty_runs_at_once_against_a_budget_for_ten_admit_exactly_ten(worker_tenant):
    admitted, refused, peak = _race(worker_tenant, [f"race:{n}" for n in range(THREADS)])

    assert len(admitted) == 10
    assert len(refused) == THREADS - 10
    assert peak <= LIMIT
    counter = _day_counter()
    assert counter.usd_spent + counter.usd_reserved == LIMIT
    assert counter.runs == 10
    assert BudgetReservation.objects.filter(status="open").count() == 10
    # each threshold once, however many threads passed it together
    assert sorted(BudgetAlert.objects.filter(limit="daily_usd").values_list("threshold", flat=True)) == [
        50,
        80,
        100,
    ]


def test_admitted_runs_that_die_are_released_by_the_sweep_and_their_budget_admits_new_runs(worker_tenant):
    # given: ten admitted; six finish having spent $0.04 each, four die holding their $0.10
    admitted, _, peak = _race(worker_tenant, [f"wave1:{n}" for n in range(THREADS)])
    assert len(admitted) == 10 and peak <= LIMIT
    finished, dead = admitted[:6], admitted[6:]
    for key in finished:
        budget_settle(key=key, usd=Decimal("0.04"), tokens=40_000, final=True)

    # while the dead still hold their reservations: $0.24 spent + $0.40 held → 3 more fit
    admitted2, _, peak = _race(worker_tenant, [f"wave2:{n}" for n in range(THREADS)])
    assert len(admitted2) == 3
    assert peak <= LIMIT

    # when: the sweep runs after their expiry
    released = budget_reservations_sweep(now=timezone.now() + timedelta(seconds=61))

    # then: the dead ones' holds are released (and wave 2's, equally expired by then), spend stays
    assert released == len(dead) + len(admitted2)
    assert set(BudgetReservation.objects.filter(status="expired").values_list("key", flat=True)) == {
        *dead,
        *admitted2,
    }
    counter = _day_counter()
    assert (counter.usd_spent, counter.usd_reserved) == (Decimal("0.24"), 0)
    # and the freed budget admits new runs again, never past the limit: $0.76 left → 7 runs
    admitted3, _, peak = _race(worker_tenant, [f"wave3:{n}" for n in range(THREADS)])
    assert len(admitted3) == 7
    assert peak <= LIMIT
    counter = _day_counter()
    assert counter.usd_spent + counter.usd_reserved <= LIMIT
    assert counter.runs == 10 + 3 + 7
