"""Benchmark: how soon a task whose worker died mid-task runs again, Redis broker vs RabbitMQ.

For each broker, two real workers (``celery -A mh1 worker --concurrency 1 --pool prefork``) consume
one queue. A task with ``acks_late`` and ``reject_on_worker_lost`` (``bench.redelivery.hold``,
defined below and loaded by the workers with ``--include bench.broker_redelivery``) records its
start and stalls the first time; the worker that runs it is SIGKILLed mid-task, and the time until
a process starts it again is measured from the kill. Two ways of dying:

- ``worker``: the whole worker (main process and pool) is killed, as when its host or container
  dies or the OOM killer takes the main process. Nobody is left to reject the message: Redis
  returns it when another worker's restore scan finds it older than ``visibility_timeout``;
  RabbitMQ requeues it as soon as the dead consumer's connection closes.
- ``child``: only the pool process running the task is killed; the worker's main process rejects
  the message with requeue (``reject_on_worker_lost``) on either broker.

Redis runs against a ``redis-server`` of the script's own on a free port (no persistence), with a
short ``visibility_timeout`` (``--visibility-timeout``, scan every ``--restore-interval`` s) so the
run takes seconds: the delay follows the setting, and the script prints what the project's own
setting (``CELERY_VISIBILITY_TIMEOUT``, default 3 600 s) means. RabbitMQ is ``--amqp-url`` (the
machine's, guest/guest), on a queue of the run's own, deleted at the end.

Run by hand (not part of `make test`); the task touches no database, the workers only load Django:

    .venv/bin/python bench/broker_redelivery.py                    # --runs 3
    .venv/bin/python bench/broker_redelivery.py --brokers amqp --kill worker --runs 5

Workers are stopped at the end, also on errors and Ctrl-C; their logs are kept in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script; harmless in the workers, which import bench.*

from mh1.celery import app  # noqa: E402

TASK = "bench.redelivery.hold"
STALL = 60.0  # seconds the first delivery stalls: far longer than any redelivery measured here
KILL_AFTER = 0.3  # seconds into the task: "mid-task"


@app.task(name=TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def hold(record: str) -> None:
    """Append ``pid time`` to ``record``; stall the first time (the worker is killed then).

    Sent from public and touching no table, it needs no tenant (and no database query).
    """
    path = Path(record)
    first = not path.exists()
    with path.open("a") as out:
        out.write(f"{os.getpid()} {time.time():.6f}\n")
    if first:
        time.sleep(STALL)


# --- processes --------------------------------------------------------------------------------


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


class Worker:
    """A ``celery -A mh1 worker`` subprocess in its own process group, logging to a file."""

    def __init__(self, name: str, queue: str, env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [sys.executable, "-m", "celery", "-A", "mh1", "worker", "-Q", queue, "--concurrency", "1",
                 "--pool", "prefork", "--include", "bench.broker_redelivery", "-l", "INFO",
                 "-n", f"{name}@%h", "--without-mingle", "--without-gossip"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise SystemExit(f"worker {self.name} exited:\n{self.log.read_text()[-3000:]}")
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise SystemExit(f"worker {self.name} not ready within {timeout:.0f} s")

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def parent_of(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ")"
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def records(path: Path) -> list[tuple[int, float]]:
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(int(pid), float(at)) for pid, at in lines]


def wait_records(path: Path, count: int, timeout: float) -> list[tuple[int, float]] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = records(path)
        if len(found) >= count:
            return found
        time.sleep(0.01)
    return None


# --- one broker -------------------------------------------------------------------------------


def measure_broker(label: str, url: str, args, env: dict[str, str], folder: Path) -> list[dict]:
    queue = f"bench-redelivery-{os.getpid()}-{label}"
    env = {**env, "CELERY_BROKER_URL": url}
    results: list[dict] = []
    workers: list[Worker] = []
    serial = 0

    def new_worker() -> Worker:
        nonlocal serial
        serial += 1
        return Worker(f"redeliver-{label}-{serial}", queue, env, folder)

    try:
        workers = [new_worker(), new_worker()]
        for worker in workers:
            worker.wait_ready()
        for mode in args.kill:
            for run in range(1, args.runs + 1):
                record = folder / f"{label}-{mode}-{run}.rec"
                with app.connection_for_write(url) as conn:
                    app.send_task(TASK, args=(str(record),), queue=queue, connection=conn)
                first = wait_records(record, 1, timeout=30)
                if first is None:
                    raise SystemExit(f"{label}: no worker started the task within 30 s")
                child, delivered_at = first[0]
                time.sleep(KILL_AFTER)
                owner = next(w for w in workers if w.pid == parent_of(child))
                killed_at = time.time()
                if mode == "worker":
                    owner.kill()
                else:
                    os.kill(child, signal.SIGKILL)
                again = wait_records(record, 2, timeout=args.timeout)
                row = {"broker": label, "kill": mode, "run": run}
                if again is None:
                    row.update(after_kill=None, after_delivery=None, by="nobody")
                else:
                    pid, at = again[1]
                    runner = (w.name for w in workers if w.alive() and w.pid == parent_of(pid))
                    by = next(runner, f"pid {pid}")
                    row.update(after_kill=at - killed_at, after_delivery=at - delivered_at, by=by)
                results.append(row)
                print(
                    f"  {label:5} kill {mode:6} run {run}: "
                    + (
                        f"ran again {row['after_kill']:7.3f} s after the kill "
                        f"({row['after_delivery']:7.3f} s after first delivery), by {row['by']}"
                        if row["after_kill"] is not None
                        else f"not run again within {args.timeout:.0f} s"
                    ),
                    flush=True,
                )
                if mode == "worker":  # bring the pool back to two workers for the next run
                    workers.remove(owner)
                    replacement = new_worker()
                    workers.append(replacement)
                    replacement.wait_ready()
                # let the second run of the task (it does not stall) finish and be acked
                time.sleep(0.5)
    finally:
        for worker in workers:
            worker.stop()
        with suppress(Exception), app.connection_for_write(url) as conn:
            conn.default_channel.queue_delete(queue)
    return results


def summarise(results: list[dict]) -> None:
    print("\nmedian seconds from the SIGKILL until another process started the task again")
    print(f"{'broker':8}{'kill':8}{'runs':>5}{'median':>10}{'min':>9}{'max':>9}")
    for broker in dict.fromkeys(r["broker"] for r in results):
        for mode in dict.fromkeys(r["kill"] for r in results):
            rows = [r for r in results if r["broker"] == broker and r["kill"] == mode]
            times = [r["after_kill"] for r in rows if r["after_kill"] is not None]
            lost = len(rows) - len(times)
            if not rows:
                continue
            if not times:
                print(f"{broker:8}{mode:8}{len(rows):>5}   never (within the time-out)")
                continue
            print(
                f"{broker:8}{mode:8}{len(rows):>5}{statistics.median(times):>10.3f}"
                f"{min(times):>9.3f}{max(times):>9.3f}" + (f"   ({lost} never)" if lost else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brokers", default="redis,amqp", help="comma-separated: redis, amqp")
    parser.add_argument("--kill", default="worker,child", help="comma-separated: worker, child")
    parser.add_argument("--runs", type=int, default=3, help="kills per broker and way of dying")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--visibility-timeout", type=int, default=10, help="Redis, seconds")
    parser.add_argument("--restore-interval", type=int, default=1, help="Redis restore scan, seconds")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for a redelivery")
    args = parser.parse_args()
    args.kill = [mode.strip() for mode in args.kill.split(",") if mode.strip()]
    brokers = [name.strip() for name in args.brokers.split(",") if name.strip()]
    if args.timeout is None:
        args.timeout = args.visibility_timeout + 10 * args.restore_interval + 20

    from _common import setup_django

    setup_django()
    from django.conf import settings

    folder = Path(tempfile.mkdtemp(prefix="mh1-bench-redelivery-"))
    redis_server, redis_url = start_redis(folder)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mh1.settings",
        "SECRET_KEY": os.environ["SECRET_KEY"],  # set by setup_django() unless given
        "REDIS_URL": redis_url,  # result backend and cache: the script's own Redis, both brokers
        "CELERY_RESULT_BACKEND": redis_url,
        "CELERY_VISIBILITY_TIMEOUT": str(args.visibility_timeout),
        "CELERY_UNACKED_RESTORE_INTERVAL": str(args.restore_interval),
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
    }
    print(
        f"two workers per broker, each --concurrency 1 --pool prefork; the task is killed "
        f"{KILL_AFTER} s into its run; logs in {folder}"
    )
    print(
        f"Redis: own redis-server, visibility_timeout {args.visibility_timeout} s, restore scan "
        f"every {args.restore_interval} s; RabbitMQ: {args.amqp_url.split('@')[-1]}"
    )
    results: list[dict] = []
    try:
        for broker in brokers:
            url = {"redis": redis_url, "amqp": args.amqp_url}[broker]
            results += measure_broker(broker, url, args, env, folder)
    finally:
        redis_server.terminate()
        redis_server.wait(timeout=10)
    summarise(results)
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    scan = options["unacked_restore_interval"] * options["unacked_restore_throttle"]
    print(
        f"\nThe project's Redis setting here: visibility_timeout {options['visibility_timeout']} s, a "
        f"restore scan every {scan} s: a dead worker's task runs again "
        f"{options['visibility_timeout']} to {options['visibility_timeout'] + scan} s after it was delivered."
    )


if __name__ == "__main__":
    main()
