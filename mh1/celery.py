"""The Celery app: tenant-aware (tenant-schemas-celery), Redis broker, settings from Django."""

import os

from celery import signals
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mh1.settings")

app = CeleryApp("mh1")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_development_secret(**kwargs) -> None:
    from mh1.guards import require_production_secret

    require_production_secret()
