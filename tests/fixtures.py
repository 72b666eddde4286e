"""Shared fixtures: tenants created once per session, clients per tenant host, a real worker.

The recipe is ../shared/TESTING.md: tenants are made once (cloned from the template schema), each
test starts in public, and transactional tests end inside the ``worker`` tenant so pytest-django's
flush never truncates public's tenant and domain rows (pitfall 9).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from tenants.models import Tenant
from tenants.roles import Role
from tenants.services import access_grant, public_tenant_ensure, tenant_create

PASSWORD = "correct-horse-battery"
# alpha and bravo: the two tenants of isolation tests; worker: where transactional tests end;
# dormant: an inactive tenant that scheduled work must skip.
TEST_TENANTS = {"alpha": True, "bravo": True, "worker": True, "dormant": False}


def _ensure_tenants() -> dict[str, Tenant]:
    connection.set_schema_to_public()
    public_tenant_ensure()
    tenants = {}
    for slug, active in TEST_TENANTS.items():
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            tenant = tenant_create(
                acting_user=None,
                name=slug.capitalize(),
                slug=slug,
                admin_email=f"admin@{slug}.test",
                admin_password=PASSWORD,
            ).tenant
        if tenant.is_active != active:
            Tenant.objects.filter(pk=tenant.pk).update(is_active=active)
            tenant.refresh_from_db()
        tenants[slug] = tenant
    return tenants


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        # pytest-django migrated public (django-tenants' migrate); add the template and tenants.
        call_command("migrate_console", verbosity=0)
        _ensure_tenants()
        connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _start_in_public():
    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _empty_cache():
    """Tenants are created again with the same schema names test after test: a value one test
    cached (the home chart's closed days) must not show in the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_vendor_quota():
    """Each test starts with every vendor's full rate-limit quota: the windows live in the tests'
    Redis and would otherwise carry one test's calls into the next (a test then waits or fails
    on 'local rate limit reached' depending on what ran before it)."""
    from connectors.http import reset_rate_limits

    reset_rate_limits()


@pytest.fixture
def tenants(db) -> dict[str, Tenant]:
    connection.set_schema_to_public()
    return {t.slug: t for t in Tenant.objects.filter(slug__in=TEST_TENANTS)}


@pytest.fixture
def alpha(tenants) -> Tenant:
    return tenants["alpha"]


@pytest.fixture
def bravo(tenants) -> Tenant:
    return tenants["bravo"]


@pytest.fixture
def make_user():
    """A login with ``role`` in ``tenant`` (created through the access-grant service)."""

    def make(tenant: Tenant, role: Role, email: str | None = None) -> User:
        email = email or f"{role.value}@{tenant.slug}.test"
        access_grant(acting_user=None, email=email, tenants=[tenant], role=role, password=PASSWORD)
        with tenant_context(tenant):
            user = User.objects.get(username=email)
        connection.set_schema_to_public()
        return user

    return make


def host_of(tenant: Tenant) -> str:
    return "localhost" if tenant.is_public else f"{tenant.slug}.localhost"


@pytest.fixture
def client_for():
    """A test client on the tenant's host, logged in as ``user`` (or anonymous)."""

    def make(tenant: Tenant, user: User | None = None) -> Client:
        client = Client(HTTP_HOST=host_of(tenant))
        if user is not None:
            # The session row is written in the tenant's own schema, as a real login would.
            with tenant_context(tenant):
                client.force_login(user)
            connection.set_schema_to_public()
        return client

    return make


# The in-process workers of this session: a test that runs worker subprocesses of its own (the
# fault suite) pauses them, or they would take its tasks and run them with the tests' settings.
SESSION_WORKERS: list = []


@contextlib.contextmanager
def session_workers_paused() -> Iterator[None]:
    """Stop this session's in-process workers from consuming, for the duration."""
    queues = ("default", "effects")
    paused = list(SESSION_WORKERS)
    for worker in paused:
        for queue in queues:
            worker.consumer.cancel_task_queue(queue)
    try:
        yield
    finally:
        for worker in paused:
            for queue in queues:
                worker.consumer.add_task_queue(queue)


@pytest.fixture(scope="session")
def celery_worker_session(django_db_blocker) -> Iterator[object]:
    """A real Celery worker (threads) on the tests' own Redis database."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from mh1.celery import app

    def close_thread_connections(**_):
        # each pool thread's connection to the test database is closed when its task ends: left
        # open (CONN_MAX_AGE), the threads' sessions outlived the suite and PostgreSQL refused to
        # drop the test database ("being accessed by other users")
        connections.close_all()

    task_postrun.connect(close_thread_connections, weak=False)
    app.control.purge()
    with (
        django_db_blocker.unblock(),
        start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            loglevel="WARNING",
            queues=["default", "effects"],
        ) as worker,
    ):
        SESSION_WORKERS.append(worker)
        try:
            yield worker
        finally:
            SESSION_WORKERS.remove(worker)
            task_postrun.disconnect(close_thread_connections)


@pytest.fixture
def celery_worker(transactional_db, celery_worker_session):
    """Use with transactional tests only: the worker sees committed rows only."""
    yield celery_worker_session
    # End in the worker tenant so the flush after this test truncates only its tables.
    connection.set_schema_to_public()
    connection.set_tenant(Tenant.objects.get(slug="worker"))
