"""Benchmark: Instantly webhook events ingested per second, with the secret check and dedup.

Builds N distinct Instantly events (default 45 000: opens, sends, replies and clicks, each with
its own ``email_id``; no unsubscribes or bounces, so nothing is suppressed) plus 10 % replays of
random earlier ones (default 5 000), shuffled: 50 000 requests. Each is a POST of the JSON body
with the ``X-MH1-Webhook-Secret`` header to ``/api/v1/webhooks/instantly/`` on the tenant's host
(https), made by calling the project's WSGI application (``mh1.wsgi.application``, what
WSGI_APPLICATION names: the lean accept path of connectors.ingest in front of Django) in-process
with a WSGI environ per request, prepared before the clock starts as a WSGI server would hand it
over, DEBUG off, from 4 threads (--threads; each thread its own database connection). Before it,
a smaller single-thread run (--single-count, default 4 500 distinct + 500 replays).

Beside it, in the same run, the floor the database sets: the same keys in the same order, one
raw ``INSERT INTO … (k) VALUES (%s) ON CONFLICT DO NOTHING`` per key, each its own autocommit
transaction, through psycopg directly from the same number of threads, into a scratch table
(schema ``bench_webhook``, dropped at the end). Target: webhook events/s ≥ 30 % of inserts/s.

Informational: the same kind of requests through Django's test client (the full middleware
stack and the reference view, as every event went before the accept path existed) from the
same threads (--django-count distinct events, default 2 000, 0 skips it), and requests/s
answered 401 (wrong secret) from one thread by the accept path and by the test client
(--floor requests, 0 skips them).

Each run is checked: every response 200, "stored" exactly once per distinct event and
"duplicate" for every replay, and the WebhookEvent rows equal to the distinct events (0 lost,
0 duplicated), each with outcome "stored".

Measured on the 2-CPU machine (two runs): 3 825 and 3 814 events/s vs 11 651 and 11 245
inserts/s at 4 threads (32.8 %, 33.9 %: PASS), 2 366 and 2 318 vs 5 820 and 5 360 at 1 thread;
Django's test client 362 and 371 events/s at 4 threads (before the accept path: 298 events/s vs
13 230 inserts/s, 2.3 %). What remains is the table (the same INSERT through psycopg alone
reaches 55-65 % of the baseline at 4 threads) and the GIL the four threads share.

Run by hand (not part of `make test`), on a database of its own:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/mh1_bench REDIS_URL=redis://127.0.0.1:6379/11
    DEBUG=1 .venv/bin/python bench/webhook_ingest.py      # --count 5000 for a quick run, --keep

DEBUG=1 only lets the settings load; the measurement runs with DEBUG off. A bench-only
SECRET_KEY and FIELD_ENCRYPTION_KEYS are set unless given (the endpoint's secret is encrypted).

Uses the tenant ``benchw`` (created on first use) and its Instantly webhook endpoint. The run's
events have email ids ``bench-wh-<n>``; they are removed at the start of every run, between the
runs and at the end unless --keep (which leaves the last measured run's rows).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter

# With DEBUG off, the endpoint's secret cannot be encrypted without FIELD_ENCRYPTION_KEYS: a bench-only key.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "YmVuY2gtb25seS1mZXJuZXQta2V5LTAxMjM0NTY3ODk=")

from _common import bench_tenant as _bench_tenant
from _common import setup_django

setup_django()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from connectors import ingest  # noqa: E402
from connectors.api import SECRET_HEADER  # noqa: E402
from connectors.models import System, WebhookEndpoint, WebhookEvent  # noqa: E402
from mh1.wsgi import application  # noqa: E402
from tenants.models import Tenant  # noqa: E402

SLUG = "benchw"
HOST = f"{SLUG}.localhost"
URL = "/api/v1/webhooks/instantly/"
REF_PREFIX = "bench-wh-"
SCRATCH_SCHEMA = "bench_webhook"
SCRATCH_TABLE = f"{SCRATCH_SCHEMA}.inserts"
TARGET_RATIO = 0.30
# mostly opens and sends, some replies and clicks; nothing that suppresses an address
EVENT_TYPES = ["email_opened"] * 45 + ["email_sent"] * 40 + ["reply_received"] * 10 + ["link_clicked"] * 5


def bench_tenant():
    return _bench_tenant(SLUG, "Bench webhooks", assisted=False)


def endpoint_secret(tenant: Tenant) -> str:
    with tenant_context(tenant):
        try:
            endpoint, _ = WebhookEndpoint.objects.get_or_create(system=System.INSTANTLY)
        except ImproperlyConfigured:  # stored under another FIELD_ENCRYPTION_KEYS: make a new one
            WebhookEndpoint.objects.filter(system=System.INSTANTLY)._raw_delete(connection.alias)
            endpoint = WebhookEndpoint.objects.create(system=System.INSTANTLY)
        if not endpoint.is_active:
            endpoint.is_active = True
            endpoint.save(update_fields=["is_active"])
        return str(endpoint.secret)


def delete_events(tenant: Tenant) -> int:
    with tenant_context(tenant):
        deleted, _ = WebhookEvent.objects.filter(
            system=System.INSTANTLY, event_id__contains=f":{REF_PREFIX}"
        ).delete()
    return deleted


def make_events(count: int, duplicates: int, rng: random.Random) -> tuple[list[tuple[str, bytes]], set[str]]:
    """(event id, JSON body) for count distinct events plus replays, shuffled; and the distinct ids."""
    distinct = []
    base = 1_767_225_600  # 2026-01-01, spread over a week
    for n in range(count):
        event_type = rng.choice(EVENT_TYPES)
        ref = f"{REF_PREFIX}{n}"
        lead = f"lead{n}@prospect{n % 211}.example"
        payload = {
            "timestamp": time.strftime(
                "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(base + rng.randint(0, 7 * 86400))
            ),
            "event_type": event_type,
            "workspace": "0b6a1d4e-bench-workspace",
            "campaign_id": f"camp-{n % 37}",
            "campaign_name": f"Bench campaign {n % 37}",
            "lead_email": lead,
            "email_account": f"sender{n % 5}@agency.example",
            "email_id": ref,
            "step": 1 + n % 3,
            "variant": 1 + n % 2,
        }
        if event_type == "reply_received":
            payload["reply_text_snippet"] = "Thanks, can we talk next week?"
        distinct.append((f"{event_type}:{ref}", json.dumps(payload).encode()))
    events = distinct + rng.choices(distinct, k=duplicates)
    rng.shuffle(events)
    return events, {event_id for event_id, _ in distinct}


def run_threads(worker, events: list, threads: int) -> tuple[float, list]:
    """Split events round-robin over threads, start them together; (seconds, per-thread results)."""
    results: list = [None] * threads
    errors: list = []
    barrier = threading.Barrier(threads + 1)

    def target(index: int) -> None:
        try:
            results[index] = worker(events[index::threads], barrier)
        except Exception as exc:  # noqa: BLE001 - re-raised after the join
            errors.append(exc)
            barrier.abort()

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a worker failed: raised below
        barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed, results


def wsgi_environs(chunk: list[tuple[str, bytes]], secret: str) -> list[dict]:
    """One WSGI environ per request, as a server would hand it over (built before the clock)."""
    base = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": URL,
        "QUERY_STRING": "",
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": HOST,
        "CONTENT_TYPE": "application/json",
        ingest.SECRET_KEY_IN_ENVIRON: secret,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    return [{**base, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)} for _, body in chunk]


def ingest_worker(secret: str):
    """Requests through mh1.wsgi.application, the accept path in front of Django."""

    def work(chunk: list[tuple[str, bytes]], barrier: threading.Barrier) -> list:
        environs = wsgi_environs(chunk, secret)
        out = []
        started: list[str] = []

        def start_response(status, headers, exc_info=None):
            started.append(status)

        try:
            connection.ensure_connection()  # opened before the clock starts
            barrier.wait()
            for (event_id, _), environ in zip(chunk, environs, strict=True):
                t0 = time.perf_counter()
                result = application(environ, start_response)
                try:
                    body = b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
                took = time.perf_counter() - t0
                try:
                    answer = json.loads(body)
                except ValueError:
                    answer = {}
                status = int(started.pop()[:3])
                out.append((event_id, status, answer.get("status"), answer.get("id"), took))
        finally:
            connection.close()
        return out

    return work


def django_client_worker(secret: str):
    """Requests through Django's test client: the full middleware stack and the reference view."""

    def work(chunk: list[tuple[str, bytes]], barrier: threading.Barrier) -> list:
        client = Client(HTTP_HOST=HOST, secure=True, headers={SECRET_HEADER: secret})
        out = []
        try:
            connection.ensure_connection()  # opened before the clock starts
            barrier.wait()
            for event_id, body in chunk:
                t0 = time.perf_counter()
                response = client.post(URL, data=body, content_type="application/json")
                took = time.perf_counter() - t0
                try:
                    answer = response.json()
                except ValueError:
                    answer = {}
                out.append((event_id, response.status_code, answer.get("status"), answer.get("id"), took))
        finally:
            connection.close()
        return out

    return work


def insert_worker(conninfo: dict):
    def work(chunk: list[tuple[str, bytes]], barrier: threading.Barrier) -> list:
        out = []
        with psycopg.connect(**conninfo, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            barrier.wait()
            sql = f"INSERT INTO {SCRATCH_TABLE} (k) VALUES (%s) ON CONFLICT DO NOTHING"  # noqa: S608
            for event_id, _ in chunk:
                cursor.execute(sql, (event_id,))
                out.append((event_id, cursor.rowcount))
        return out

    return work


def psycopg_conninfo() -> dict:
    db = settings.DATABASES["default"]
    info = {"dbname": db["NAME"], "user": db.get("USER") or None, "host": db.get("HOST") or None}
    if db.get("PORT"):
        info["port"] = int(db["PORT"])
    if db.get("PASSWORD"):
        info["password"] = db["PASSWORD"]
    return {key: value for key, value in info.items() if value is not None}


def scratch_reset(conninfo: dict, *, drop: bool = False) -> None:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
        if not drop:
            conn.execute(f"CREATE SCHEMA {SCRATCH_SCHEMA}")
            conn.execute(f"CREATE TABLE {SCRATCH_TABLE} (k varchar(200) PRIMARY KEY)")


def rejected_rates(requests: int) -> tuple[float, float]:
    """Requests/s answered 401 (wrong secret) from one thread: (accept path, Django test client)."""
    body = b'{"event_type": "email_opened"}'
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)  # each 401 would log a warning
    start_response = lambda status, headers, exc_info=None: None  # noqa: E731
    try:
        environs = wsgi_environs([("", body)] * (requests + 1), "wrong")
        b"".join(application(environs.pop(), start_response))
        started = time.perf_counter()
        for environ in environs:
            b"".join(application(environ, start_response))
        fast = requests / (time.perf_counter() - started)
        client = Client(HTTP_HOST=HOST, secure=True, headers={SECRET_HEADER: "wrong"})
        client.post(URL, data=body, content_type="application/json")
        started = time.perf_counter()
        for _ in range(requests):
            assert client.post(URL, data=body, content_type="application/json").status_code == 401
        return fast, requests / (time.perf_counter() - started)
    finally:
        request_log.setLevel(level)
        connection.close()


def check_ingest(tenant: Tenant, results: list, distinct: set[str], requests: int) -> dict:
    rows = [row for chunk in results for row in chunk]
    statuses = Counter(row[1] for row in rows)
    answers = Counter(row[2] for row in rows)
    stored_per_event = Counter(row[0] for row in rows if row[2] == "stored")
    ids_per_event: dict[str, set] = {}
    for event_id, _, _, pk, _ in rows:
        ids_per_event.setdefault(event_id, set()).add(pk)
    with tenant_context(tenant):
        db_rows = list(
            WebhookEvent.objects.filter(
                system=System.INSTANTLY, event_id__contains=f":{REF_PREFIX}"
            ).values_list("event_id", "outcome")
        )
    in_db = Counter(event_id for event_id, _ in db_rows)
    lost = len(distinct - set(in_db))
    duplicated = sum(n - 1 for n in in_db.values() if n > 1) + len(set(in_db) - distinct)
    latencies = sorted(row[4] for row in rows)
    return {
        "requests": len(rows),
        "expected_requests": requests,
        "http_200": statuses.get(200, 0),
        "other_status": {code: n for code, n in statuses.items() if code != 200},
        "stored": answers.get("stored", 0),
        "duplicate": answers.get("duplicate", 0),
        "stored_not_once": sum(1 for event_id in distinct if stored_per_event.get(event_id) != 1),
        "replay_other_id": sum(1 for pks in ids_per_event.values() if len(pks) != 1),
        "db_rows": len(db_rows),
        "outcome_not_stored": sum(1 for _, outcome in db_rows if outcome != "stored"),
        "lost": lost,
        "duplicated": duplicated,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def ingest_ok(check: dict, distinct: set[str]) -> bool:
    duplicates = check["expected_requests"] - len(distinct)
    return (
        check["requests"] == check["expected_requests"]
        and check["http_200"] == check["requests"]
        and check["stored"] == len(distinct)
        and check["duplicate"] == duplicates
        and check["stored_not_once"] == 0
        and check["replay_other_id"] == 0
        and check["db_rows"] == len(distinct)
        and check["outcome_not_stored"] == 0
        and check["lost"] == 0
        and check["duplicated"] == 0
    )


def check_inserts(conninfo: dict, results: list, distinct: set[str]) -> dict:
    inserted = sum(rowcount for chunk in results for _, rowcount in chunk)
    with psycopg.connect(**conninfo) as conn:
        in_table = conn.execute(f"SELECT count(*) FROM {SCRATCH_TABLE}").fetchone()[0]  # noqa: S608
    return {"inserted": inserted, "in_table": in_table, "ok": inserted == in_table == len(distinct)}


def print_run(label: str, seconds: float, check: dict, distinct: set[str], duplicates: int, ok: bool) -> None:
    print(
        f"  {label:<15}: {check['requests'] / seconds:8.0f} events/s  ({seconds:.1f} s; "
        f"p50 {check['p50_ms']:.2f} ms, p99 {check['p99_ms']:.2f} ms per request)"
    )
    print(
        f"  responses      : {check['http_200']} x 200 (other: {check['other_status'] or 'none'}), "
        f"{check['stored']} stored, {check['duplicate']} duplicate "
        f"(expected {len(distinct)} / {duplicates}); events not stored exactly once: "
        f"{check['stored_not_once']}; replays answered with another id: {check['replay_other_id']}"
    )
    print(
        f"  WebhookEvent   : {check['db_rows']} rows for {len(distinct)} distinct events, "
        f"lost {check['lost']}, duplicated {check['duplicated']}, "
        f"outcome not 'stored': {check['outcome_not_stored']}  -> {'OK' if ok else 'WRONG'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=45_000, help="distinct events (default 45 000)")
    parser.add_argument("--duplicates", type=float, default=0.10, help="replays as a share of all requests")
    parser.add_argument("--single-count", type=int, default=4_500, help="distinct events, 1-thread run")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--django-count", type=int, default=2_000, help="distinct events through the test client (0: skip)"
    )
    parser.add_argument("--floor", type=int, default=1_000, help="rejected requests timed (0: skip)")
    parser.add_argument("--seed", type=int, default=20_260_101)
    parser.add_argument("--keep", action="store_true", help="leave the last run's WebhookEvent rows")
    args = parser.parse_args()

    call_command("migrate_console", verbosity=0)
    settings.DEBUG = False  # no query log, no debug pages: production-like timings
    tenant = bench_tenant()
    secret = endpoint_secret(tenant)
    ingest.cache_clear()
    conninfo = psycopg_conninfo()
    rng = random.Random(args.seed)
    runs = [(1, args.single_count), (args.threads, args.count)]
    if args.django_count:
        runs.insert(0, (-args.threads, args.django_count))  # negative: through the test client
    sets = {}
    for threads, count in runs:
        duplicates = round(count * args.duplicates / (1 - args.duplicates))
        events, distinct = make_events(count, duplicates, rng)
        sets[threads] = (events, distinct, duplicates)
        through = "Django's test client" if threads < 0 else "mh1.wsgi.application"
        print(
            f"threads={abs(threads)}: {len(events)} requests = {len(distinct)} distinct Instantly events "
            f"+ {duplicates} replays, shuffled, through {through}"
        )
    print(f"tenant {SLUG}, DEBUG off, {os.cpu_count()} CPUs")
    removed = delete_events(tenant)
    if removed:
        print(f"removed {removed} rows left by an earlier run")

    figures: dict[int, dict] = {}
    all_ok = True
    try:
        if args.floor:
            fast, django = rejected_rates(args.floor)
            print(
                f"\nanswered 401 (wrong secret, informational), threads=1: {fast:.0f} requests/s "
                f"through the accept path, {django:.0f} through Django's test client"
            )
        for threads, (events, distinct, duplicates) in sets.items():
            if threads < 0:  # informational: the full Django stack, no baseline
                delete_events(tenant)
                connection.close()
                seconds, results = run_threads(django_client_worker(secret), events, -threads)
                check = check_ingest(tenant, results, distinct, len(events))
                ok = ingest_ok(check, distinct)
                all_ok &= ok
                figures[threads] = {"events": len(events) / seconds, "check": check}
                print(f"\nDjango test client, threads={-threads} ({len(events)} requests; informational)")
                print_run("Django stack", seconds, check, distinct, duplicates, ok)
                delete_events(tenant)
                continue
            scratch_reset(conninfo)
            insert_seconds, insert_results = run_threads(insert_worker(conninfo), events, threads)
            inserts = check_inserts(conninfo, insert_results, distinct)

            delete_events(tenant)
            connection.close()  # the worker threads use their own connections
            ingest_seconds, ingest_results = run_threads(ingest_worker(secret), events, threads)
            check = check_ingest(tenant, ingest_results, distinct, len(events))
            ok = ingest_ok(check, distinct) and inserts["ok"]
            all_ok &= ok
            events_rate = len(events) / ingest_seconds
            insert_rate = len(events) / insert_seconds
            figures[threads] = {"events": events_rate, "inserts": insert_rate, "check": check}
            print(f"\nthreads={threads} ({len(events)} requests)")
            print_run("webhook ingest", ingest_seconds, check, distinct, duplicates, ok)
            print(
                f"  raw INSERT     : {insert_rate:8.0f} inserts/s ({insert_seconds:.1f} s; "
                f"{inserts['inserted']} inserted, {inserts['in_table']} in table)"
            )
            print(f"  ratio          : {events_rate / insert_rate:.1%}")
            if threads != args.threads or not args.keep:
                delete_events(tenant)
    finally:
        connection.close()
        scratch_reset(conninfo, drop=True)
        if not args.keep:
            delete_events(tenant)
        connection.set_schema_to_public()

    main_figures = figures[args.threads]
    ratio = main_figures["events"] / main_figures["inserts"]
    passed = ratio >= TARGET_RATIO and all_ok
    django_line = (
        f"; Django test client (informational): {figures[-args.threads]['events']:.0f} events/s "
        f"at threads={args.threads}"
        if args.django_count
        else ""
    )
    print(
        f"\nsummary: threads={args.threads}: {main_figures['events']:.0f} events/s vs "
        f"{main_figures['inserts']:.0f} inserts/s = {ratio:.1%} (target ≥ {TARGET_RATIO:.0%}); "
        f"threads=1: {figures[1]['events']:.0f} events/s vs {figures[1]['inserts']:.0f} inserts/s = "
        f"{figures[1]['events'] / figures[1]['inserts']:.1%}; lost {main_figures['check']['lost']}, "
        f"duplicated {main_figures['check']['duplicated']}; checks {'OK' if all_ok else 'WRONG'}"
        f"{django_line}"
    )
    print("PASS" if passed else "FAIL")
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
