"""The lean accept path for Instantly webhooks, in front of Django's WSGI application.

Instantly posts one request per event, thousands a minute for a busy workspace. Through Django
each of them paid for the whole middleware stack (tenant lookup, sessions, auth, CSRF, audit,
axes), which held ingestion to a few hundred events a second. Like Sentry's Relay, ingestion
gets a path of its own: ``InstantlyIngest`` wraps Django's WSGI application (``mh1.wsgi``),
answers ``POST /api/v1/webhooks/instantly/`` itself and hands every other request to Django
untouched. ``connectors.api.instantly_webhook`` stays the reference implementation under
Django's URLconf; both parse the body with ``connectors.api.instantly_event`` and give the same
answers (connectors/tests/test_ingest.py runs the same requests through both).

Per event, on the hot path: the tenant and its secret from a per-process cache, a constant-time
secret check, then one ``INSERT … ON CONFLICT (system, event_id) DO NOTHING RETURNING id`` into
the tenant's schema-qualified table with outcome "stored" (a replay costs one more SELECT for
the stored id). Events that suppress an address (an unsubscribe, a bounce) go through
the services instead (``webhook_event_ingest`` in the tenant's
schema), so they suppress at once and cancel the open sends as before. An event type we do not
know (a workspace's lead label, a type Instantly adds later) is stored and answered 200 like any
other: Instantly disables a webhook that keeps answering non-2xx, and then unsubscribes stop.

Caches: host → tenant schema and each schema's decrypted endpoint secret are kept
``WEBHOOK_INGEST_CACHE_SECONDS`` (default 30) per process. A deactivated tenant, a deactivated
endpoint or a rotated secret therefore takes effect here within that many seconds; during that
window the old secret is still accepted and the new one answered 401 (Instantly retries).
Requests for a host that is not an active tenant's are handed to Django, which reads the tenant
afresh and answers 404 (or serves a tenant reactivated meanwhile).

Also handed to Django, so it answers as it always has: other paths and methods (405), requests
without a Host header, and plain-http requests when SECURE_SSL_REDIRECT is on (redirected). A
Content-Length that is not a number is answered 400 here, as the view does. Bodies refused with a
proven secret (not JSON we can store, too large, no event type) are answered 4xx and kept as dead
letters (``connectors.api.webhook_dead_letter_add``), like the view. A value the database refuses
(``DataError``: it would be refused on every retry) is a 400 and a dead letter too; other database
errors are logged and answered 503 with a message, so Instantly retries; nothing is left
half-written (a suppressing event whose effect failed is rolled back with it, so the retry
applies it).

Database: Django's own connection of the thread, so CONN_MAX_AGE, the settings, the
transaction state and the error classes are Django's; ``close_old_connections`` runs before and
after each request as Django's request signals do. Measured on the 2-CPU machine with
bench/webhook_ingest.py, where Python's GIL is what four threads wait on:

- Django's `SELECT 1` health check before a request's first query is left out: it doubled the
  round trips per event and cost about a third of the events/s. The idempotent INSERT is its
  own check instead (see ``_store``).
- Sending the request_started / request_finished signals cost more than the rest of the path;
  only their connection handling (close_old_connections) is kept.
- The INSERT runs on a psycopg cursor of that connection, kept per thread, inside Django's
  error wrapping, not on Django's cursor wrapper: about 20 µs less CPU per event, some 5 % more
  events/s. Those statements are not in ``connection.queries`` under DEBUG, and Django's
  execute wrappers do not see them; Django's prepare_threshold (off by default) applies.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from http import HTTPStatus

import psycopg
from auditlog.middleware import AuditlogMiddleware
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    DataError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
)
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tenants.utils import (
    get_public_schema_name,
    get_tenant_domain_model,
    quote_schema_name,
    remove_www,
    schema_context,
)

from connectors.api import (
    BAD_CONTENT_LENGTH,
    DEAD_LETTER_BODY_BYTES,
    MAX_BODY_BYTES,
    SECRET_HEADER,
    InstantlyEvent,
    content_length,
    instantly_event,
    unstorable_message,
    webhook_dead_letter_add,
)
from connectors.models import System, WebhookEndpoint, WebhookEvent
from connectors.services import APPLIED_EVENTS, webhook_event_ingest
from mh1.context import correlation_id
from mh1.middleware import CORRELATION_ID_PATTERN, ActiveTenantMiddleware

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("django.request")

INSTANTLY_PATH = "/api/v1/webhooks/instantly/"
SECRET_KEY_IN_ENVIRON = "HTTP_" + SECRET_HEADER.upper().replace("-", "_")
# Random Host headers must not grow the host cache without bound: it starts over past this.
MAX_CACHED_HOSTS = 1024
STATUS_LINES = {code: f"{code} {HTTPStatus(code).phrase}" for code in (200, 400, 401, 413, 500, 503)}
RETRY_LATER = "The event could not be stored now; nothing was kept. Please retry."

StartResponse = Callable[..., object]
# Swapped by tests to move the caches' clock forward.
clock = time.monotonic


class _TTLCache:
    """Values loaded on first use and kept WEBHOOK_INGEST_CACHE_SECONDS, per process."""

    def __init__(self, load: Callable[[str], object]):
        self._load = load
        self._entries: dict[str, tuple[object, float]] = {}

    def get(self, key: str):
        now = clock()
        entry = self._entries.get(key)
        if entry is not None and entry[1] > now:
            return entry[0]
        value = self._load(key)
        ttl = settings.WEBHOOK_INGEST_CACHE_SECONDS
        if ttl > 0:
            if len(self._entries) >= MAX_CACHED_HOSTS:
                self._entries.clear()
            self._entries[key] = (value, now + ttl)
        return value

    def clear(self) -> None:
        self._entries.clear()


def _tenant_schema(raw_host: str) -> str | None:
    """The schema of the active tenant on this host, or None where Django must answer."""
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]  # as HttpRequest.get_host()
    domain, _ = split_domain_port(raw_host)
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    # The same lookup as ActiveTenantMiddleware: unknown and deactivated tenants are not found.
    middleware, domain_model = ActiveTenantMiddleware(lambda request: None), get_tenant_domain_model()
    try:
        tenant = middleware.get_tenant(domain_model, remove_www(raw_host.split(":")[0]))
    except domain_model.DoesNotExist:
        return None
    if tenant.schema_name == get_public_schema_name():
        return None  # public serves no webhooks: Django answers 404 there
    return tenant.schema_name


def _endpoint_secret(schema: str) -> str | None:
    """The tenant's active Instantly endpoint secret, decrypted; None if it has none."""
    with schema_context(schema):
        endpoint = WebhookEndpoint.objects.filter(system=System.INSTANTLY, is_active=True).first()
    return None if endpoint is None else str(endpoint.secret)


_tenants = _TTLCache(_tenant_schema)
_secrets = _TTLCache(_endpoint_secret)


def cache_clear() -> None:
    """Forget the cached tenants and secrets (tests; a process that must see a change at once)."""
    _tenants.clear()
    _secrets.clear()


@lru_cache(maxsize=MAX_CACHED_HOSTS)
def _statements(schema: str) -> tuple[str, str]:
    """The INSERT and the replay's SELECT on the schema's WebhookEvent table (names quoted)."""
    meta, quote = WebhookEvent._meta, connection.ops.quote_name
    table = f"{quote_schema_name(schema)}.{quote(meta.db_table)}"
    columns = [
        meta.get_field(name).column
        for name in ("system", "event_id", "event_type", "email", "payload", "received_at", "outcome")
    ]
    pk, system, event_id = quote(meta.pk.column), quote(columns[0]), quote(columns[1])
    insert = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 - quoted names
        f"VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s) "
        f"ON CONFLICT ({system}, {event_id}) DO NOTHING RETURNING {pk}"
    )
    select = f"SELECT {pk} FROM {table} WHERE {system} = %s AND {event_id} = %s"  # noqa: S608
    return insert, select


def _store(schema: str, event: InstantlyEvent) -> tuple[int, bool]:
    """Store an event that needs no action, once: (its id, whether this call stored it)."""
    insert, select = _statements(schema)
    # The same values as webhook_event_record followed by webhook_event_apply's "stored".
    event_id = event.event_id[:200]
    params = (
        System.INSTANTLY.value,
        event_id,
        event.event_type[:64],
        event.email.lower(),
        json.dumps(event.payload),
        timezone.now(),
        "stored",
    )
    db = connections[DEFAULT_DB_ALIAS]
    # Django checks a kept connection with a `SELECT 1` before a request's first query
    # (CONN_HEALTH_CHECKS): a second round trip for every event. The INSERT is idempotent, so it
    # is its own check instead: if the kept connection turns out dead, it runs again on a new one.
    unchecked = db.connection is not None and db.health_check_enabled and not db.health_check_done
    db.health_check_done = True
    try:
        return _insert_once(db, insert, select, params)
    except (InterfaceError, OperationalError):
        if not unchecked or db.in_atomic_block or db.is_usable():
            raise
        logger.info("Kept database connection was dead; storing the event on a new one")
        db.close()
        return _insert_once(db, insert, select, params)


# One psycopg cursor per thread, on the thread's Django connection (a new one after a reconnect).
_thread = threading.local()


def _insert_once(db, insert: str, select: str, params: tuple) -> tuple[int, bool]:
    db.ensure_connection()
    cursor = getattr(_thread, "cursor", None)
    if cursor is None or cursor.connection is not db.connection:
        cursor = _thread.cursor = psycopg.Cursor(db.connection)
    with db.wrap_database_errors:  # Django's exception classes; a broken connection is noted
        for _ in range(2):  # a second try only if the stored row was deleted in between
            cursor.execute(insert, params)
            row = cursor.fetchone()
            if row is not None:
                return row[0], True
            cursor.execute(select, params[:2])
            row = cursor.fetchone()
            if row is not None:
                return row[0], False
    raise DatabaseError(f"Event {params[1]!r} was stored and deleted twice meanwhile.")


def _store_and_apply(environ: dict, schema: str, event: InstantlyEvent) -> tuple[int, dict]:
    """A suppressing event or a reply: through the services, in the tenant's schema, as the view does."""

    def apply(request: WSGIRequest) -> tuple[int, dict]:
        with schema_context(schema):
            # one transaction: an effect that fails leaves no event, so Instantly's retry applies it
            stored, created, outcome = webhook_event_ingest(
                system=System.INSTANTLY,
                event_id=event.event_id,
                event_type=event.event_type,
                email=event.email,
                payload=event.payload,
            )
            if not created:
                return 200, {"status": "duplicate", "id": stored.pk}
        return 200, {"status": "stored", "id": stored.pk, "outcome": outcome}

    # The audit entries of the cancelled sends carry the caller's address and correlation id,
    # as under Django's AuditlogMiddleware (the body was read already; the request has headers).
    return AuditlogMiddleware(apply)(WSGIRequest(environ))


def _is_secure(environ: dict) -> bool:
    """HttpRequest.is_secure(), from the environ."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = environ.get(header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


def _raw_host(environ: dict) -> str | None:
    """HttpRequest._get_raw_host() without the SERVER_NAME fallback (left to Django)."""
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        return environ["HTTP_X_FORWARDED_HOST"]
    return environ.get("HTTP_HOST")


def _middleware_headers(secure: bool) -> list[tuple[str, str]]:
    """The headers Django's security and clickjacking middleware add to such an answer."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": INSTANTLY_PATH,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "443" if secure else "80",
        "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.input": io.BytesIO(),
    }
    request, response = WSGIRequest(environ), HttpResponse(content_type="application/json")
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        request.META[header] = secure_value if secure else "http"
    for path in settings.MIDDLEWARE:
        middleware = import_string(path)
        if middleware in (SecurityMiddleware, XFrameOptionsMiddleware):
            middleware(lambda request: response).process_response(request, response)
    return [(name, value) for name, value in response.items() if name.lower() != "content-type"]


def _dead_letter(environ: dict, schema: str, body: bytes, message: str, size: int | None = None) -> None:
    with schema_context(schema):
        webhook_dead_letter_add(
            system=System.INSTANTLY,
            body=body,
            reason=message,
            content_type=environ.get("CONTENT_TYPE", ""),
            size=size,
        )


def _refuse(environ: dict, schema: str, status: int, message: str) -> tuple[int, dict]:
    # The warning Django logs for a 4xx answer, naming the tenant: the connection's schema,
    # which log records carry, stays public on this path.
    request_logger.warning(
        "%s: %s (tenant %s)",
        HTTPStatus(status).phrase,
        environ["PATH_INFO"],
        schema,
        extra={"status_code": status},
    )
    return status, {"detail": message}


class _Unstorable(Exception):
    """The database refused a value of the event: answered 400 once the transaction is gone."""

    def __init__(self, schema: str, body: bytes, message: str):
        super().__init__(message)
        self.schema, self.body, self.message = schema, body, message


class InstantlyIngest:
    """WSGI application: Instantly webhooks answered here, everything else by ``django_app``."""

    def __init__(self, django_app: Callable[[dict, StartResponse], Iterable[bytes]]):
        self.django_app = django_app
        self._headers = {secure: _middleware_headers(secure) for secure in (False, True)}

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != INSTANTLY_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.django_app(environ, start_response)
        secure = _is_secure(environ)
        raw_host = _raw_host(environ)
        if raw_host is None or (settings.SECURE_SSL_REDIRECT and not secure):
            return self.django_app(environ, start_response)
        incoming = environ.get("HTTP_X_CORRELATION_ID", "")
        # Shaped like CorrelationIdMiddleware's ids; not uuid4, whose os.urandom call lets another
        # thread take the GIL in the middle of every request.
        request_id = incoming if CORRELATION_ID_PATTERN.match(incoming) else f"{random.getrandbits(64):016x}"
        token = correlation_id.set(request_id)
        # What Django's request_started and request_finished receivers do for connections: drop
        # the ones past CONN_MAX_AGE or broken. Called directly: sending the signals cost more
        # than the rest of this method (their other receivers reset Django's URLconf, its query
        # log and its caches, none of which this path uses).
        close_old_connections()
        try:
            answer = self._answer(environ, raw_host)
        finally:
            correlation_id.reset(token)
            close_old_connections()
        if answer is None:  # Django answers, with the whole of its request cycle
            return self.django_app(environ, start_response)
        status, data = answer
        body = json.dumps(data).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *self._headers[secure],
            ("X-Correlation-ID", request_id),
        ]
        start_response(STATUS_LINES[status], headers)
        return [body]

    def _answer(self, environ: dict, raw_host: str) -> tuple[int, dict] | None:
        """(status, JSON answer), or None to let Django answer."""
        try:
            return self._accept(environ, raw_host)
        except _Unstorable as exc:  # refused on every retry: a 4xx and a dead letter, as the view
            _dead_letter(environ, exc.schema, exc.body, exc.message)
            return _refuse(environ, exc.schema, 400, exc.message)
        except DatabaseError:
            logger.exception("Instantly webhook for %s not stored: database error", raw_host)
            return 503, {"detail": RETRY_LATER}
        except Exception:  # answered 500 and logged, as Django would
            logger.exception("Instantly webhook for %s failed", raw_host)
            return 500, {"detail": "Server error."}

    def _accept(self, environ: dict, raw_host: str) -> tuple[int, dict] | None:
        schema = _tenants.get(raw_host)
        if schema is None:
            return None
        secret = _secrets.get(schema)
        given = environ.get(SECRET_KEY_IN_ENVIRON, "")
        if secret is None or not hmac.compare_digest(given.encode(), secret.encode()):
            return _refuse(environ, schema, 401, f"Missing or wrong {SECRET_HEADER} header.")
        length = content_length(environ.get("CONTENT_LENGTH"))
        if length is None:
            return _refuse(environ, schema, 400, BAD_CONTENT_LENGTH)
        if length > MAX_BODY_BYTES:
            message = f"Body larger than {MAX_BODY_BYTES} bytes."
            _dead_letter(environ, schema, environ["wsgi.input"].read(DEAD_LETTER_BODY_BYTES), message, length)
            return _refuse(environ, schema, 413, message)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        event, refusal = instantly_event(body)
        if event is None:
            _dead_letter(environ, schema, body, refusal)
            return _refuse(environ, schema, 400, refusal)
        try:
            if event.event_type in APPLIED_EVENTS:
                return _store_and_apply(environ, schema, event)
            pk, created = _store(schema, event)
        except DataError as exc:
            raise _Unstorable(schema, body, unstorable_message(exc)) from exc
        if not created:
            return 200, {"status": "duplicate", "id": pk}
        return 200, {"status": "stored", "id": pk, "outcome": "stored"}
