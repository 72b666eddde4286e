"""/api/docs/ (Swagger UI) and /api/redoc/ are served from our own static files: no CDN, and the
files are there."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

from tenants.roles import Role

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "script"), [("/api/docs/", "swagger-ui-bundle.js"), ("/api/redoc/", "redoc.standalone.js")]
)
def test_the_api_docs_pages_load_their_scripts_from_our_static_files(
    alpha, make_user, client_for, path, script
):
    user = make_user(alpha, Role.VIEWER, email="docs-viewer@alpha.test")
    response = client_for(alpha, user).get(path)

    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(script in s for s in sources), sources
    assert not [s for s in sources if s.startswith(("http://", "https://", "//"))], sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), f"{source} is not a static file we ship"
