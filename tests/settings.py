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
