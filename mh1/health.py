"""/healthz: database, Redis and at least one Celery worker; 200 or 503 naming what failed.

Anyone may ask (load balancers do, without a login), so an anonymous answer names the failing part
only: exception text can carry hosts, URLs with passwords or SQL. Tenant admins and platform
operators, logged in, get the exception class and message too.
"""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mh1.celery import app

# Long enough for a busy worker on two cores to answer, short enough for a load balancer.
CELERY_PING_TIMEOUT_SECONDS = 1.0


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _redis() -> str:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _celery() -> str:
    replies = app.control.ping(timeout=CELERY_PING_TIMEOUT_SECONDS)
    if not replies:
        raise RuntimeError("no Celery worker answered")
    return f"ok ({len(replies)} worker{'s' if len(replies) != 1 else ''})"


CHECKS = {"database": _database, "redis": _redis, "celery": _celery}


def _shows_detail(request) -> bool:
    from tenants.roles import Role
    from tenants.services import user_role

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user_role(user) in (Role.TENANT_ADMIN, Role.PLATFORM_OPERATOR)


@never_cache
@require_GET
def healthz(request):
    results: dict[str, str] = {}
    failing: list[str] = []
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # noqa: BLE001 - a health check reports every failure
            results[name] = f"fail: {exc.__class__.__name__}: {exc}"[:300]
            failing.append(name)
    if failing and not _shows_detail(request):
        results = {name: "fail" if name in failing else result for name, result in results.items()}
    body = {
        "status": "ok" if not failing else "fail",
        "failing": failing,
        "checks": results,
        "schema": connection.schema_name,
    }
    return JsonResponse(body, status=503 if failing else 200)
