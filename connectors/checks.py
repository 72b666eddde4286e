"""System checks for connector settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register


@register()
def smtp_backend_knows_its_phase(app_configs=None, **kwargs):
    """Django's plain SMTP backend cannot tell an error before DATA (safe to retry) from one after
    (the message may have left): every such error would become an unknown outcome."""
    if settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":
        return [
            Warning(
                "EMAIL_BACKEND is Django's plain SMTP backend.",
                hint="Use connectors.mail.SMTPBackend: it tells refusals before DATA (retried) from "
                "errors after DATA (outcome unknown, never resent).",
                id="connectors.W001",
            )
        ]
    return []
