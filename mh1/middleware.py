"""Request middleware: tenant resolution that refuses inactive tenants, correlation ids."""

from __future__ import annotations

import re

from django.http import Http404
from django.utils import timezone
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name

from mh1.context import correlation_id, new_correlation_id

CORRELATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ActiveTenantMiddleware(TenantMainMiddleware):
    """Select the schema from the host; unknown and deactivated tenants answer 404."""

    def get_tenant(self, domain_model, hostname):
        tenant = super().get_tenant(domain_model, hostname)
        if tenant.schema_name != get_public_schema_name() and not tenant.is_active:
            # Same answer as an unknown host: a deactivated tenant does not reveal it exists.
            raise domain_model.DoesNotExist
        return tenant

    def no_tenant_found(self, request, hostname):
        raise Http404("Unknown host.")

    def process_request(self, request):
        """A tenant's pages show times in the tenant's zone (forms read them in it too); the
        operator's public host, which shows every tenant, stays in UTC."""
        timezone.deactivate()  # nothing left over from the thread's previous request
        response = super().process_request(request)
        tenant = getattr(request, "tenant", None)
        if response is None and tenant is not None and not tenant.is_public:
            timezone.activate(tenant.time_zone)
        return response

    def process_response(self, request, response):
        timezone.deactivate()
        return response


class CorrelationIdMiddleware:
    """Take X-Correlation-ID from the caller (or make one) and echo it on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Correlation-ID", "")
        value = incoming if CORRELATION_ID_PATTERN.match(incoming) else new_correlation_id()
        token = correlation_id.set(value)
        try:
            response = self.get_response(request)
        finally:
            correlation_id.reset(token)
        response["X-Correlation-ID"] = value
        return response
