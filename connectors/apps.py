from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """Vendor clients, credentials, suppression list, webhooks and executors."""

    name = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        from approvals import registry
        from connectors import executors
        from connectors.services import suppression_gate

        registry.register_gate(suppression_gate)
        executors.register_all()
