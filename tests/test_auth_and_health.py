"""Login errors and throttling, health endpoint, production settings check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mh1 import health
from tenants.roles import Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def test_wrong_password_is_a_form_error_and_repeated_failures_lock_out(alpha, make_user, client_for):
    make_user(alpha, Role.AE, email="locked@example.com")
    client = client_for(alpha)

    first = client.post("/admin/login/?next=/admin/", {"username": "locked@example.com", "password": "nope"})
    assert first.status_code == 200
    assert "Please enter the correct username and password" in first.content.decode()

    for _ in range(4):
        client.post("/admin/login/?next=/admin/", {"username": "locked@example.com", "password": "nope"})
    locked = client.post(
        "/admin/login/?next=/admin/", {"username": "locked@example.com", "password": PASSWORD}
    )

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()


def test_healthz_names_the_failing_part(client, alpha, monkeypatch):
    monkeypatch.setattr(health, "CHECKS", {**health.CHECKS, "celery": lambda: "ok (1 worker)"})
    ok = client.get("/healthz", HTTP_HOST="alpha.localhost")
    assert ok.status_code == 200
    assert ok.json()["checks"] == {"database": "ok", "redis": "ok", "celery": "ok (1 worker)"}

    def no_worker():
        raise RuntimeError("no Celery worker answered")

    monkeypatch.setattr(health, "CHECKS", {**health.CHECKS, "celery": no_worker})
    failing = client.get("/healthz", HTTP_HOST="localhost")
    assert failing.status_code == 503
    assert failing.json()["failing"] == ["celery"]
    assert failing.json()["checks"]["celery"] == "fail"  # the detail is for admins (test_health_detail)


def test_healthz_reports_redis_down(client, alpha, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz", HTTP_HOST="alpha.localhost")
    assert response.status_code == 503
    assert "redis" in response.json()["failing"]


def test_api_schema_is_served(client, alpha, make_user, client_for):
    response = client_for(alpha, make_user(alpha, Role.VIEWER)).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/policy/sending/" in response.content


@pytest.mark.django_db(databases=[])
def test_check_deploy_is_clean_under_production_settings():
    env = {
        # the browser tests' process-wide DJANGO_ALLOW_ASYNC_UNSAFE is the test run's, not production's
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "mh1.settings",
        "DEBUG": "0",
        "SECRET_KEY": "x" * 20 + "production-like-secret-key-with-entropy-" + "9f3kQ2" * 4,
        "ALLOWED_HOSTS": ".console.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db(databases=[])
def test_serving_with_the_development_key_is_refused_when_debug_is_off():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="mh1.settings", DEBUG="0")

    served = subprocess.run(
        [sys.executable, "-c", "import mh1.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    checked = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert served.returncode != 0 and "SECRET_KEY must be set when DEBUG is off." in served.stderr
    assert checked.returncode == 0, checked.stderr
