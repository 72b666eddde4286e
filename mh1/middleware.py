"""Request middleware: tenant resolution that refuses inactive tenants, correlation ids."""

from __future__ import annotations

import re

from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import Http404, HttpResponseNotFound
from django.utils import timezone
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name, get_tenant_domain_model

from mh1.context import correlation_id, new_correlation_id

CORRELATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# The host's tenant and that tenant's primary host, in one statement. The tables are named with
# their schema, so it reads the same whatever search path the connection was left with by its last
# request: no "SET search_path = public" before it (django-tenants' middleware sets it, looks the
# host up, then sets the tenant's: three statements on every request, now two).
_TENANT_BY_HOST_SQL = """
SELECT t.*, (SELECT p.domain FROM {public}.tenants_domain p
              WHERE p.tenant_id = t.id AND p.is_primary ORDER BY p.id LIMIT 1) AS primary_domain_name
  FROM {public}.tenants_domain d JOIN {public}.tenants_tenant t ON t.id = d.tenant_id
 WHERE d.domain = %s
"""


class ActiveTenantMiddleware(TenantMainMiddleware):
    """Select the schema from the host; unknown and deactivated tenants answer 404."""

    def get_tenant(self, domain_model, hostname):
        tenant_model = domain_model._meta.get_field("tenant").related_model
        public = connection.ops.quote_name(get_public_schema_name())
        found = list(tenant_model.objects.raw(_TENANT_BY_HOST_SQL.format(public=public), [hostname]))
        if not found:
            raise domain_model.DoesNotExist
        tenant = found[0]
        if tenant.schema_name != get_public_schema_name() and not tenant.is_active:
            # Same answer as an unknown host: a deactivated tenant does not reveal it exists.
            raise domain_model.DoesNotExist
        return tenant

    def no_tenant_found(self, request, hostname):
        raise Http404("Unknown host.")

    def process_request(self, request):
        """The tenant of the host (django-tenants' steps, without first switching the connection
        to the public schema: ``get_tenant`` names it). A tenant's pages show times in the tenant's
        zone (forms read them in it too); the operator's public host, which shows every tenant,
        stays in UTC."""
        timezone.deactivate()  # nothing left over from the thread's previous request
        try:
            hostname = self.hostname_from_request(request)
        except DisallowedHost:
            return HttpResponseNotFound()
        domain_model = get_tenant_domain_model()
        try:
            tenant = self.get_tenant(domain_model, hostname)
        except domain_model.DoesNotExist:
            connection.set_schema_to_public()
            return self.no_tenant_found(request, hostname)
        tenant.domain_url = hostname
        request.tenant = tenant
        connection.set_tenant(tenant)
        self.setup_url_routing(request)
        if not tenant.is_public:
            timezone.activate(tenant.time_zone)
        return None

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
