"""Domain errors of tenant management, each with a message a person can act on."""


class TenantError(Exception):
    code = "tenant_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TenantSlugInvalid(TenantError):
    code = "tenant_slug_invalid"


class TenantAlreadyExists(TenantError):
    code = "tenant_exists"


class TenantProvisioningFailed(TenantError):
    code = "tenant_provisioning_failed"
