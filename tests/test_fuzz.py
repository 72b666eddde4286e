"""Property-based fuzz of everything that takes input from outside: never a 5xx, never a partial
write.

Hostile values (NUL, lone surrogates, NaN and Infinity, numbers beyond any column, deep nesting,
lists where text is expected, over-long emails, random text and JSON) go to every webhook
(Instantly through its lean accept path and through Django), the unsubscribe link, every API write
endpoint found in the OpenAPI schema, and every admin changelist's search and filters. A refused
request must change no row. ``max_examples`` is kept small so the file runs in well under a
minute in ``make test``; raise it locally (``HYPOTHESIS_MAX_EXAMPLES``) to search harder.
"""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest
from django.core import signals
from django.db import close_old_connections, connection
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.models import ActionRequest
from connectors import ingest
from connectors.ingest import InstantlyIngest
from connectors.models import Suppression, WebhookEvent
from connectors.tests.test_ingest import DjangoHandler, call
from mh1.admin_sites import tenant_site
from tenants.policy.models import IcpDefinition, QuotaPolicy, RolloutSettings, SendingPolicy
from tenants.roles import Role
from tests import test_bad_input
from tests.test_bad_input import clay, ghl, hubspot, post_raw, tenant_client

pytestmark = pytest.mark.django_db
webhook_secrets = test_bad_input.secrets  # the bad-input suite's fixture: an endpoint per vendor
EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure in CI is one you can reproduce
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE_TEXT = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "\ud800",
        "x\udfffy",
        "a" * 250 + "@example.com",
        "",
        " ",
        "NaN",
        "Infinity",
        "9" * 30,
        "2026-01-05T10:00:00",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "%00",
        "é" * 300,
    ]
)
TEXT = st.one_of(HOSTILE_TEXT, st.text(max_size=40))
NUMBERS = st.one_of(
    st.sampled_from([2**31, 2**63, 2**64, -(2**63) - 1, 10**30, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)


def deep(levels: int) -> object:
    value: object = []
    for _ in range(levels):
        value = [value]
    return value


VALUES = st.one_of(JSON_VALUES, st.sampled_from([deep(70), deep(3000), ["a@b.example"], {"x": ["y"]}]))


def encode(value: object) -> bytes:
    """JSON as a hostile sender writes it: NaN and Infinity as literals, lone surrogates escaped."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        return json.dumps(value, allow_nan=True).encode()
    finally:
        sys.setrecursionlimit(limit)


def hostile_object(required: dict) -> st.SearchStrategy[dict]:
    """An object with the keys a vendor's body needs, each kept or replaced by a hostile value."""
    keys = list(required)
    return st.fixed_dictionaries(
        {key: st.one_of(st.just(required[key]), VALUES) for key in keys},
        optional={"email": VALUES, "lead_email": VALUES, "extra": VALUES},
    )


def counts(tenant) -> dict[str, int]:
    with tenant_context(tenant):
        found = {
            "events": WebhookEvent.objects.count(),
            "suppressions": Suppression.objects.count(),
            "requests": ActionRequest.objects.count(),
            "policies": sum(
                1
                for model in (RolloutSettings, IcpDefinition, QuotaPolicy, SendingPolicy)
                for _ in model.objects.values_list("pk", "updated_at")
            ),
            "policy_versions": hash(
                tuple(
                    str(row)
                    for model in (RolloutSettings, IcpDefinition, QuotaPolicy, SendingPolicy)
                    for row in model.objects.values_list("updated_at")
                )
            ),
        }
    connection.set_schema_to_public()
    return found


@pytest.fixture
def fast_path(monkeypatch):
    ingest.cache_clear()
    monkeypatch.setattr(ingest, "close_old_connections", lambda: None)
    app = InstantlyIngest(DjangoHandler())
    yield app
    ingest.cache_clear()


def wsgi_call(app, tenant, body: bytes, secret: str):
    # Django's test client reconnects these after each of its requests; a WSGI call must not
    # close the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        return call(app, tenant, body=body, secret=secret)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# --- webhooks ----------------------------------------------------------------------------------


@FUZZ
@given(
    instantly=hostile_object({"event_type": "email_opened", "email_id": "e-1", "timestamp": "t"}),
    hubspot_event=hostile_object({"eventId": 1, "subscriptionType": "contact.creation", "objectId": 5}),
    ghl_event=hostile_object({"type": "ContactTagUpdate", "webhookId": "w-1", "timestamp": "now"}),
    clay_row=hostile_object({"mh1_ref": "00000000-0000-4000-8000-000000000001", "company_size": 5}),
)
def test_webhooks_never_answer_5xx_and_refusals_store_nothing(
    alpha,
    webhook_secrets,
    fast_path,
    instantly,
    hubspot_event,
    ghl_event,
    clay_row,
):
    from django.utils import timezone

    if ghl_event.get("timestamp") == "now":
        ghl_event["timestamp"] = timezone.now().isoformat()
    client = tenant_client(alpha)
    attempts = [
        lambda: wsgi_call(fast_path, alpha, encode(instantly), webhook_secrets["instantly"]).status,
        lambda: (
            post_raw(
                client,
                "/api/v1/webhooks/instantly/",
                encode(instantly),
                HTTP_X_MH1_WEBHOOK_SECRET=webhook_secrets["instantly"],
            ).status_code
        ),
        lambda: (
            hubspot(client, webhook_secrets["hubspot"], encode([hubspot_event, hubspot_event])).status_code
        ),
        lambda: ghl(client, encode(ghl_event)).status_code,
        lambda: clay(client, webhook_secrets["clay"], encode(clay_row)).status_code,
    ]
    for attempt in attempts:
        before = counts(alpha)
        status = attempt()
        assert status < 500, (status, instantly, hubspot_event, ghl_event, clay_row)
        if status >= 400:
            assert counts(alpha) == before


@FUZZ
@given(token=TEXT, body=TEXT)
def test_unsubscribe_link_never_answers_5xx(alpha, token, body):
    client = tenant_client(alpha)
    path = "/u/" + urllib.parse.quote(token.encode("utf-8", "surrogatepass") or b"x", safe="") + "/"
    before = counts(alpha)

    got = client.get(path)
    connection.set_schema_to_public()
    posted = client.post(path, {"List-Unsubscribe": body.encode("utf-8", "surrogatepass")})
    connection.set_schema_to_public()

    assert got.status_code < 500 and posted.status_code < 500, (got.status_code, posted.status_code, token)
    if posted.status_code >= 400:
        assert counts(alpha) == before


# --- API ---------------------------------------------------------------------------------------


def write_operations() -> list[tuple[str, str, list[str]]]:
    """(method, path, body fields) of every API write endpoint, from drf-spectacular's schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(urlconf="mh1.urls_tenant").get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    found = []
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/") or "/webhooks/" in path:
            continue
        for method, operation in operations.items():
            if method not in ("post", "put", "patch"):
                continue
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref", "")
            fields = list(components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
            found.append((method.upper(), path, fields))
    return found


WRITE_OPERATIONS = write_operations()


def test_the_schema_walk_finds_the_write_endpoints():
    paths = {(method, path) for method, path, _ in WRITE_OPERATIONS}
    assert ("POST", "/api/v1/approvals/requests/") in paths
    assert ("PATCH", "/api/v1/policy/icp/") in paths
    assert len(paths) >= 8


@pytest.fixture
def admin_api(alpha, make_user):
    return tenant_client(alpha, make_user(alpha, Role.TENANT_ADMIN))


def _skill_slugs() -> list[str]:
    from skills import registry

    return [skill.contract.slug for skill in registry.all_skills()]


@pytest.fixture
def pending_request(alpha):
    from approvals.tests.factories import propose_email

    with tenant_context(alpha):
        made = propose_email(key="fuzz-target")
    connection.set_schema_to_public()
    return made


@pytest.mark.parametrize(
    ("method", "path", "fields"), WRITE_OPERATIONS, ids=[f"{m} {p}" for m, p, _ in WRITE_OPERATIONS]
)
@FUZZ
@given(data=st.data())
def test_api_writes_never_answer_5xx_and_refusals_change_nothing(
    alpha, admin_api, pending_request, method, path, fields, data
):
    url = path.replace("{id}", str(data.draw(st.sampled_from([pending_request.pk, 2**63, 0]), label="id")))
    url = url.replace("{slug}", data.draw(st.sampled_from([*_skill_slugs(), "no-such-skill"]), label="slug"))
    body = data.draw(
        st.one_of(
            st.fixed_dictionaries({}, optional=dict.fromkeys(fields, VALUES)),
            VALUES,
        ),
        label="body",
    )
    before = counts(alpha)

    response = post_raw(admin_api, url, encode(body), method=method)

    assert response.status_code < 500, (response.status_code, url, body)
    if response.status_code >= 400:
        assert counts(alpha) == before, (url, body)
        assert response.json(), "a refusal says why"


@FUZZ
@given(limit=TEXT, offset=TEXT)
def test_api_lists_never_answer_5xx_whatever_the_paging(alpha, admin_api, limit, offset):
    query = urllib.parse.urlencode(
        {"limit": limit.encode("utf-8", "surrogatepass"), "offset": offset.encode("utf-8", "surrogatepass")}
    )
    for path in ("/api/v1/heartbeats/", "/api/v1/approvals/requests/"):
        response = admin_api.get(f"{path}?{query}")
        connection.set_schema_to_public()
        assert response.status_code < 500, (path, limit, offset)


# --- admin changelists -------------------------------------------------------------------------


def changelists() -> list[tuple[str, list[str]]]:
    """(changelist URL, its filter parameter names) of every model in the tenant admin."""
    found = []
    for model, model_admin in tenant_site._registry.items():
        names = []
        for spec in model_admin.list_filter:
            name = spec if isinstance(spec, str) else getattr(spec, "parameter_name", None)
            if isinstance(spec, tuple):
                name = spec[0]
            if name:
                names += [name, f"{name}__exact"]
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        found.append((url, names))
    return found


@FUZZ
@given(value=TEXT)
def test_admin_changelists_never_answer_5xx_whatever_the_search_or_filters(alpha, make_user, value):
    client = tenant_client(alpha, make_user(alpha, Role.TENANT_ADMIN))
    raw_value = value.encode("utf-8", "surrogatepass")
    for url, filters in changelists():
        query = urllib.parse.urlencode({"q": raw_value, **dict.fromkeys(filters, raw_value), "o": raw_value})
        response = client.get(f"{url}?{query}")
        connection.set_schema_to_public()
        assert response.status_code < 500, (url, value)
