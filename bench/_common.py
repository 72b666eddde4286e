"""Set-up shared by the benchmark scripts: Django in this process, a bench tenant, a login, and
real worker processes (start, ping, stop).

Nothing here imports Django at module level: the scripts import this before ``setup_django()``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mh1.settings")
    # DEBUG is switched off for measurements; the start-up guards refuse the dev key then.
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789abcdef")
    # Payloads and credentials are encrypted at rest; a bench database holds only bench rows. Set
    # here, before the workers start, so that they inherit the same key.
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "bWgxLWJlbmNoLW9ubHktZmVybmV0LWtleS0wMDAwMDA=")
    import django

    django.setup()


def bench_tenant(slug: str, name: str, *, assisted: bool = True):
    """The bench's tenant, created on first use; in assisted phase with its kill switch off."""
    from django.db import connection
    from django_tenants.utils import tenant_context

    from tenants.models import Tenant
    from tenants.policy.models import RolloutPhase, RolloutSettings
    from tenants.services import tenant_create

    connection.set_schema_to_public()
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        tenant = tenant_create(
            acting_user=None,
            name=name,
            slug=slug,
            admin_email=f"admin@{slug}.example",
            admin_password="bench-password",  # noqa: S106
        ).tenant
    if assisted:
        with tenant_context(tenant):
            rollout = RolloutSettings.get_solo()
            if rollout.phase != RolloutPhase.ASSISTED or rollout.kill_switch:
                rollout.phase, rollout.kill_switch, rollout.kill_switch_reason = (
                    RolloutPhase.ASSISTED,
                    False,
                    "",
                )
                rollout.save()
    return tenant


def ae_user(tenant, email: str):
    """An account executive's login in the bench tenant."""
    from django.contrib.auth.models import User
    from django_tenants.utils import tenant_context

    from tenants.roles import Role
    from tenants.services import access_grant

    access_grant(acting_user=None, email=email, tenants=[tenant], role=Role.AE)
    with tenant_context(tenant):
        return User.objects.get(username=email)


# --- real worker processes --------------------------------------------------------------------


def start_worker(
    name: str,
    log_path: Path,
    *,
    queues: Sequence[str] = ("default",),
    concurrency: int = 2,
    loglevel: str = "WARNING",
    include: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen:
    """``celery -A mh1 worker`` (prefork) as a child process with this process's environment (or
    ``env``), logging to ``log_path``, in a process group of its own so that ``stop_worker``
    stops its pool processes with it."""
    with log_path.open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mh1",
                "worker",
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "-Q",
                ",".join(queues),
                *(arg for module in include for arg in ("--include", module)),
                "-l",
                loglevel,
                "-n",
                name,
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env={**os.environ} if env is None else dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_ping(workers: Mapping[str, subprocess.Popen], timeout: float = 60.0) -> float:
    """Seconds until every worker (by its node name) answered a ping; exits when one dies first."""
    from mh1.celery import app

    started = time.monotonic()
    waiting = dict(workers)
    while waiting:
        for name, worker in list(waiting.items()):
            if worker.poll() is not None:
                raise SystemExit(f"worker {name} exited with {worker.returncode} before answering a ping")
            if app.control.ping(destination=[name], timeout=0.5):
                del waiting[name]
        if waiting and time.monotonic() - started > timeout:
            raise SystemExit(f"no ping answer within {timeout:.0f} s from {sorted(waiting)}")
    return time.monotonic() - started


def stop_worker(worker: subprocess.Popen) -> None:
    """SIGTERM to the worker's process group (a warm shutdown), SIGKILL after 20 s."""
    if worker.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def other_workers() -> list[str]:
    """Workers already listening on this broker: they would take the bench's tasks."""
    from mh1.celery import app

    return [name for reply in app.control.ping(timeout=1.0) for name in reply]


def purge_queues(queues: Sequence[str]) -> None:
    """Drop the messages waiting in ``queues`` (tasks that set-up enqueued and nobody should run)."""
    from mh1.celery import app

    with app.connection_for_write() as conn:
        for queue in queues:
            # a queue that never existed has nothing to purge
            with contextlib.suppress(Exception):
                conn.default_channel.queue_purge(queue)
