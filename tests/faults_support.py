"""Helpers of the fault suite (tests/test_faults.py): worker subprocesses on a Redis of the test's
own, the test process publishing to that Redis, a fixed schedule of HTTP faults fed one at a time,
and reading effects back from the sandbox's own record."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

# The broker-outage suite's own redis-server (free port, no persistence): one pattern for both.
from tests.test_broker_outage import OwnRedis, _wait

ROOT = Path(__file__).resolve().parents[1]
HUBSPOT_CONTACTS = "/crm/v3/objects/contacts"
GHL_UPSERT = "/contacts/upsert"

__all__ = ["OwnRedis", "_wait"]


# --- the test process publishes to the workers' broker ----------------------------------------------


@contextlib.contextmanager
def publishing_to(broker_url: str) -> Iterator[None]:
    """Point the test process's Celery app at ``broker_url`` for enqueueing (approvals enqueue on
    commit). Results stay where they were: the test never reads one."""
    from mh1.celery import app

    def forget_pools() -> None:
        app._pool = None
        with contextlib.suppress(AttributeError, KeyError):
            app.__dict__["amqp"]._producer_pool = None

    saved = app.conf.broker_url
    # both: connection_for_write reads broker_write_url, which only follows broker_url while unset
    app.conf.broker_url = app.conf.broker_write_url = broker_url
    forget_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_write_url = saved, None
        forget_pools()


# --- worker subprocesses ---------------------------------------------------------------------------


def worker_env(broker_url: str, smtp_port: int) -> dict[str, str]:
    """The project's settings, driven by the environment as in production: the test database,
    the test's broker, mail through the phased SMTP backend to the sandbox with a short time-out."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "EMAIL_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="mh1.settings",
        DEBUG="1",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        FIELD_ENCRYPTION_KEYS=",".join(settings.FIELD_ENCRYPTION_KEYS),
        REDIS_URL=settings.REDIS_URL,  # rate limits: the tests' Redis, not the one that restarts
        CELERY_BROKER_URL=broker_url,
        CELERY_RESULT_BACKEND=broker_url,
        CELERY_VISIBILITY_TIMEOUT="8",
        CELERY_UNACKED_RESTORE_INTERVAL="1",
        CELERY_UNACKED_RESTORE_THROTTLE="1",
        EMAIL_BACKEND="connectors.mail.SMTPBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        EMAIL_TIMEOUT="2",
        EMAIL_USE_TLS="0",
        LOG_LEVEL="WARNING",
    )
    return env


class Worker:
    """``celery -A mh1 worker`` on the effects queue (threads pool), in its own process group."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, concurrency: int = 3) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "mh1", "worker", "-Q", "effects",
                 "--pool", "threads", "--concurrency", str(concurrency), "-l", "WARNING",
                 "-n", f"{name}-{time.monotonic_ns()}@%h",
                 "--without-mingle", "--without-gossip", "--without-heartbeat"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no ack, its database connections die with it."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


# --- HTTP faults, fed one at a time ----------------------------------------------------------------


class FaultFeeder:
    """A fixed list of HTTP faults per endpoint, added one at a time: the next only once the
    previous was taken. So faults never come in bursts (which would open the circuit breaker and
    test that instead) and their order is fixed, whichever action each one meets."""

    def __init__(self, state, schedule: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.state = state
        self.queues = {target: list(specs) for target, specs in schedule.items()}
        self.outstanding: dict[tuple[str, str], int] = {}
        self.added = Counter()

    def feed(self) -> None:
        with self.state.lock:
            pending = {f["id"] for f in self.state.faults}
        for target, specs in self.queues.items():
            if self.outstanding.get(target) in pending or not specs:
                continue
            method, prefix = target
            spec = specs.pop(0)
            fault = self.state.add_fault(method=method, path_prefix=prefix, times=1, **spec)
            self.outstanding[target] = fault["id"]
            self.added[(method, prefix, spec.get("mode", "status"), spec.get("status"))] += 1

    def left(self) -> int:
        return sum(len(specs) for specs in self.queues.values())


# --- effects as the sandbox recorded them ------------------------------------------------------------


def deliveries_by_key(state) -> dict[str, list[dict[str, Any]]]:
    """Delivered messages (the message left the sender, whether or not it heard so) per
    ``X-MH1-Idempotency-Key``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for message in state.smtp_messages(delivered=True):
        out.setdefault(message["idempotency_key"], []).append(message)
    return out


def crm_writes_by_email(state) -> dict[str, list[dict[str, Any]]]:
    """Contact writes the sandbox applied (2xx answers of a writing route; a faulted status never
    reached the handler, a time-out after apply did), per contact email."""
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in state.requests_log():
        if not 200 <= entry.get("status", 0) < 300:
            continue
        body = entry.get("json") or {}
        email = None
        if entry["method"] == "POST" and entry["path"] == HUBSPOT_CONTACTS:
            email = (body.get("properties") or {}).get("email")
        elif entry["method"] == "PATCH" and entry["path"].startswith(HUBSPOT_CONTACTS + "/"):
            email = entry["path"].rsplit("/", 1)[1]
        elif entry["method"] == "POST" and entry["path"] == GHL_UPSERT:
            email = body.get("email")
        if email:
            out.setdefault(str(email).lower(), []).append(entry)
    return out


def last_request_seq(state) -> int:
    with state.lock:
        return state.requests[-1]["seq"] if state.requests else 0


def last_smtp_seq(state) -> int:
    with state.lock:
        return state.smtp_log[-1]["seq"] if state.smtp_log else 0


def applied_then_stalled(state, after_seq: int) -> list[str]:
    """Contact emails of CRM writes logged after ``after_seq`` that the sandbox applied and now
    holds the answer to (a time-out after apply): their worker is waiting for it right now."""
    with state.lock:
        found = []
        for entry in reversed(state.requests):
            if entry["seq"] <= after_seq:
                break
            if entry.get("fault") == "timeout_after_apply":
                body = entry.get("json") or {}
                found.append(str(body.get("email") or (body.get("properties") or {}).get("email")))
        return found


def crm_contacts_by_email(state) -> Counter:
    with state.lock:
        emails = [c["properties"].get("email") for c in state.hubspot_contacts.values()]
        emails += [c.get("email") for c in state.ghl_contacts.values()]
    return Counter(str(e).lower() for e in emails if e)
