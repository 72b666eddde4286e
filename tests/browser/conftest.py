"""Browser journeys: Playwright (pytest-playwright) driving Debian's Chromium against the live
server, on the tenants' own hosts (``http://worker.localhost:<port>/admin/``).

The recipe is ../shared/TESTING.md ("Browser"): the binary of Debian's ``chromium`` package
(installed by scripts/ensure_chromium.sh, never ``playwright install``), one browser for the
session, a fresh context (cookies) per test. Data is made with the services and the tests'
factories; the browser does only the step under test. Each journey saves screenshots under
pytest-playwright's output folder (``test-results/<test>/``).

The journeys run in the ``worker`` tenant: they are transactional (the live server's thread
sees committed rows only), and that is the tenant transactional tests end in, so pytest-django's
flush after each one truncates only its tables, never public's tenant and domain rows (pitfall 9).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django_tenants.utils import tenant_context
from playwright.sync_api import BrowserContext, Page, expect

from approvals.models import ActionRequest
from approvals.tests.factories import email_payload, propose_email, set_phase
from tenants.models import Tenant
from tests.fixtures import host_of, session_workers_paused

# The sync Playwright API keeps an event loop running on the main thread from the first browser
# test to the end of the session, and Django refuses ORM calls under a running loop (pitfall 12).
# Set for the whole process, not per test: tests that run after these ones still run under it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

T = TypeVar("T")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",  # root on CI: Chromium's sandbox refuses to start as root
    "--disable-gpu",
    "--disable-background-networking",  # no machine here reaches Google's update and field-trial hosts
    "--disable-component-update",
]
# A page of the admin answers in well under a second here; waiting 30 s (Playwright's default)
# for a missing text only makes a failing run slow.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args) -> dict:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh (make test does), or set CHROMIUM.",
            pytrace=False,
        )
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_FLAGS}


@pytest.fixture(scope="session")
def browser_context_args() -> dict:
    # The queue's columns are laid out for a 1366 px screen. (Not built on the plugin's own
    # fixture: that one asks for its fallback ``base_url``, which pytest 9 warns about; our pages
    # are on several hosts anyway.)
    return {"viewport": {"width": 1366, "height": 900}}


@pytest.fixture
def context(new_context) -> BrowserContext:
    context = new_context()
    context.set_default_timeout(TIMEOUT_MS)
    return context


@dataclass(frozen=True)
class Site:
    """One host of the live server, as the browser reaches it."""

    tenant: Tenant
    origin: str  # http://worker.localhost:54321

    def url(self, path: str = "/admin/") -> str:
        return f"{self.origin}{path}"


@pytest.fixture
def site_of(live_server) -> Callable[[Tenant], Site]:
    port = urlsplit(live_server.url).port

    def make(tenant: Tenant) -> Site:
        return Site(tenant=tenant, origin=f"http://{host_of(tenant)}:{port}")

    return make


@pytest.fixture
def browser_tenant(live_server) -> Iterator[Tenant]:
    """The tenant the journeys run in; the test ends inside its schema (see the module's doc)."""
    connection.set_schema_to_public()
    tenant = Tenant.objects.get(slug="worker")
    yield tenant
    connection.set_schema_to_public()
    connection.set_tenant(tenant)


@pytest.fixture
def site(browser_tenant, site_of) -> Site:
    return site_of(browser_tenant)


@pytest.fixture
def public_site(browser_tenant, site_of) -> Site:
    """The platform operators' host (``localhost``); the test still ends in the browser tenant."""
    connection.set_schema_to_public()
    return site_of(Tenant.objects.get(schema_name="public"))


@pytest.fixture
def log_in(context, client_for) -> Callable[[Site, User], None]:
    """Signs ``user`` in on the site's host without the login form (a session made with the test
    client, its cookie handed to the browser): logging in is not the step these journeys test."""

    def sign_in(site: Site, user: User) -> None:
        client = client_for(site.tenant, user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": site.origin}])

    return sign_in


@pytest.fixture
def screenshot(page: Page, output_path: str) -> Callable[[str], Path]:
    """Saves the whole page as ``<output folder>/<test>/<name>.png`` (look at them: a page that
    answers 200 can still be broken)."""

    def take(name: str, of: Page | None = None) -> Path:
        path = Path(output_path) / f"{name}.png"
        (of or page).screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture
def workers_paused() -> Iterator[None]:
    """No in-process worker of this session takes an approved request while the test looks at it
    (the message then says what the approval did, not how far a worker already got)."""
    with session_workers_paused():
        yield


@pytest.fixture
def assisted(browser_tenant) -> None:
    """The tenant in the assisted phase: proposals wait for people (the default, shadow, only
    records them)."""
    with tenant_context(browser_tenant):
        set_phase("assisted")
    connection.set_schema_to_public()


@pytest.fixture
def propose(browser_tenant, assisted) -> Callable[..., ActionRequest]:
    """A pending email proposed by a skill run (so any approver may decide it)."""

    def make(subject: str, to: str, **payload) -> ActionRequest:
        with tenant_context(browser_tenant):
            request = propose_email(payload=email_payload(subject=subject, to=to, **payload))
        connection.set_schema_to_public()
        assert request.status == "pending", request.status
        return request

    return make


@pytest.fixture
def in_tenant(browser_tenant) -> Callable[[Callable[[], T]], T]:
    """Runs ``read`` inside the browser tenant's schema: what the live server wrote there."""

    def run(read: Callable[[], T]) -> T:
        with tenant_context(browser_tenant):
            result = read()
        connection.set_schema_to_public()
        return result

    return run


@pytest.fixture
def refetch(in_tenant) -> Callable[[ActionRequest], ActionRequest]:
    """The request as the database holds it now."""
    return lambda request: in_tenant(
        lambda: ActionRequest.objects.select_related("assigned_to").get(pk=request.pk)
    )
