"""GET /api/v1/ on a tenant host: what the API offers, name → absolute URL (like DRF's API root)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

# name shown → URL name. Collections and singletons a person reads or changes; webhooks are
# for vendors (each with its own secret) and are not listed.
ENDPOINTS = {
    "me": "api-me",
    "policy-rollout": "api-policy-rollout",
    "policy-icp": "api-policy-icp",
    "policy-quotas": "api-policy-quotas",
    "policy-sending": "api-policy-sending",
    "heartbeats": "api-heartbeats",
    "approval-requests": "api-approvals-request-list",
    "skills": "api-skills",
    "skill-runs": "api-skills-run-list",
    "schema": "api-schema",
    "docs": "api-docs",
    "redoc": "api-redoc",
}


class ApiRootView(APIView):
    """The API's endpoints by name, each an absolute URL on the host asked."""

    permission_classes = (IsAuthenticated,)

    @extend_schema(
        operation_id="api_root",
        tags=["api"],
        responses={200: {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}}},
    )
    def get(self, request, format=None):
        return Response({name: reverse(url_name, request=request) for name, url_name in ENDPOINTS.items()})
