from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "tenants.policy"
    label = "policy"
    verbose_name = "Tenant policy"

    def ready(self) -> None:
        from tenants.policy import audit  # noqa: F401
