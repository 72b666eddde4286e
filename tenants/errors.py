"""Domain errors of tenant management, each with a message a person can act on."""

from mh1.errors import DomainError


class TenantError(DomainError):
    code = "tenant_error"
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)


class TenantSlugInvalid(TenantError):
    code = "tenant_slug_invalid"


class TenantAlreadyExists(TenantError):
    code = "tenant_exists"


class TenantProvisioningFailed(TenantError):
    code = "tenant_provisioning_failed"
