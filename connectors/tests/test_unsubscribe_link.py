"""Unsubscribe links keep working across a SECRET_KEY rotation, and a forged or malformed one is a 400
page, never a 500."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import signing
from django.db import connection
from django.test import override_settings

from connectors.executors import UNSUBSCRIBE_SALT, unsubscribe_token
from connectors.models import Suppression

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
OLD_KEY = "old-secret-key-for-rotation-test-0123456789abcdef"
NEW_KEY = "new-secret-key-for-rotation-test-fedcba9876543210"


@pytest.fixture
def client(alpha, client_for):
    return client_for(alpha)


def test_the_settings_read_secret_key_fallbacks_from_the_environment():
    env = {**os.environ, "SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": f"{OLD_KEY}, older-key", "DEBUG": "1"}
    out = subprocess.run(
        [sys.executable, "-c", "import mh1.settings as s; print(s.SECRET_KEY_FALLBACKS)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert out.strip() == str([OLD_KEY, "older-key"])


def test_a_link_signed_before_a_key_rotation_still_unsubscribes(alpha, client):
    connection.set_tenant(alpha)
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        token = unsubscribe_token("Rotated@Prospect.example")

    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        page = client.get(f"/u/{token}/")
        done = client.post(f"/u/{token}/", {"List-Unsubscribe": "One-Click"})
        connection.set_tenant(alpha)
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):
        gone = client.get(f"/u/{token}/")  # once the old key is retired, its links are invalid
        connection.set_tenant(alpha)

    assert page.status_code == 200 and "rotated@prospect.example" in page.content.decode()
    assert done.status_code == 200
    assert Suppression.objects.filter(email="rotated@prospect.example").exists()
    assert gone.status_code == 400


def _signed(value) -> str:
    return signing.dumps(value, salt=UNSUBSCRIBE_SALT, compress=True)


@pytest.mark.parametrize(
    "token",
    [
        "x",
        ".",
        ":",
        "a:b:c",
        "." + "A" * 5000,
        "eyJlIjoiYUBiLmMifQ:1tXXXX:forged-signature",
        "%00",
        "é:ü",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_malformed_or_forged_token_is_a_400_page(alpha, client, token, method):
    response = getattr(client, method)(f"/u/{token}/")
    connection.set_tenant(alpha)

    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        "just a string",
        ["a", "list"],
        {"s": "alpha"},
        {"s": "alpha", "e": 42},
        {"s": "alpha", "e": "not an address"},
        {"s": "alpha", "e": "x" * 300 + "@b.example"},
        {"e": "a@b.example"},
    ],
    ids=str,
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_signed_token_with_a_payload_we_never_issue_is_a_400(alpha, client, payload, method):
    connection.set_tenant(alpha)
    token = _signed(payload)

    response = getattr(client, method)(f"/u/{token}/")
    connection.set_tenant(alpha)

    assert response.status_code == 400
    assert not Suppression.objects.exists()
