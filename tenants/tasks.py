"""Platform tasks: the one dispatcher that fans a job out to every active tenant."""

from __future__ import annotations

import logging

from mh1.celery import app
from mh1.tenancy import fan_out

logger = logging.getLogger(__name__)


@app.task(name="platform.dispatch_to_tenants", ignore_result=False)
def dispatch_to_tenants(task_name: str, *args, **kwargs) -> list[str]:
    """Beat's one entry per job: enqueue ``task_name(schema, ...)`` for each active tenant."""
    task = app.tasks.get(task_name)
    if task is None:
        logger.error("dispatch_to_tenants: no task named %r; nothing enqueued", task_name)
        return []
    schemas = fan_out(task, *args, **kwargs)
    logger.info("dispatch_to_tenants: %s → %d tenants", task_name, len(schemas))
    return schemas
