"""The Celery app: tenant-aware (tenant-schemas-celery), Redis broker, settings from Django."""

import logging
import os

from celery import signals
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mh1.settings")

logger = logging.getLogger(__name__)


def _survive_redis_restart() -> None:
    """Keep the worker alive when Redis restarts under it (pitfall 14).

    kombu 5.7.0 (the newest release; 5.6.2 has the same code) tears a lost Redis connection down
    in an order that breaks its own channels. When the connection drops while the worker holds an
    unacked message (an ``acks_late`` task running) *and* waits in BRPOP for more, celery's
    ``on_connection_error_after_connected`` first ``collect()``s the connection, which detaches
    the transport (``transport.client = None``) but leaves the default channel open because
    draining its BRPOP raised. From then on every Redis call of that channel builds a new pool
    from ``self.connection.client`` and raises ``AttributeError``: first the channel's own
    ``QoS.restore_unacked`` when ``connection.close()`` closes it, later the running task's late
    ack. ``AttributeError`` is neither a connection nor a channel error, so nothing ignores it and
    the worker exits with "Unrecoverable error" (reproduced by tests/test_broker_outage.py).

    Two patches, both only for a channel whose connection is gone:

    - its Redis calls raise ``redis.ConnectionError``, which kombu and celery already treat as
      "the broker went away" (the late ack is logged as not acknowledged; the worker goes on);
    - its ``restore_unacked`` skips instead: there is nothing to restore *through*. The message
      stays in Redis's unacked hash (when Redis kept its data) and ``restore_visible`` puts it back
      after ``visibility_timeout``, as when kombu's own restore fails with a connection error.

    Remove them when kombu handles a detached channel: tests/test_broker_outage.py must still pass.
    """
    from kombu.transport import redis as kombu_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    channel, qos = kombu_redis.Channel, kombu_redis.QoS
    if getattr(channel._connparams, "mh1_survives_restart", False):
        return
    connparams, restore_unacked = channel._connparams, qos.restore_unacked

    def detached(chan) -> bool:
        return chan.connection is None or chan.connection.client is None

    def _connparams(self, asynchronous=False):
        if detached(self):
            raise RedisConnectionError("this channel's broker connection was closed")
        return connparams(self, asynchronous=asynchronous)

    def _restore_unacked(self, client=None):
        if client is None and detached(self.channel):
            if self._delivered:
                logger.warning(
                    "Broker connection lost: %d unacked message(s) left to the visibility time-out",
                    len(self._delivered),
                )
            self._delivered.clear()
            return None
        return restore_unacked(self, client)

    _connparams.mh1_survives_restart = True
    channel._connparams, qos.restore_unacked = _connparams, _restore_unacked


_survive_redis_restart()

app = CeleryApp("mh1")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fix-up closes every database connection before and after each task unless this
# is set, so each task paid a new PostgreSQL connection (a backend fork, authentication, the
# tenant's search_path): measured, a third of an execution's time. Connections are kept instead,
# and each task starts the way Django starts a request: close_old_connections() below drops a
# connection that is broken or older than CONN_MAX_AGE.
app.conf["CELERY_DB_REUSE_MAX"] = 10_000
app.autodiscover_tasks()


@signals.task_prerun.connect
def _fresh_database_connection(sender=None, **kwargs) -> None:
    from django.db import close_old_connections

    # never inside a caller's transaction (an eager task in a test or a view)
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_development_secret(**kwargs) -> None:
    from mh1.guards import require_production_secret

    require_production_secret()
