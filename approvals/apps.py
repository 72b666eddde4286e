from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Action requests and the approval queue (issue 4)."""

    name = "approvals"
