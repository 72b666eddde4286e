from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Canonical leads, the lifecycle taxonomy, field maps and CSV import."""

    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from campaigns import audit  # noqa: F401
