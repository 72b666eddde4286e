"""/healthz: an anonymous caller learns which part fails, never the exception text behind it."""

from __future__ import annotations

import pytest
from django.db import connection

from mh1 import health
from tenants.roles import Role

pytestmark = pytest.mark.django_db

LEAK = "connection to redis://:hunter2@10.1.2.3:6379/0 refused"


@pytest.fixture
def failing_redis(monkeypatch):
    def broken() -> str:
        raise ConnectionError(LEAK)

    monkeypatch.setitem(health.CHECKS, "redis", broken)
    monkeypatch.setitem(health.CHECKS, "celery", lambda: "ok (1 worker)")


@pytest.mark.parametrize("host", ["localhost", "alpha.localhost"])
def test_an_anonymous_caller_gets_the_failing_parts_name_only(client, failing_redis, host):
    response = client.get("/healthz", HTTP_HOST=host)

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"] == "fail"
    assert "hunter2" not in response.content.decode() and "ConnectionError" not in response.content.decode()


def test_a_tenant_admin_gets_the_detail(alpha, make_user, client_for, failing_redis):
    client = client_for(alpha, make_user(alpha, Role.TENANT_ADMIN))

    response = client.get("/healthz")
    connection.set_schema_to_public()

    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("fail: ConnectionError")


def test_a_viewer_gets_no_detail(alpha, make_user, client_for, failing_redis):
    client = client_for(alpha, make_user(alpha, Role.VIEWER))

    response = client.get("/healthz")
    connection.set_schema_to_public()

    assert response.json()["checks"]["redis"] == "fail"
