"""Benchmark: budget reservations admitted per second against one tenant's budget, beside the
commit rate of the cheapest statement that could hold a shared budget at all.

In the same run, with W worker processes (default 8), each with its own connection to the
tenant's schema, started and connected before a barrier opens the clock:

1. baseline: A attempts in all (A / W each) of ``UPDATE … SET n = n + 1 WHERE id = 1 RETURNING n``
   on one row of a table of the bench's own (autocommit: one statement, one commit), all workers
   on the same row as the reservations share the tenant's day and month counters;
2. reservations: A attempts in all of ``tenants.budget.budget_reserve`` with a new key each, the
   limits high enough that every one is admitted: limits and price read, the reserving statement
   in its savepoint, the alert check (the policy's own thresholds, none reached);
3. overspend: the budget is set to admit exactly K runs (daily USD = K x the run's price) and the
   W workers race 3K reservations while this process watches the counters; exactly K must be
   admitted, K reservation rows held, and spent + reserved must never exceed the limit, neither
   while the race runs nor after it.

A rate is attempts / (last worker's end - first worker's start). Target: reservations per second
>= 50 % of the baseline's commits per second, and 0 overspend. Exit code 1 when a target is missed.

Run by hand (not part of `make test`), on a database of its own:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/mh1_bench REDIS_URL=redis://127.0.0.1:6379/11
    .venv/bin/python manage.py migrate_console -v0
    .venv/bin/python bench/budget_reservation.py            # --workers 8 --attempts 4000 --admit 200
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import sys
import threading
import time
import uuid
from decimal import Decimal

from _common import bench_tenant, setup_django

SLUG = "benchbudget"
MODEL = "bench-model"
RUN_TOKENS = 1000  # at $1 per million input tokens: $0.001 a run
RUN_USD = Decimal("0.001")
BASELINE_TABLE = "bench_budget_baseline"
TARGET = 0.50  # reservations/s over the baseline's commits/s


def _tenant():
    from django.conf import settings
    from django.db import connection

    from tenants.models import Tenant

    settings.DEBUG = False  # no query log in the measuring processes
    connection.set_schema_to_public()
    tenant = Tenant.objects.get(slug=SLUG)
    connection.set_tenant(tenant)
    return tenant


def _baseline_worker(attempts: int, start, out) -> None:
    from django.db import connection

    _tenant()
    with connection.cursor() as cursor:
        start.wait()  # connected (_tenant read the tenant) before the clock starts
        began = time.time()
        for _ in range(attempts):
            cursor.execute(f"UPDATE {BASELINE_TABLE} SET n = n + 1 WHERE id = 1 RETURNING n")  # noqa: S608
            cursor.fetchone()
        out.put((began, time.time(), attempts, 0))


def _reserve_worker(prefix: str, attempts: int, start, out) -> None:
    from tenants.budget import budget_reserve
    from tenants.budget.errors import BudgetRefused

    _tenant()  # connected (it reads the tenant) before the clock starts
    start.wait()
    began = time.time()
    admitted = refused = 0
    for _ in range(attempts):
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
    out.put((began, time.time(), admitted, refused))


def _race(target, args_of, workers: int, on_start=None) -> tuple[float, int, int]:
    """Run ``target`` in ``workers`` forked processes (each opens its own connection) released
    together by a barrier; returns (seconds from the first start to the last end, admitted, refused)."""
    from django.db import connections

    ctx = multiprocessing.get_context("fork")
    connections.close_all()  # a forked child must never share this process's socket
    start = ctx.Barrier(workers + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_of(i), start, out)) for i in range(workers)]
    for proc in procs:
        proc.start()
    start.wait(timeout=120)  # every worker has set Django up and connected
    if on_start is not None:
        on_start()
    results = []
    deadline = time.monotonic() + 600
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=1))
        except queue.Empty:
            failed = [proc.exitcode for proc in procs if proc.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                for proc in procs:
                    proc.terminate()
                raise SystemExit(f"a worker process failed (exit codes {failed}) or timed out") from None
    for proc in procs:
        proc.join(timeout=60)
    if any(proc.exitcode for proc in procs):
        raise SystemExit(f"a worker process failed: {[proc.exitcode for proc in procs]}")
    seconds = max(end for _, end, *_ in results) - min(began for began, *_ in results)
    return seconds, sum(r[2] for r in results), sum(r[3] for r in results)


def _set_limits(*, daily_usd: Decimal, thresholds: list[int] | None = None) -> None:
    from tenants.policy.models import QuotaPolicy

    policy = QuotaPolicy.get_solo()
    policy.daily_usd_limit = daily_usd
    policy.monthly_usd_limit = max(daily_usd, Decimal("100000"))
    policy.per_run_usd_limit = min(Decimal("1.00"), daily_usd)
    policy.monthly_token_budget = 10**12
    policy.daily_run_limit = 10**9
    policy.alert_thresholds = QuotaPolicy._meta.get_field("alert_thresholds").get_default()
    if thresholds is not None:
        policy.alert_thresholds = thresholds
    policy.save()


def _reset_ledger() -> None:
    from tenants.budget.models import BudgetAlert, BudgetCharge, BudgetCounter, BudgetReservation

    for model in (BudgetReservation, BudgetCharge, BudgetCounter, BudgetAlert):
        model.objects.all().delete()


class _Watcher(threading.Thread):
    """What a reader sees while the race runs: the most the day counter ever held (spent +
    reserved), from its own connection."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak = Decimal("0")
        self.reads = 0

    def run(self) -> None:
        from django.db import connection

        _tenant()
        try:
            with connection.cursor() as cursor:
                while not self.stop.is_set():
                    cursor.execute(
                        "SELECT coalesce(max(usd_spent + usd_reserved), 0) FROM budget_budgetcounter"
                        " WHERE kind = 'day'"
                    )
                    self.peak = max(self.peak, cursor.fetchone()[0])
                    self.reads += 1
        finally:
            connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--attempts", type=int, default=4000, help="attempts per rate phase, in all")
    parser.add_argument("--admit", type=int, default=200, help="runs the overspend phase's budget admits")
    args = parser.parse_args()

    setup_django()
    from datetime import UTC, datetime

    from django.core.management import call_command
    from django.db import connection

    from tenants.budget.models import BudgetCounter, BudgetReservation
    from tenants.models import ModelPrice

    call_command("migrate_console", verbosity=0)
    bench_tenant(SLUG, "Bench budget", assisted=False)
    connection.set_schema_to_public()
    ModelPrice.objects.get_or_create(
        model=MODEL,
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        defaults={"input_usd_per_mtok": Decimal("1"), "output_usd_per_mtok": Decimal("1")},
    )
    _tenant()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        cursor.execute(f"CREATE TABLE {BASELINE_TABLE} (id int PRIMARY KEY, n bigint)")
        cursor.execute(f"INSERT INTO {BASELINE_TABLE} VALUES (1, 0)")  # noqa: S608

    workers = args.workers
    per_worker = -(-args.attempts // workers)
    attempts = per_worker * workers
    print(f"{workers} worker processes, {attempts} attempts per rate phase")

    try:
        seconds, done, _ = _race(_baseline_worker, lambda i: (per_worker,), workers)
        baseline = done / seconds
        print(
            f"baseline  single-row UPDATE … RETURNING commits: {baseline:8.0f} /s  "
            f"({done} in {seconds:.2f} s)"
        )

        _reset_ledger()
        _set_limits(daily_usd=Decimal("100000"))
        seconds, admitted, refused = _race(_reserve_worker, lambda i: (f"rate{i}", per_worker), workers)
        rate = admitted / seconds
        ratio = rate / baseline if baseline else 0.0
        print(
            f"reserve   reservations admitted:            {rate:8.0f} /s  ({admitted} in {seconds:.2f} s, "
            f"{ratio:.1%} of the baseline)"
        )
        if refused:
            print(f"          {refused} refused with limits that admit all: a defect")

        _reset_ledger()
        limit = RUN_USD * args.admit
        _set_limits(daily_usd=limit, thresholds=[])  # no alert e-mails from the bench
        racers = -(-3 * args.admit // workers)
        watcher = _Watcher()
        _, race_admitted, race_refused = _race(
            _reserve_worker, lambda i: (f"race{i}", racers), workers, on_start=watcher.start
        )
        watcher.stop.set()
        watcher.join(timeout=10)
        day = BudgetCounter.objects.get(kind="day")
        month = BudgetCounter.objects.get(kind="month")
        held = day.usd_spent + day.usd_reserved
        rows = BudgetReservation.objects.count()
        overspend = max(held - limit, watcher.peak - limit, Decimal("0"))
        print(
            f"overspend {workers * racers} attempts against a budget for {args.admit}: "
            f"{race_admitted} admitted, {race_refused} refused, {rows} reservations, "
            f"day counter {day.runs} runs / ${held} of ${limit} "
            f"(month {month.runs} runs), peak seen ${watcher.peak} in {watcher.reads} reads, "
            f"overspend ${overspend}"
        )
    finally:
        _tenant()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        _reset_ledger()

    ok_rate = ratio >= TARGET and not refused
    ok_race = race_admitted == rows == day.runs == month.runs == args.admit and overspend == 0
    verdict = "PASS" if ok_rate else "FAIL"
    print(f"{verdict}  reservations {ratio:.1%} of the baseline (target ≥ {TARGET:.0%})")
    print(f"{'PASS' if ok_race else 'FAIL'}  exactly {args.admit} admitted, 0 overspend")
    print("\nRESULT:", "PASS" if ok_rate and ok_race else "FAIL")
    return 0 if ok_rate and ok_race else 1


if __name__ == "__main__":
    sys.exit(main())
