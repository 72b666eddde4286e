"""Tenant-bound Celery tasks and the fan-out to every active tenant.

A tenant task names its tenant: its first argument is the schema name. It runs inside that
tenant's schema, or not at all: a missing, unknown, public or inactive schema is logged and the
task is dropped (pitfall 1: a task without a tenant would otherwise run in ``public``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from django.db import connection
from django_tenants.utils import get_public_schema_name, tenant_context
from tenant_schemas_celery.task import TenantTask

from mh1.celery import app
from mh1.context import correlation_id, new_correlation_id

logger = logging.getLogger(__name__)


class TenantNotAvailable(Exception):
    """The task's tenant does not exist or is inactive."""


# schema → (tenant, read at): each worker process reads a tenant row at most this often. A
# deactivation stops the tenant's tasks within this long (its kill switch, read by the gates on
# every attempt, stops effects at once). 0: read on every task.
_TENANTS: dict[str, tuple[Any, float]] = {}


def active_tenant_for(schema_name: str | None):
    """The active tenant with this schema, or raise TenantNotAvailable."""
    import time

    from django.conf import settings

    from tenants.models import Tenant

    if not schema_name or schema_name == get_public_schema_name():
        raise TenantNotAvailable(f"no tenant schema given (got {schema_name!r})")
    ttl = getattr(settings, "TENANT_TASK_CACHE_SECONDS", 0)
    cached = _TENANTS.get(schema_name)
    if cached is not None and time.monotonic() - cached[1] < ttl:
        tenant = cached[0]
    else:
        connection.set_schema_to_public()
        tenant = Tenant.objects.filter(schema_name=schema_name).first()
        if ttl:
            _TENANTS[schema_name] = (tenant, time.monotonic())
    if tenant is None:
        raise TenantNotAvailable(f"tenant {schema_name!r} does not exist")
    if not tenant.is_active:
        raise TenantNotAvailable(f"tenant {schema_name!r} is inactive")
    return tenant


class TenantBoundTask(TenantTask):
    """Base of every task that runs for one tenant: ``task(schema_name, ...)``."""

    abstract = True

    def apply_async(self, args=None, kwargs=None, **options):
        schema_name = _schema_argument(args, kwargs)
        # Carry the schema in the header too, captured now rather than at commit (pitfall 2).
        headers = dict(options.pop("headers", None) or {})
        headers["_schema_name"] = schema_name
        headers.setdefault("correlation_id", correlation_id.get())
        return super().apply_async(args=args, kwargs=kwargs, headers=headers, **options)

    def __call__(self, *args, **kwargs):
        schema_name = _schema_argument(args, kwargs)
        try:
            tenant = active_tenant_for(schema_name)
        except TenantNotAvailable as exc:
            logger.warning("Dropped task %s (%s): %s", self.name, self.request.id, exc)
            return None
        headers = self.request.headers or {}
        token = correlation_id.set(
            headers.get("correlation_id") or self.request.get("correlation_id") or new_correlation_id()
        )
        try:
            with tenant_context(tenant):
                return super().__call__(*args, **kwargs)
        finally:
            correlation_id.reset(token)


def _schema_argument(args, kwargs) -> str | None:
    if kwargs and "schema_name" in kwargs:
        return kwargs["schema_name"]
    if args:
        return args[0]
    return None


def tenant_task(*task_args: Any, **task_options: Any) -> Callable[..., Task]:
    """Declare a task that runs for one tenant; its first parameter must be ``schema_name``."""
    task_options.setdefault("base", TenantBoundTask)
    return app.task(*task_args, **task_options)


def active_tenant_schemas() -> list[str]:
    """Schema names of every active tenant (never public, never the template)."""
    from tenants.models import Tenant

    connection.set_schema_to_public()
    return list(Tenant.objects.active().order_by("schema_name").values_list("schema_name", flat=True))


def fan_out(task: Task, *args: Any, **kwargs: Any) -> list[str]:
    """Enqueue ``task(schema_name, *args, **kwargs)`` once per active tenant; return the schemas.

    Called outside any transaction (pitfall 2): each message carries its own schema.
    """
    schemas = active_tenant_schemas()
    for schema_name in schemas:
        task.apply_async(args=(schema_name, *args), kwargs=kwargs)
    return schemas


# Longest an enqueue on a request path waits for the broker (connect and each socket operation).
ENQUEUE_BROKER_TIMEOUT = 1.0  # seconds


def enqueue_quietly(task: Task, args: tuple, *, what: str, **options: Any) -> bool:
    """Enqueue without ever failing or holding up the caller (a webhook, an approval).

    The broker may be down (pitfall 15): the enqueue gives up at once (its own connection with a
    short socket timeout, no publish retries) and logs; a sweep enqueues what was missed. No
    result is stored or awaited, so the result backend's ~20 s reconnection never runs here
    (pitfall 17). Returns whether the task was enqueued.
    """
    try:
        with app.connection_for_write(
            transport_options={
                "socket_connect_timeout": ENQUEUE_BROKER_TIMEOUT,
                "socket_timeout": ENQUEUE_BROKER_TIMEOUT,
                "max_retries": 0,
            }
        ) as broker:
            task.apply_async(args=args, connection=broker, retry=False, ignore_result=True, **options)
    except Exception:
        # whatever the broker raised, the caller's work is committed: never fail it for this
        logger.warning("could not enqueue %s; a sweep will pick it up", what, exc_info=True)
        return False
    return True
