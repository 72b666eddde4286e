from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """Vendor clients, credentials, suppression list, webhooks and executors."""

    name = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        from connectors import checks, executors  # noqa: F401 (checks register themselves)

        executors.register_all()
