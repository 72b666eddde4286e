"""MH1 Console settings: one module, driven by environment variables."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# Development only: the key below is refused when DEBUG is off (see the check at the bottom).
_DEV_SECRET_KEY = "dev-insecure-mh1-console-key-change-me"  # noqa: S105
SECRET_KEY = os.environ.get("SECRET_KEY", _DEV_SECRET_KEY)

# ".localhost" lets every tenant host (acme.localhost) through; the tenant middleware
# then answers 404 for hosts that are not a known, active tenant domain.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ".localhost,localhost,127.0.0.1")

# Tenant hosts are "<slug>.<TENANT_BASE_DOMAIN>"; the public (operators') host is the base.
TENANT_BASE_DOMAIN = os.environ.get("TENANT_BASE_DOMAIN", "localhost")
PUBLIC_DOMAINS = env_list("PUBLIC_DOMAINS", f"{TENANT_BASE_DOMAIN},127.0.0.1")

# Keys for secrets at rest (connector credentials). Comma separated Fernet keys, newest first;
# older keys keep decrypting until rotated out.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mh1"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# The cache holds only derived values that each process may recompute (the home chart's closed
# days, mh1.home): memory per process, nothing shared that could outlive a tenant's data. Keys
# name the tenant (schema and id) explicitly.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mh1"}}

# --- tenants -----------------------------------------------------------------------------------
# Placement is decided once (pitfall 5): auth, sessions, guardian, auditlog and axes live in every
# schema, so each tenant has its own users, sessions, object permissions, audit and lockouts.
SHARED_APPS = [
    # Before django_tenants so that our create_tenant command (schema + host + first admin)
    # takes precedence over django-tenants' bare one.
    "tenants",
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "guardian",
    "auditlog",
    "axes",
    "solo",
    "import_export",
    "rest_framework",
    # In public too: auditlog and deletes walk every relation of User, including the token.
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "guardian",
    "auditlog",
    "axes",
    "rest_framework.authtoken",
    "tenants.policy",
    "tenants.budget",
    "approvals",
    "campaigns",
    "connectors",
    "evaluation",
    "skills",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
PUBLIC_SCHEMA_URLCONF = "mh1.urls_public"
ROOT_URLCONF = "mh1.urls_tenant"
# New tenants are cloned from an empty, migrated template schema (pitfall 7): seconds, not minutes.
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_MIGRATION_EXECUTOR = os.environ.get("TENANT_MIGRATION_EXECUTOR", "standard")
# Set search_path only when the schema changes, not before every query (halves round trips).
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "mh1.middleware.ActiveTenantMiddleware",
    "mh1.middleware.CorrelationIdMiddleware",
    "mh1.request_guard.NulQueryGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

WSGI_APPLICATION = "mh1.wsgi.application"
ASGI_APPLICATION = "mh1.asgi.application"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "mh1.auth_backends.OneQueryModelBackend",  # ModelBackend, its permissions in one query
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# guardian: no per-schema AnonymousUser rows; anonymous visitors get nothing.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = True

# axes: 5 wrong passwords for one username from one address lock it out for 15 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# The lockout page in the host's admin branding, saying when it unlocks and who can unlock it.
AXES_LOCKOUT_CALLABLE = "mh1.auth_views.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

AUDITLOG_INCLUDE_ALL_MODELS = False
AUDITLOG_DISABLE_REMOTE_ADDR = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".local" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Project-wide static files (the favicon); apps keep theirs in <app>/static/.
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served at the site root on every host, before any view: /favicon.ico.
WHITENOISE_ROOT = BASE_DIR / "webroot"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions are stored per schema (django.contrib.sessions is a tenant app), and the cookie is
# host-only: a session from acme.localhost is unknown on globex.localhost.
SESSION_COOKIE_NAME = "mh1_session"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(12 * 3600)))
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG and env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SECURE_SSL_REDIRECT = not DEBUG and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 0 if DEBUG else int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

DEMO_PORT = os.environ.get("MH1_PORT", "")

# --- Tenant and secret boundaries (issue 10) --------------------------------------------------
# Rotating SECRET_KEY: put the old key here (comma separated, newest first) until the links it
# signed (unsubscribe links in sent emails) and sessions may go; Django's signing tries each.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
# Origins (scheme://host[:port]) a credential's base URL may use besides the vendor's own, e.g. a
# vendor's regional API. Anything else is refused in the model and again by the HTTP client.
CONNECTOR_BASE_URL_ALLOWLIST = env_list("CONNECTOR_BASE_URL_ALLOWLIST")
# `make demo` (MH1_PORT set) points credentials at the vendor sandbox on loopback, on its own port.
CONNECTOR_SANDBOX_ORIGIN = "http://127.0.0.1:8025"
if env_bool("CONNECTOR_ALLOW_SANDBOX", bool(DEMO_PORT)):
    CONNECTOR_BASE_URL_ALLOWLIST.append(CONNECTOR_SANDBOX_ORIGIN)
# Any loopback port: for tests' sandboxes on random ports only, never in production.
CONNECTOR_ALLOW_LOOPBACK = False
# CSV uploads wait for their confirmation in the tenant's own storage (campaigns.import_storage).
IMPORT_EXPORT_TMP_STORAGE_CLASS = "campaigns.import_storage.TenantUploadStorage"
# What one Clay enrichment row costs us, charged to the tenant's budget when the row is submitted
# (Clay's API says nothing of credits used): the plan's price per credit times the credits the
# table's enrichments use per row.
CLAY_USD_PER_ROW = Decimal(os.environ.get("CLAY_USD_PER_ROW", "0.05"))
# GoHighLevel signs webhooks with one published Ed25519 key (PEM); set it in production.
GHL_WEBHOOK_PUBLIC_KEY = os.environ.get("GHL_WEBHOOK_PUBLIC_KEY", "")
# connectors.ingest (the Instantly accept path) keeps host → tenant and each tenant's webhook secret
# this many seconds per process: a deactivated tenant or endpoint, or a rotated secret, takes
# effect there within it (0: read them on every request).
WEBHOOK_INGEST_CACHE_SECONDS = int(os.environ.get("WEBHOOK_INGEST_CACHE_SECONDS", "30"))
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "MH1 Console <console@mh1.local>")

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # pitfall 8: no task waits behind a busy sibling
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Read by the Redis transport only; with an amqp:// broker (README "Broker") kombu's py-amqp
# transport ignores them: RabbitMQ redelivers a dead consumer's unacked tasks when its connection
# closes, and holds an unacked task (an ETA waiting in a worker) up to its consumer_timeout.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A killed worker's unacked tasks come back after this; ETAs must stay below it.
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    # How often a consumer scans for such lost tasks: every interval x throttle seconds.
    "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": int(os.environ.get("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# tenant-schemas-celery's own lookup may be cached: mh1.tenancy re-checks that the tenant exists
# and is active on every task, uncached, before running it.
CELERY_TASK_TENANT_CACHE_SECONDS = 30
# How long a worker process trusts the tenant row (active or not) it read for a task.
TENANT_TASK_CACHE_SECONDS = int(os.environ.get("TENANT_TASK_CACHE_SECONDS", "5"))

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: a bad token answers 401 with WWW-Authenticate, not a bare 403.
        # our own hashed tokens (tenants/policy/tokens.py), same "Authorization: Token <key>" header
        "tenants.policy.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["mh1.api_permissions.StrictModelPermissions"],
    # JSON through mh1.parsers: NaN, Infinity, NUL, lone surrogates and deep nesting are a 400.
    "DEFAULT_PARSER_CLASSES": [
        "mh1.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # limit clamped, offset bounded: never a bigint out of range (mh1.pagination)
    "DEFAULT_PAGINATION_CLASS": "mh1.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    # drf-spectacular's, plus nullable / blank read-only fields declared from their model fields
    "DEFAULT_SCHEMA_CLASS": "mh1.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mh1.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MH1 Console API",
    "DESCRIPTION": "Per-tenant API of the MH1 operations console.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # several models have a "status" field with their own choices: name each set once
    "ENUM_NAME_OVERRIDES": {
        "ActionRequestStatusEnum": "approvals.models.Status",
        "SkillRunStatusEnum": "skills.models.RunStatus",
        "CallStatusEnum": "connectors.models.CallStatus",
        "EnrichmentStatusEnum": "connectors.models.EnrichmentStatus",
    },
}

# --- logging ---------------------------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "mh1.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(schema)s %(correlation_id)s] %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # httpx logs every request's full URL at INFO; some vendor URLs (a Clay webhook source) are
        # credentials. connectors.http logs each vendor call without them.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# Processes that serve or act (wsgi, asgi, Celery worker and beat) refuse the development key
# when DEBUG is off (mh1.guards); management commands such as makemigrations still run.
USING_DEV_SECRET_KEY = SECRET_KEY == _DEV_SECRET_KEY
