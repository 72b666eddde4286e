"""Benchmark: the approval queue's admin page at 1 000 and at 100 000 pending requests.

Seeds N pending ``email.send`` requests in one tenant (``benchq``, assisted phase) with
bulk_create, then loads GET /admin/approvals/actionrequest/ (default view: pending, by deadline)
as an account executive: 5 warm-up loads, 50 timed ones (server time through the test client,
DEBUG off), and the SQL query count of one load. Targets: same query count at both sizes, median
at 100 000 ≤ 1.3 times the median at 1 000, p95 ≤ 150 ms. The "my queue" (?queue=mine) and "overdue"
(?sla=overdue) pages are measured the same way (informational).

Run by hand (not part of `make test`), on a database of its own:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/mh1_bench REDIS_URL=redis://127.0.0.1:6379/11
    .venv/bin/python manage.py migrate_console -v0
    .venv/bin/python bench/approvals_queue.py            # --keep leaves the seeded rows

Seeded rows have idempotency keys ``bench-queue-<n>``; they are removed at the start of every run
and at the end unless --keep.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import timedelta

from _common import ae_user as _ae_user
from _common import bench_tenant as _bench_tenant
from _common import setup_django

setup_django()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from approvals.models import ActionRequest, Impact, Status  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.roles import Role  # noqa: E402

SLUG = "benchq"
HOST = f"{SLUG}.localhost"
AE_EMAIL = "ae@benchq.example"
KEY_PREFIX = "bench-queue-"
URL = "/admin/approvals/actionrequest/"
BATCH = 5_000
WARMUP, LOADS = 5, 50
TARGET_RATIO, TARGET_P95_MS = 1.3, 150.0
# impact mix: mostly low/medium, some high, a few critical (two approvals required)
IMPACTS = [Impact.LOW] * 40 + [Impact.MEDIUM] * 40 + [Impact.HIGH] * 15 + [Impact.CRITICAL] * 5


def bench_tenant():
    return _bench_tenant(SLUG, "Bench queue", assisted=True)


def ae_user(tenant):
    return _ae_user(tenant, AE_EMAIL)


def delete_seeded(tenant: Tenant) -> int:
    """Seeded rows have no events, approvals or object permissions: one DELETE removes them."""
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM approvals_actionrequest WHERE idempotency_key LIKE %s", [KEY_PREFIX + "%"]
        )
        return cursor.rowcount


def seed(tenant: Tenant, ae: User, start: int, stop: int, rng: random.Random) -> None:
    """Pending requests start … stop-1: deadlines over the next 30 days, about a third overdue on SLA."""
    now = timezone.now()
    with tenant_context(tenant):
        for low in range(start, stop, BATCH):
            rows = []
            for n in range(low, min(low + BATCH, stop)):
                impact = rng.choice(IMPACTS)
                created = now - timedelta(minutes=rng.randint(0, 3 * 24 * 60))
                to = f"lead{n}@prospect{n % 97}.example"
                rows.append(
                    ActionRequest(
                        kind="email.send",
                        payload={
                            "to": to,
                            "subject": f"Quick idea #{n}",
                            "body": "Hi,\nA short note about your pipeline.\nBest, the team",
                        },
                        target=to,
                        impact_level=impact,
                        risk_flags=[],
                        idempotency_key=f"{KEY_PREFIX}{n}",
                        deadline=now + timedelta(minutes=rng.randint(60, 30 * 24 * 60)),
                        status=Status.PENDING,
                        approvals_required=2 if impact == Impact.CRITICAL else 1,
                        # one in twenty assigned to the AE in person, the rest to the AE role
                        assigned_to=ae if n % 20 == 0 else None,
                        assigned_role=Role.AE,
                        sla_due_at=created + timedelta(minutes=rng.randint(60, 4 * 24 * 60)),
                        created_at=created,
                        requested_by_skill_run="bench",
                    )
                )
            ActionRequest.objects.bulk_create(rows, batch_size=1_000)


def vacuum_analyze(tenant: Tenant) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'VACUUM ANALYZE "{tenant.schema_name}".approvals_actionrequest')


def pending_count(tenant: Tenant) -> int:
    with tenant_context(tenant):
        return ActionRequest.objects.filter(status=Status.PENDING).count()


def measure(client: Client, query: str) -> dict[str, float | int]:
    path = URL + (f"?{query}" if query else "")

    def load():
        response = client.get(path, secure=True)  # DEBUG off: plain http is redirected to https
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}; is the AE logged in?")
        return response

    for _ in range(WARMUP):
        load()
    timings = []
    for _ in range(LOADS):
        started = time.perf_counter()
        load()
        timings.append((time.perf_counter() - started) * 1000)
    # one more load to count the queries and the rows shown (not timed: capturing costs a little)
    with CaptureQueriesContext(connection) as captured:
        response = load()
    rows_shown = response.content.count(b'name="_selected_action"')
    connection.set_schema_to_public()
    timings.sort()
    return {
        "median": statistics.median(timings),
        "p95": timings[round(0.95 * len(timings)) - 1],
        "max": timings[-1],
        "queries": len(captured.captured_queries),
        "shown": rows_shown,
        "sql": [(float(q["time"]) * 1000, q["sql"]) for q in captured.captured_queries],
    }


PAGES = (
    ("queue (default: pending by deadline)", ""),
    ("my queue (?queue=mine)", "queue=mine"),
    ("overdue (?sla=overdue)", "sla=overdue"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="leave the seeded rows in place")
    parser.add_argument("--show-sql", action="store_true", help="print the default page's queries")
    args = parser.parse_args()

    call_command("migrate_console", verbosity=0)
    settings.DEBUG = False  # no query log, no debug pages: production-like timings
    rng = random.Random(42)
    tenant = bench_tenant()
    ae = ae_user(tenant)
    removed = delete_seeded(tenant)
    if removed:
        print(f"removed {removed} rows left by an earlier run")
    client = Client(HTTP_HOST=HOST)  # Client ignores secure=; each request passes it
    with tenant_context(tenant):
        client.force_login(ae, backend="mh1.auth_backends.OneQueryModelBackend")
    connection.set_schema_to_public()

    results: dict[int, dict[str, dict]] = {}
    seeded = 0
    try:
        for size in (args.small, args.large):
            started = time.perf_counter()
            seed(tenant, ae, seeded, size, rng)
            seeded = size
            vacuum_analyze(tenant)
            print(
                f"seeded {size} requests ({time.perf_counter() - started:.1f} s); "
                f"pending in tenant: {pending_count(tenant)}"
            )
            results[size] = {label: measure(client, query) for label, query in PAGES}
    finally:
        connection.set_schema_to_public()
        if not args.keep:
            print(f"removed {delete_seeded(tenant)} seeded rows")

    small, large = results[args.small], results[args.large]
    for label, _ in PAGES:
        print(f"\n{label}")
        print(f"{'rows':>9} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'queries':>8} {'shown':>6}")
        for size, by_page in results.items():
            r = by_page[label]
            print(
                f"{size:>9} {r['median']:>10.1f} {r['p95']:>8.1f} {r['max']:>8.1f} "
                f"{r['queries']:>8} {r['shown']:>6}"
            )
        print(
            f"ratio of medians ({args.large} / {args.small}): "
            f"{large[label]['median'] / small[label]['median']:.2f}"
        )
        for size, by_page in results.items():
            ms, sql = max(by_page[label]["sql"], key=lambda q: q[0])
            print(f"  slowest SQL at {size}: {ms:.1f} ms  {sql[:100]}")

    default = PAGES[0][0]
    ratio = large[default]["median"] / small[default]["median"]
    checks = [
        (
            "query count equal",
            small[default]["queries"] == large[default]["queries"],
            f"{small[default]['queries']} vs {large[default]['queries']}",
        ),
        (f"median ratio <= {TARGET_RATIO}", ratio <= TARGET_RATIO, f"{ratio:.2f}"),
        (
            f"p95 <= {TARGET_P95_MS:.0f} ms at {args.large}",
            large[default]["p95"] <= TARGET_P95_MS,
            f"{large[default]['p95']:.1f} ms",
        ),
    ]
    print(f"\ntargets (default queue page, {args.small} vs {args.large} pending):")
    for name, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}")
    if args.show_sql:
        print("\nqueries of the default page at", args.large)
        for ms, sql in large[default]["sql"]:
            print(f"  {ms:6.1f} ms  {sql[:300]}")
    print("\nRESULT:", "PASS" if all(ok for _, ok, _ in checks) else "FAIL")


if __name__ == "__main__":
    main()
