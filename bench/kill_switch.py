"""Benchmark: how fast the tenant kill switch stops two workers sending at full speed.

Sets up, in tenant ``benchk`` (created on first use, assisted phase, kill switch off), a sending
policy with no pacing and limits far above the run, then proposes and approves N ``email.send``
requests (default 600, each to its own address) through ``approvals.services`` with no worker
running, so the ``effects`` queue holds them all. Then it starts two real workers
(``celery -A mh1 worker --concurrency 1 --pool prefork -Q effects,default``, two processes)
sending through the loopback sandbox (``python -m connectors.sandbox --port 0 --smtp-port P``,
the workers' ``EMAIL_BACKEND`` is ``connectors.mail.SMTPBackend`` on that port, as in
`make demo`). Once the sandbox has accepted ``--flip-after`` messages (default 150) it flips the
tenant kill switch on, the way the rollout admin and API do (``RolloutSettings`` saved with a
reason, in one transaction with the acting user as auditlog actor: there is no service for it),
and takes the time just after the COMMIT returned. It waits until no request of the run is
approved or executing any more, then reports, from the sandbox's own record
(``GET /_sandbox/smtp/messages``) and our call ledger:

- the time from the flip's commit to the last message the sandbox accepted (target ≤ 1 s);
- how many effects started after the flip (target 0): sends whose last gate check (the executor's
  ``approvals.gates.closed_gate`` before it records the call; the workers load this module with
  ``--include bench.kill_switch``, which logs each check's start and outcome) began after the
  commit and still let them through. Beside it, informational: how many messages the sandbox
  accepted after the commit and SMTP ledger rows started after it (sends whose gate passed just
  before the flip, still under way);
- the send rate before the flip, the requests executed and cancelled, and that no key was
  delivered twice.

Broker, result backend and cache are a ``redis-server`` of the script's own on a free port (so no
other worker on this machine takes its tasks); the database is DATABASE_URL, one of its own:

    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE mh1_bench_ks'     # once
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/mh1_bench_ks
    .venv/bin/python bench/kill_switch.py            # --count 600 --flip-after 150, --keep

The script runs ``migrate_console`` itself. The run's requests have keys ``bench-ks-<run>-<n>``;
they (and their ledger rows) are removed at the end unless --keep. Workers, sandbox and Redis are
stopped at the end, also on errors and Ctrl-C; the workers' logs stay in a temp folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from contextlib import suppress
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLUG = "benchk"
AE_EMAIL = "ae@benchk.example"
KEY_PREFIX = "bench-ks-"
TARGET_SECONDS = 1.0
QUEUES = "effects,default"
GATE_LOG = "MH1_BENCH_GATE_LOG"  # set for the bench's workers: the folder of their gate logs
# With DEBUG off a credential or endpoint secret cannot be encrypted without keys: bench-only ones.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "YmVuY2gtb25seS1mZXJuZXQta2V5LTAxMjM0NTY3ODk=")


# --- in the workers: when did each gate check begin, and what did it decide -------------------


def _log_gate_checks(folder: str) -> None:
    """Wrap ``approvals.gates.closed_gate`` (what the executors call before they record a call):
    append ``request-id start-time outcome`` per check to a file per process. A check that began
    after the flip's commit reads the committed switch (READ COMMITTED), so an "open" one then
    means a stale or cached read: an effect started after the flip."""
    from approvals import gates

    original = gates.closed_gate

    def closed_gate(request, *args, **kwargs):
        began = time.time()
        gate = original(request, *args, **kwargs)
        with (Path(folder) / f"gates-{os.getpid()}.log").open("a") as out:
            out.write(f"{request.pk} {began:.6f} {gate.code if gate is not None else 'open'}\n")
        return gate

    gates.closed_gate = closed_gate


if __name__ != "__main__" and os.environ.get(GATE_LOG):
    _log_gate_checks(os.environ[GATE_LOG])


# --- processes of the run's own ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    import redis

    port = free_port()
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(  # noqa: S603 - a fixed program with our own arguments
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with suppress(redis.ConnectionError):
            if client.ping():
                return process, url
        time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def start_sandbox(folder: Path) -> tuple[subprocess.Popen, str, int]:
    """``python -m connectors.sandbox --port 0``: its HTTP address from its first line."""
    smtp_port = free_port()
    log = (folder / "sandbox.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "connectors.sandbox", "--port", "0", "--smtp-port", str(smtp_port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
    )  # fmt: skip
    line = process.stdout.readline().decode()
    found = re.search(r"listening on (http://\S+)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    # keep reading its stdout so the pipe never fills
    threading.Thread(target=shutil.copyfileobj, args=(process.stdout, log), daemon=True).start()
    return process, found.group(1).rstrip("/"), smtp_port


def sandbox_messages(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/_sandbox/smtp/messages?delivered=1", timeout=10) as answer:  # noqa: S310
        return json.load(answer)["messages"]


def start_worker(name: str, env: dict[str, str], folder: Path, concurrency: int) -> subprocess.Popen:
    with (folder / f"{name}.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "celery", "-A", "mh1", "worker", "-Q", QUEUES, "--concurrency",
             str(concurrency), "--pool", "prefork", "--include", "bench.kill_switch", "-l", "WARNING",
             "-n", f"{name}@%h",
             "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def gate_checks(folder: Path) -> list[tuple[int, float, str]]:
    checks = []
    for path in folder.glob("gates-*.log"):
        for line in path.read_text().splitlines():
            request_id, began, outcome = line.split()
            checks.append((int(request_id), float(began), outcome))
    return checks


def stop(process: subprocess.Popen | None, group: bool = False) -> None:
    if process is None or process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait(timeout=10)


# --- the tenant and the run -------------------------------------------------------------------


def prepare_tenant():
    from _common import ae_user, bench_tenant
    from django_tenants.utils import tenant_context

    from tenants.policy.models import RolloutSettings, SendingPolicy

    tenant = bench_tenant(SLUG, "Bench kill switch", assisted=True)
    ae = ae_user(tenant, AE_EMAIL)
    with tenant_context(tenant):
        rollout = RolloutSettings.get_solo()
        if rollout.safe_mode:
            rollout.safe_mode = False
            rollout.save()
        policy = SendingPolicy.get_solo()
        # full speed: no pacing, limits far above any run (they must stay nested)
        policy.min_delay_seconds = 0
        policy.monthly_limit = policy.daily_limit = policy.hourly_limit = 10_000_000
        policy.per_domain_hourly_limit = 10_000_000
        policy.full_clean()
        policy.save()
    return tenant, ae


def propose_and_approve(tenant, ae, run: str, count: int) -> list[int]:
    from django_tenants.utils import tenant_context

    from approvals.models import Status
    from approvals.services import action_approve, action_propose

    ids = []
    with tenant_context(tenant):
        for n in range(count):
            request = action_propose(
                kind="email.send",
                payload={
                    "to": f"lead{n}.r{run}@prospect{n % 250}.example",
                    "to_name": f"Lead {n}",
                    "subject": f"Bench {run} #{n}",
                    "body": "Hi,\n\nWorth a short call next week?\n\nBest,\nAlex",
                },
                idempotency_key=f"{KEY_PREFIX}{run}-{n}",
                skill_run="bench",
            )
            if request.status != Status.PENDING:
                raise SystemExit(f"request #{request.pk} is {request.status}, expected pending")
            action_approve(request_id=request.pk, acting_user=ae)
            ids.append(request.pk)
    return ids


def flip_kill_switch(tenant, ae) -> tuple[float, float]:
    """Turn the tenant kill switch on as the rollout admin/API does; the times before the UPDATE
    and when the COMMIT returned."""
    from auditlog.context import set_actor
    from django.db import transaction
    from django_tenants.utils import tenant_context

    from tenants.policy.models import RolloutSettings

    with tenant_context(tenant):
        with transaction.atomic(), set_actor(ae):
            rollout = RolloutSettings.get_solo()
            rollout.kill_switch, rollout.kill_switch_reason = True, "bench/kill_switch.py"
            rollout.full_clean()
            began = time.time()
            rollout.save()
        return began, time.time()


def statuses(tenant, ids: list[int]) -> Counter:
    from django_tenants.utils import tenant_context

    from approvals.models import ActionRequest

    with tenant_context(tenant):
        return Counter(ActionRequest.objects.filter(pk__in=ids).values_list("status", flat=True))


def ledger_starts(tenant, run: str) -> list[float]:
    from django_tenants.utils import tenant_context

    from connectors.ledger import action_key
    from connectors.models import CallLedger, System

    with tenant_context(tenant):
        rows = CallLedger.objects.filter(
            system=System.SMTP, idempotency_key__startswith=action_key(f"{KEY_PREFIX}{run}-")
        ).values_list("started_at", flat=True)
        return [started.timestamp() for started in rows]


def remove_rows(tenant, prefix: str = KEY_PREFIX) -> int:
    from django_tenants.utils import tenant_context

    from approvals.models import ActionRequest, ExecutedEffect
    from connectors.ledger import action_key
    from connectors.models import CallLedger

    with tenant_context(tenant):
        CallLedger.objects.filter(idempotency_key__startswith=action_key(prefix)).delete()
        ExecutedEffect.objects.filter(idempotency_key__startswith=prefix).delete()
        removed, _ = ActionRequest.objects.filter(idempotency_key__startswith=prefix).delete()
    return removed


def delivered_at(message: dict) -> float:
    return datetime.fromisoformat(message["time"].replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=600, help="approved email.send requests")
    parser.add_argument("--flip-after", type=int, default=150, help="messages accepted before the flip")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes per worker")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each phase")
    parser.add_argument("--keep", action="store_true", help="leave the run's requests and ledger rows")
    args = parser.parse_args()
    if not 0 < args.flip_after < args.count:
        raise SystemExit("--flip-after must be between 0 and --count")

    folder = Path(tempfile.mkdtemp(prefix="mh1-bench-killswitch-"))
    redis_server = sandbox = None
    workers: list[subprocess.Popen] = []
    tenant = None
    try:
        redis_server, redis_url = start_redis(folder)
        sandbox, sandbox_url, smtp_port = start_sandbox(folder)
        # this process approves (and so enqueues) through the same broker the workers consume
        for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            os.environ[name] = redis_url
        from _common import setup_django

        setup_django()
        from django.core.management import call_command

        call_command("migrate_console", verbosity=0)
        tenant, ae = prepare_tenant()
        removed = remove_rows(tenant)
        if removed:
            print(f"removed {removed} requests left by an earlier run")
        run = str(int(time.time()))
        started = time.monotonic()
        ids = propose_and_approve(tenant, ae, run, args.count)
        print(
            f"{args.count} email.send requests proposed and approved in {time.monotonic() - started:.1f} s "
            f"(queued: no worker yet); sandbox {sandbox_url}, SMTP 127.0.0.1:{smtp_port}; logs in {folder}"
        )

        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mh1.settings",
            "EMAIL_BACKEND": "connectors.mail.SMTPBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_TIMEOUT": "10",
            GATE_LOG: str(folder),
        }
        workers = [
            start_worker(f"killswitch-{n + 1}", env, folder, args.concurrency) for n in range(args.workers)
        ]
        prefix = f"{KEY_PREFIX}{run}-"

        def ours() -> list[dict]:
            return [m for m in sandbox_messages(sandbox_url) if m["idempotency_key"].startswith(prefix)]

        deadline = time.monotonic() + args.timeout
        while len(sent := ours()) < args.flip_after:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(sent)} messages within {args.timeout:.0f} s: see {folder}")
            if any(w.poll() is not None for w in workers):
                raise SystemExit(f"a worker exited: see {folder}")
            time.sleep(0.05)

        flip_began, commit = flip_kill_switch(tenant, ae)

        deadline = time.monotonic() + args.timeout
        while (state := statuses(tenant, ids)).get("approved", 0) + state.get("executing", 0):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"requests still approved/executing after {args.timeout:.0f} s: {dict(state)}"
                )
            time.sleep(0.1)
        time.sleep(1.0)  # anything still on the wire lands in the sandbox's record
        messages = ours()
        starts = ledger_starts(tenant, run)
    finally:
        for worker in workers:
            stop(worker, group=True)
        stop(sandbox)
        stop(redis_server)

    times = sorted(delivered_at(m) for m in messages)
    before = [t for t in times if t <= commit]
    after = [t for t in times if t > commit]
    ledger_after = [t for t in starts if t > commit]
    per_key = Counter(m["idempotency_key"] for m in messages)
    twice = [key for key, n in per_key.items() if n > 1]
    window = [t for t in before if t > commit - 1.0]
    last = times[-1] - commit if times else float("nan")
    # each delivered message's last gate check that let it through (the executor's, just before
    # the call was recorded): did it begin after the flip's commit?
    request_of = {f"{prefix}{n}": request_id for n, request_id in enumerate(ids)}
    checks = gate_checks(folder)
    passed: dict[int, float] = {}
    for request_id, began, outcome in checks:
        if outcome == "open":
            passed[request_id] = max(began, passed.get(request_id, 0.0))
    decided = [passed.get(request_of.get(m["idempotency_key"]), float("nan")) for m in messages]
    started_after = [began for began in decided if began > commit]
    undecided = sum(1 for began in decided if began != began)  # nan: no gate check logged
    open_after = sum(1 for _, began, outcome in checks if outcome == "open" and began > commit)
    refused_after = sum(1 for _, began, outcome in checks if outcome == "kill_switch" and began > commit)
    in_flight = [m for m, began in zip(messages, decided, strict=True) if began <= commit < delivered_at(m)]

    print(f"\n{args.workers} workers x concurrency {args.concurrency}, sending through the sandbox")
    print(f"  send rate in the second before the flip: {len(window)} messages/s")
    print(f"  the flip's UPDATE + COMMIT took {(commit - flip_began) * 1000:.1f} ms")
    print(f"  accepted by the sandbox before the commit: {len(before)}; after it: {len(after)}")
    print(
        f"  last message accepted {last * 1000:+.0f} ms from the commit"
        + (" (before it: nothing landed after the flip)" if last <= 0 else "")
    )
    print(
        f"  effects started after the flip (gate passed in a check begun after the commit): "
        f"{len(started_after)}; gate checks after the commit: {open_after} open, {refused_after} "
        f"refused by the kill switch"
    )
    print(
        f"  in flight at the flip (gate passed before the commit, accepted after it): {len(in_flight)}; "
        f"SMTP ledger rows started after the commit: {len(ledger_after)}"
    )
    if undecided:
        print(f"  WARNING: {undecided} messages without a logged gate check (is closed_gate still called?)")
    print(f"  requests: {dict(state)}; keys delivered twice: {len(twice)}")
    ok = max(last, 0.0) <= TARGET_SECONDS and not started_after and not twice and not undecided
    print(
        f"  target: last effect ≤ {TARGET_SECONDS:.0f} s after the commit and 0 started after it: "
        + ("PASS" if ok else "FAIL")
    )
    if not args.keep:
        remove_rows(tenant)
    # the next run (and anyone else using the tenant) starts with the kill switch off again
    from _common import bench_tenant

    bench_tenant(SLUG, "Bench kill switch", assisted=True)


if __name__ == "__main__":
    main()
