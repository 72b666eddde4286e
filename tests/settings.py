"""Test settings: the project's settings with a broker of the tests' own and fast hashing."""

import os

os.environ.setdefault("DEBUG", "1")

from mh1.settings import *
from mh1.settings import REDIS_URL

# A Redis database of the tests' own, so a running `make demo` worker never takes test tasks.
_base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", f"{_base}/14")
REDIS_URL = TEST_REDIS_URL
CELERY_BROKER_URL = TEST_REDIS_URL
CELERY_RESULT_BACKEND = TEST_REDIS_URL
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Test-only Fernet keys (newest first): the second one proves old ciphertext still decrypts.
FIELD_ENCRYPTION_KEYS = [
    "Lq1Uu0jyzD2pTpUZ6GQ3gY2o0k8H3qWmXz2b6r8Jc5M=",
    "3Q0v2q5bq9xw3GdW6E1s5m9yXo2nT4dUeQ2kR7pL0aA=",
]
# Tests deactivate tenants and expect the next task to be dropped at once.
TENANT_TASK_CACHE_SECONDS = 0
# Connector clients in tests call sandboxes on random loopback ports and respx-mocked test hosts.
CONNECTOR_ALLOW_LOOPBACK = True
CONNECTOR_BASE_URL_ALLOWLIST = [
    *CONNECTOR_BASE_URL_ALLOWLIST,
    "https://vendor.test",
    "https://instantly.test",
    "https://hubspot.test",
    "https://ghl.test",
]
