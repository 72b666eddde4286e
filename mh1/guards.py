"""Start-up guards of the processes that serve requests or run effects."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def require_production_secret() -> None:
    if not settings.DEBUG and settings.USING_DEV_SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
