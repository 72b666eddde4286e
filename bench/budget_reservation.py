"""Benchmark: budget reservations admitted per second against one tenant's budget, beside the
commit rate of the cheapest statement that could hold a shared budget at all.

In the same run, with W worker processes (default 8), each with its own connection:

1. baseline: each worker loops ``UPDATE … SET n = n + 1 WHERE id = 1 RETURNING n`` on one row of
   a table of its own (autocommit: one statement, one commit), for D seconds;
2. reservations: each worker loops ``tenants.budget.budget_reserve`` with a new key (the limits
   high enough that all are admitted), for D seconds: the reserving statement, its savepoint, the
   limits read and the alert check;
3. overspend: the budget is set to admit exactly K runs (daily USD = K x the run's price) and the
   W workers race 3K reservations; exactly K must be admitted and the counters must never hold
   more than the limit.

Target: reservations per second >= 50 % of the baseline's commits per second, and 0 overspend.
Exit code 1 when a target is missed.

Run by hand (not part of `make test`), on a database of its own:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/mh1_bench REDIS_URL=redis://127.0.0.1:6379/11
    .venv/bin/python manage.py migrate_console -v0
    .venv/bin/python bench/budget_reservation.py            # --workers 8 --seconds 5 --admit 200
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import uuid
from decimal import Decimal

from _common import bench_tenant, setup_django

SLUG = "benchbudget"
MODEL = "bench-model"
RUN_TOKENS = 1000  # at $1 per million input tokens: $0.001 a run
RUN_USD = Decimal("0.001")


def _tenant():
    from django.db import connection

    from tenants.models import Tenant

    connection.set_schema_to_public()
    tenant = Tenant.objects.get(slug=SLUG)
    connection.set_tenant(tenant)
    return tenant


def _baseline_worker(table: str, seconds: float, start, out) -> None:
    setup_django()
    from django.db import connection

    _tenant()
    with connection.cursor() as cursor:
        start.wait()
        done, until = 0, time.monotonic() + seconds
        while time.monotonic() < until:
            cursor.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1 RETURNING n")  # noqa: S608
            cursor.fetchone()
            done += 1
    out.put(done)


def _reserve_worker(prefix: str, seconds: float, attempts: int, start, out) -> None:
    setup_django()
    from tenants.budget import budget_reserve
    from tenants.budget.errors import BudgetRefused

    _tenant()
    start.wait()
    admitted = refused = 0
    until = time.monotonic() + seconds if seconds else None
    n = 0
    while (until is None and n < attempts) or (until is not None and time.monotonic() < until):
        n += 1
        try:
            budget_reserve(
                key=f"{prefix}:{uuid.uuid4()}",
                skill="bench",
                model=MODEL,
                max_input_tokens=RUN_TOKENS,
                max_output_tokens=0,
                timeout_seconds=3600,
            )
            admitted += 1
        except BudgetRefused:
            refused += 1
    out.put((admitted, refused))


def _race(target, args_of, workers: int) -> list:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(workers)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_of(i), start, out)) for i in range(workers)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return results


def _set_limits(*, daily_usd: Decimal, runs: int) -> None:
    from tenants.policy.models import QuotaPolicy

    policy = QuotaPolicy.get_solo()
    policy.daily_usd_limit = daily_usd
    policy.monthly_usd_limit = max(daily_usd, Decimal("100000"))
    policy.per_run_usd_limit = min(Decimal("1.00"), daily_usd)
    policy.monthly_token_budget = 10**12
    policy.daily_run_limit = runs
    policy.alert_thresholds = []
    policy.save()


def _reset_ledger() -> None:
    from tenants.budget.models import BudgetCharge, BudgetCounter, BudgetReservation

    BudgetReservation.objects.all().delete()
    BudgetCharge.objects.all().delete()
    BudgetCounter.objects.all().delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--admit", type=int, default=200, help="runs the overspend phase's budget admits")
    args = parser.parse_args()

    setup_django()
    from datetime import UTC, datetime

    from django.db import connection

    from tenants.budget.models import BudgetCounter
    from tenants.models import ModelPrice

    bench_tenant(SLUG, "Bench budget", assisted=False)
    connection.set_schema_to_public()
    ModelPrice.objects.get_or_create(
        model=MODEL,
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        defaults={"input_usd_per_mtok": Decimal("1"), "output_usd_per_mtok": Decimal("1")},
    )
    _tenant()
    table = "bench_budget_baseline"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY, n bigint)")
        cursor.execute(f"INSERT INTO {table} VALUES (1, 0)")  # noqa: S608

    workers, seconds = args.workers, args.seconds
    print(f"{workers} workers, {seconds:.0f} s per phase")

    baseline = sum(_race(_baseline_worker, lambda i: (table, seconds), workers)) / seconds
    print(f"baseline  single-row UPDATE … RETURNING commits: {baseline:10.0f} /s")

    _reset_ledger()
    _set_limits(daily_usd=Decimal("100000"), runs=10**9)
    results = _race(_reserve_worker, lambda i: (f"rate{i}", seconds, 0), workers)
    admitted = sum(a for a, _ in results)
    refused = sum(r for _, r in results)
    rate = admitted / seconds
    ratio = rate / baseline if baseline else 0.0
    print(f"reserve   reservations admitted:            {rate:10.0f} /s  ({ratio:.0%} of baseline)")
    if refused:
        print(f"          ({refused} refused with limits that admit all: a defect)")

    _reset_ledger()
    limit = RUN_USD * args.admit
    _set_limits(daily_usd=limit, runs=10**9)
    per_worker = (3 * args.admit + workers - 1) // workers
    results = _race(_reserve_worker, lambda i: (f"race{i}", 0, per_worker), workers)
    race_admitted = sum(a for a, _ in results)
    day = BudgetCounter.objects.get(kind="day")
    held = day.usd_spent + day.usd_reserved
    overspend = max(held - limit, Decimal("0"))
    print(
        f"overspend {workers * per_worker} attempts against a budget for {args.admit}: "
        f"{race_admitted} admitted, ${held} held of ${limit}, overspend ${overspend}"
    )

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
    _reset_ledger()

    ok_rate = ratio >= 0.5 and not refused
    ok_race = race_admitted == args.admit and overspend == 0
    print(f"target ≥ 50 % of baseline: {'PASS' if ok_rate else 'FAIL'}")
    print(f"target 0 overspend, exactly {args.admit} admitted: {'PASS' if ok_race else 'FAIL'}")
    return 0 if ok_rate and ok_race else 1


if __name__ == "__main__":
    sys.exit(main())
