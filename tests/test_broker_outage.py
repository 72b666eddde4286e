"""Brokers under real workers: a Redis restart (pitfall 14), and RabbitMQ as the broker.

The restart test starts its own ``redis-server`` (no persistence) and a ``celery -A mh1 worker``
subprocess against it, holds one ``acks_late`` task unacked while the worker waits in BRPOP for
more (the state in which kombu 5.7.0 raised ``AttributeError`` and the worker exited), restarts that
Redis, and checks the worker is still running and executes a tenant task enqueued after the
restart. The amqp test runs the project's worker against the machine's RabbitMQ (README "Broker").
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection
from django_tenants.utils import schema_context

from mh1.celery import app

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[1]
QUEUE = "broker-outage"


@app.task(name="tests.broker_outage.hold", acks_late=True, ignore_result=True)
def hold(started: str, release: str, limit: float) -> None:
    """Stay unacked until the test releases it (loaded by the test's worker with --include)."""
    Path(started).write_text(str(os.getpid()))
    deadline = time.monotonic() + limit
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server of the test's own on a free port, without persistence: a restart empties it."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        assert _wait(lambda: self._answers(client), timeout=5), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker_tenant(transactional_db):
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug="worker")
    # Transactional: end inside the tenant so the flush spares public's rows (pitfall 9).
    connection.set_tenant(tenant)
    return tenant


def _start_worker(broker_url: str, log: Path, *, queue: str = QUEUE) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TEST_REDIS_URL": broker_url,
    }
    if not broker_url.startswith("redis"):
        # tests.settings puts broker and results on TEST_REDIS_URL; the project's own settings
        # take the broker from CELERY_BROKER_URL (DEBUG only lets them load with the dev key)
        redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
        env.update(
            DJANGO_SETTINGS_MODULE="mh1.settings",
            DEBUG="1",
            CELERY_BROKER_URL=broker_url,
            TEST_REDIS_URL=redis_url,
            REDIS_URL=redis_url,
            CELERY_RESULT_BACKEND=redis_url,
        )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mh1", "worker", "-Q", queue,
             "--concurrency", "2", "--pool", "prefork", "--include", "tests.test_broker_outage",
             "-l", "INFO", "-n", f"outage-{time.monotonic_ns()}@%h",
             "--without-mingle", "--without-gossip", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def _heartbeats(task_id: str) -> int:
    from tenants.policy.models import Heartbeat

    with schema_context("worker"):
        return Heartbeat.objects.filter(task_id=task_id).count()


def test_worker_survives_redis_restart_and_runs_tasks_enqueued_after(worker_tenant, own_redis, tmp_path):
    from tenants.policy.tasks import heartbeat

    started, release, log = tmp_path / "started", tmp_path / "release", tmp_path / "worker.log"
    worker = _start_worker(own_redis.url, log)
    try:
        # given: a worker running one acks_late task, waiting in BRPOP with its second slot
        with app.connection_for_write(own_redis.url) as conn:
            hold.apply_async(args=(str(started), str(release), 30.0), queue=QUEUE, connection=conn)
        assert _wait(started.exists, timeout=20), f"the worker never ran the task:\n{log.read_text()}"
        assert own_redis.client().hlen("unacked") == 1

        # when: Redis restarts under it (empty: no persistence)
        own_redis.restart()
        with app.connection_for_write(own_redis.url) as conn:
            result = heartbeat.apply_async(args=(worker_tenant.schema_name,), queue=QUEUE, connection=conn)

        # then: the same worker process reconnects and runs the task enqueued after the restart
        assert _wait(lambda: _heartbeats(result.id) == 1, timeout=15), (
            f"no heartbeat after the restart (worker exit code {worker.poll()}):\n{log.read_text()}"
        )
        assert worker.poll() is None, log.read_text()
        release.touch()
        assert "Unrecoverable error" not in log.read_text()
    finally:
        release.touch()
        _stop(worker)


AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _amqp_answers() -> bool:
    from kombu import Connection
    from kombu.exceptions import OperationalError

    try:
        with Connection(AMQP_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except (OSError, OperationalError):
        return False


def test_project_runs_on_a_rabbitmq_broker(worker_tenant, tmp_path):
    from tenants.policy.tasks import heartbeat

    if not _amqp_answers():
        pytest.skip(f"no RabbitMQ at {AMQP_URL.rsplit('@', 1)[-1]}")
    queue, log = f"broker-amqp-{os.getpid()}", tmp_path / "worker.log"
    worker = _start_worker(AMQP_URL, log, queue=queue)
    try:
        # when: a tenant task is enqueued through RabbitMQ (the Redis-only transport options set)
        with app.connection_for_write(AMQP_URL) as conn:
            result = heartbeat.apply_async(args=(worker_tenant.schema_name,), queue=queue, connection=conn)

        # then: the project's worker on amqp:// runs it inside the tenant
        assert _wait(lambda: _heartbeats(result.id) == 1, timeout=30), (
            f"no heartbeat through RabbitMQ (worker exit code {worker.poll()}):\n{log.read_text()}"
        )
        assert "transport:   amqp://" in log.read_text()
    finally:
        _stop(worker)
        with app.connection_for_write(AMQP_URL) as conn:
            conn.default_channel.queue_delete(queue)
