"""The Celery app: tenant-aware (tenant-schemas-celery), Redis broker, settings from Django."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mh1.settings")

app = CeleryApp("mh1")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
