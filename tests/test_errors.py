"""Domain errors share one base (mh1.errors.DomainError) that the API error handler knows: every
domain error answers JSON with its code and message, and ``mh1`` imports no feature app's errors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from approvals import errors as approval_errors
from approvals.gates import ProposalRefused
from campaigns.mapping import MappingError
from connectors import errors as connector_errors
from connectors.services import SuppressionLiftRefused
from mh1.addresses import AddressInvalid
from tenants import errors as tenant_errors

# name → code, as the API has always answered them (names and codes are a contract).
DOMAIN_ERRORS = {
    approval_errors.ApprovalError: "approval_error",
    approval_errors.UnknownActionKind: "unknown_kind",
    approval_errors.PayloadInvalid: "payload_invalid",
    approval_errors.RequestNotFound: "not_found",
    approval_errors.IllegalTransition: "illegal_transition",
    approval_errors.ReasonRequired: "reason_required",
    approval_errors.NotAllowed: "not_allowed",
    ProposalRefused: "proposal_refused",
    connector_errors.ConnectorError: "vendor_error",
    connector_errors.RetryableError: "vendor_retryable",
    connector_errors.FatalError: "vendor_fatal",
    connector_errors.VendorValidationError: "vendor_validation",
    connector_errors.OutcomeUnknownError: "outcome_unknown",
    connector_errors.CircuitOpenError: "vendor_circuit_open",
    connector_errors.RateLimitedLocally: "vendor_rate_limited_locally",
    tenant_errors.TenantError: "tenant_error",
    tenant_errors.TenantSlugInvalid: "tenant_slug_invalid",
    tenant_errors.TenantAlreadyExists: "tenant_exists",
    tenant_errors.TenantProvisioningFailed: "tenant_provisioning_failed",
    AddressInvalid: "address_invalid",
    SuppressionLiftRefused: "suppression_lift_refused",
    MappingError: "mapping_error",
}


@pytest.mark.parametrize("error_class", list(DOMAIN_ERRORS), ids=lambda c: c.__name__)
def test_every_domain_error_shares_the_base_and_keeps_its_code(error_class):
    from mh1.errors import DomainError

    assert issubclass(error_class, DomainError)
    assert error_class.code == DOMAIN_ERRORS[error_class]


def test_mh1_imports_no_feature_apps_errors():
    feature_apps = {"approvals", "connectors", "tenants", "campaigns", "evaluation", "skills"}
    offenders = []
    for path in Path(settings.BASE_DIR, "mh1").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] in feature_apps and "errors" in parts:
                    offenders.append(f"{path.name}: from {node.module}")
                if parts[0] in feature_apps and any(a.name.endswith("Error") for a in node.names):
                    offenders.append(f"{path.name}: {', '.join(a.name for a in node.names)}")
    assert offenders == []


def _raise(error: Exception):
    class Failing(APIView):
        authentication_classes = ()
        permission_classes = ()

        def get(self, request):
            raise error

    return Failing.as_view()(APIRequestFactory().get("/api/v1/anything/"))


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (approval_errors.IllegalTransition("Already approved."), 409, "illegal_transition"),
        (approval_errors.NotAllowed("Four eyes: not your own request."), 403, "not_allowed"),
        (ProposalRefused("The recipient is suppressed.", codes=["suppressed"]), 422, "proposal_refused"),
        (tenant_errors.TenantSlugInvalid("Use lower-case letters."), 400, "tenant_slug_invalid"),
        (AddressInvalid("'x' is not an email address."), 400, "address_invalid"),
        (SuppressionLiftRefused("An erasure is never lifted."), 400, "suppression_lift_refused"),
        # a vendor's 500 is the vendor's answer, not ours: the API says the upstream failed
        (connector_errors.FatalError("hubspot", "boom", status_code=500), 502, "vendor_fatal"),
    ],
)
def test_api_handler_answers_every_domain_error_with_its_code_and_message(error, status, code):
    response = _raise(error)

    assert response.status_code == status
    assert response.data == {"code": code, "detail": error.message}


def test_a_new_apps_error_needs_no_change_in_mh1():
    from mh1.errors import DomainError

    class QuotaSpent(DomainError):
        code = "quota_spent"
        status_code = 429

    response = _raise(QuotaSpent("This month's token budget is spent."))

    assert response.status_code == 429
    assert response.data == {"code": "quota_spent", "detail": "This month's token budget is spent."}
