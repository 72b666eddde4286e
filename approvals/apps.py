from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Action requests and the approval queue."""

    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import audit  # noqa: F401
