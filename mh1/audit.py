"""Audit attribution across schemas.

Users live in their own schema: a platform operator (public) who changes rows inside a tenant
schema must not be written as the tenant's ``actor_id`` (that id names another person there, or
nobody). Such entries carry the operator's address in ``actor_email`` and no foreign key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from auditlog.context import auditlog_value, set_extra_data
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django_tenants.utils import tenant_context


@contextlib.contextmanager
def platform_actor(user: AbstractBaseUser | None) -> Iterator[None]:
    """Attribute audit entries written inside this block to a platform user, by email only."""
    outer = auditlog_value.get(None)
    label = f"{getattr(user, 'email', '') or getattr(user, 'username', '')} (platform)" if user else "system"
    extra = {"actor": None, "actor_email": label[:254]}
    if outer and outer.get("remote_addr"):
        extra["remote_addr"] = outer["remote_addr"]
    try:
        with set_extra_data(extra):
            yield
    finally:
        # auditlog's context managers do not restore the outer context: do it here.
        if outer is not None:
            auditlog_value.set(outer)


@contextlib.contextmanager
def in_tenant_as_platform(tenant, user: AbstractBaseUser | None) -> Iterator[None]:
    """Work inside ``tenant``'s schema on behalf of a platform (public-schema) user."""
    with tenant_context(tenant), platform_actor(user):
        yield
    connection.set_schema_to_public()
