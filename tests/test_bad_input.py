"""Bad input never gets a 5xx: each case of issue 10 that answered 500 (or a 503 that can never
succeed), against the real HTTP surface.

The API (``/api/v1/`` on a tenant host) answers a 4xx with a message and writes nothing. The
webhooks answer every well-formed event 2xx (NUL and lone surrogates are stored replaced), and a
body from a proven sender that can never be stored 4xx, kept as a dead letter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core import signals
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from approvals.models import ActionRequest
from connectors import ingest
from connectors.ingest import InstantlyIngest
from connectors.models import Enrichment, WebhookDeadLetter, WebhookEndpoint, WebhookEvent
from connectors.tests.test_ingest import DjangoHandler, call
from mh1.pagination import MAX_LIMIT, MAX_OFFSET
from tenants.policy.models import Heartbeat, IcpDefinition, RolloutSettings
from tenants.roles import Role

pytestmark = pytest.mark.django_db
GHL_KEY = Ed25519PrivateKey.generate()
GHL_PUBLIC_PEM = GHL_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
DEEP = "[" * 5000 + "]" * 5000


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def secrets(alpha, settings) -> dict[str, str]:
    settings.GHL_WEBHOOK_PUBLIC_KEY = GHL_PUBLIC_PEM
    with tenant_context(alpha):
        made = {
            system: str(WebhookEndpoint.objects.create(system=system).secret)
            for system in ("instantly", "hubspot", "clay")
        }
    connection.set_schema_to_public()
    return made


@pytest.fixture
def wsgi(monkeypatch):
    """Instantly's lean accept path and Django behind it, inside the test's transaction."""
    ingest.cache_clear()
    monkeypatch.setattr(ingest, "close_old_connections", lambda: None)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    django_app = DjangoHandler()
    yield {"fast": InstantlyIngest(django_app), "django": django_app}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    ingest.cache_clear()


def tenant_client(tenant, user=None) -> Client:
    client = Client(HTTP_HOST=f"{tenant.slug}.localhost", raise_request_exception=False)
    if user is not None:
        with tenant_context(tenant):
            client.force_login(user)
        connection.set_schema_to_public()
    return client


def post_raw(client: Client, path: str, body: bytes, method: str = "POST", **extra):
    response = client.generic(method, path, body, content_type="application/json", **extra)
    connection.set_schema_to_public()
    return response


def raw(text: str) -> bytes:
    """JSON text as bytes, lone surrogate escapes kept as written."""
    return text.encode("utf-8")


def hubspot(client, secret: str, body: bytes):
    timestamp = str(int(time.time() * 1000))
    uri = "http://alpha.localhost/api/v1/webhooks/hubspot/"
    signature = base64.b64encode(
        hmac.new(secret.encode(), b"POST" + uri.encode() + body + timestamp.encode(), hashlib.sha256).digest()
    ).decode()
    return post_raw(
        client,
        "/api/v1/webhooks/hubspot/",
        body,
        HTTP_X_HUBSPOT_SIGNATURE_V3=signature,
        HTTP_X_HUBSPOT_REQUEST_TIMESTAMP=timestamp,
    )


def ghl(client, body: bytes):
    signature = base64.b64encode(GHL_KEY.sign(body)).decode()
    return post_raw(client, "/api/v1/webhooks/gohighlevel/", body, HTTP_X_GHL_SIGNATURE=signature)


def clay(client, secret: str, body: bytes):
    return post_raw(client, "/api/v1/webhooks/clay/", body, HTTP_X_MH1_WEBHOOK_SECRET=secret)


def now_iso() -> str:
    return timezone.now().isoformat()


def ghl_body(fragment: str, webhook_id: str = "wh-1") -> bytes:
    return raw(
        f'{{"type": "ContactTagUpdate", "webhookId": "{webhook_id}", "timestamp": "{now_iso()}", {fragment}}}'
    )


def clay_body(fragment: str) -> bytes:
    return raw(f'{{"mh1_ref": "{uuid.uuid4()}", {fragment}}}')


def hubspot_body(fragment: str) -> bytes:
    return raw(f'[{{"eventId": 7, "subscriptionType": "contact.creation", {fragment}}}]')


def instantly_body(fragment: str) -> bytes:
    return raw(f'{{"event_type": "email_opened", "email_id": "e-1", {fragment}}}')


def rows(tenant) -> tuple[list[WebhookEvent], list[WebhookDeadLetter]]:
    with tenant_context(tenant):
        found = list(WebhookEvent.objects.order_by("pk")), list(WebhookDeadLetter.objects.order_by("pk"))
    connection.set_schema_to_public()
    return found


def send_everywhere(alpha, secrets, wsgi, fragment: str) -> dict[str, int]:
    """The same hostile fragment to every webhook (Instantly through both of its paths)."""
    statuses = {}
    # the WSGI calls first: Django's test client reconnects the connection-closing signals
    for path in ("fast", "django"):
        answer = call(wsgi[path], alpha, body=instantly_body(fragment), secret=secrets["instantly"])
        statuses[f"instantly-{path}"] = answer.status
    client = tenant_client(alpha)
    statuses["hubspot"] = hubspot(client, secrets["hubspot"], hubspot_body(fragment)).status_code
    statuses["gohighlevel"] = ghl(client, ghl_body(fragment)).status_code
    statuses["clay"] = clay(client, secrets["clay"], clay_body(fragment)).status_code
    return statuses


# --- webhooks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fragment",
    [
        '"note": NaN',
        '"note": -Infinity',
        '"note": 1e999',  # beyond a double: Python read it as infinity, which jsonb refuses
        f'"note": {DEEP}',
    ],
    ids=["nan", "infinity", "number-out-of-range", "deeply-nested"],
)
def test_webhook_body_that_can_never_be_stored_is_4xx_and_kept_as_a_dead_letter(
    alpha, secrets, wsgi, fragment
):
    statuses = send_everywhere(alpha, secrets, wsgi, fragment)

    assert set(statuses.values()) == {400}, statuses
    events, dead = rows(alpha)
    assert events == []
    assert sorted(d.system for d in dead) == ["clay", "gohighlevel", "hubspot", "instantly", "instantly"]
    assert all(d.reason.startswith("Body is not valid JSON: ") and d.body for d in dead)


def test_webhook_refusal_message_says_what_is_wrong(alpha, secrets, wsgi):
    nan = call(wsgi["fast"], alpha, body=instantly_body('"x": NaN'), secret=secrets["instantly"])
    deep = call(wsgi["django"], alpha, body=instantly_body(f'"x": {DEEP}'), secret=secrets["instantly"])

    assert nan.data == {
        "detail": "Body is not valid JSON: NaN is not a JSON number (NaN and Infinity are refused)."
    }
    assert deep.data == {"detail": "Body is not valid JSON: JSON nested deeper than 64 levels is refused."}


@pytest.mark.parametrize(
    ("fragment", "field"),
    [('"note": "lone \\ud800 surrogate"', "note"), ('"note": "nul \\u0000 byte"', "note")],
    ids=["lone-surrogate", "nul"],
)
def test_webhook_event_with_unstorable_text_is_stored_with_it_replaced(alpha, secrets, wsgi, fragment, field):
    statuses = send_everywhere(alpha, secrets, wsgi, fragment)

    assert set(statuses.values()) == {200}, statuses
    events, dead = rows(alpha)
    assert dead == []
    stored = [e for e in events if e.event_type != "rejected"]
    assert len(stored) == 4  # Instantly's second path sees a duplicate
    assert all("\ufffd" in e.payload[field] for e in stored)


@pytest.mark.parametrize("text", ["\\ud800", "\\u0000"], ids=["lone-surrogate", "nul"])
def test_unstorable_text_in_an_event_id_or_type_is_stored_replaced(alpha, secrets, text):
    client = tenant_client(alpha)
    body = raw(f'{{"type": "Contact{text}Update", "webhookId": "wh-{text}", "timestamp": "{now_iso()}"}}')

    response = ghl(client, body)

    assert response.status_code == 200, response.content
    [event], _ = rows(alpha)
    assert (event.event_id, event.event_type) == ("wh-\ufffd", "Contact\ufffdUpdate")


def test_ghl_timestamp_without_offset_is_400_and_kept(alpha, secrets):
    naive = timezone.now().replace(tzinfo=None).isoformat()
    body = raw(json.dumps({"type": "ContactTagUpdate", "webhookId": "wh-naive", "timestamp": naive}))

    response = ghl(tenant_client(alpha), body)

    assert response.status_code == 400
    assert response.json()["detail"] == f"timestamp {naive!r} has no UTC offset (e.g. 2026-01-05T10:00:00Z)."
    events, [dead] = rows(alpha)
    assert events == [] and dead.system == "gohighlevel" and "wh-naive" in dead.body


@pytest.mark.parametrize(
    "timestamp", [None, 1700000000, ["2026-01-05T10:00:00Z"], "0001-01-01T00:00:00+23:59"]
)
def test_ghl_timestamp_that_is_not_an_iso_time_with_offset_is_400(alpha, secrets, timestamp):
    body = raw(json.dumps({"type": "ContactTagUpdate", "webhookId": "wh-ts", "timestamp": timestamp}))

    response = ghl(tenant_client(alpha), body)

    assert response.status_code == 400 and "timestamp" in response.json()["detail"]
    assert rows(alpha)[0] == []


def test_content_length_that_is_not_a_number_is_400_on_both_instantly_paths(alpha, secrets, wsgi):
    body = instantly_body('"x": 1')
    answers = [
        call(wsgi[path], alpha, body=body, secret=secrets["instantly"], headers={"CONTENT_LENGTH": "abc"})
        for path in ("fast", "django")
    ]

    assert [(a.status, a.data) for a in answers] == [
        (400, {"detail": "Content-Length must be a whole number of bytes."})
    ] * 2
    assert answers[0].by_django is False  # the accept path answers it itself, as the view does


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/webhooks/hubspot/", {"HTTP_X_HUBSPOT_SIGNATURE": "0" * 64}),
        ("/api/v1/webhooks/gohighlevel/", {"HTTP_X_GHL_SIGNATURE": "AAAA"}),
        ("/api/v1/webhooks/clay/", {"HTTP_X_MH1_WEBHOOK_SECRET": "clay"}),
    ],
)
def test_content_length_that_is_not_a_number_is_400_on_the_other_webhooks(alpha, secrets, path, headers):
    # the signed webhooks check it before the signature, which reads the body (Django's
    # request.body itself raises on such a header)
    headers = {key: secrets["clay"] if value == "clay" else value for key, value in headers.items()}

    response = post_raw(tenant_client(alpha), path, b"{}", CONTENT_LENGTH="abc", **headers)

    assert response.status_code == 400, response.content
    assert response.json() == {"detail": "Content-Length must be a whole number of bytes."}


@pytest.fixture
def enrichment(alpha):
    with tenant_context(alpha):
        made = Enrichment.objects.create(ref=uuid.uuid4(), email="dana@northwind.example")
    connection.set_schema_to_public()
    return made


def test_clay_number_that_overflows_its_column_is_400_and_kept(alpha, secrets, enrichment):
    body = raw(json.dumps({"mh1_ref": str(enrichment.ref), "company_size": 10**15}))

    response = clay(tenant_client(alpha), secrets["clay"], body)

    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith("The event holds a value that cannot be stored: ")
    events, [dead] = rows(alpha)
    assert events == [] and dead.system == "clay"


def test_clay_list_where_an_email_is_expected_is_a_clear_answer(alpha, secrets, enrichment):
    body = raw(json.dumps({"mh1_ref": str(enrichment.ref), "email": ["dana@northwind.example"]}))

    response = clay(tenant_client(alpha), secrets["clay"], body)

    assert response.status_code < 500, response.content


def test_email_over_254_characters_in_a_webhook_is_stored_without_an_email(alpha, secrets, wsgi):
    long_email = "a" * 250 + "@northwind.example"
    statuses = send_everywhere(alpha, secrets, wsgi, f'"email": "{long_email}", "lead_email": "{long_email}"')

    assert max(statuses.values()) < 500, statuses
    events, _ = rows(alpha)
    assert all(e.email == "" for e in events)


def test_dead_letters_are_listed_read_only_in_the_admin(
    alpha, secrets, make_user, django_assert_max_num_queries
):
    client = tenant_client(alpha)
    for n in range(3):
        ghl(
            client,
            raw(f'{{"type": "ContactTagUpdate", "webhookId": "dl-{n}", "timestamp": "2026-01-05T10:00:00"}}'),
        )
    admin = tenant_client(alpha, make_user(alpha, Role.TENANT_ADMIN))

    with django_assert_max_num_queries(20):
        page = admin.get("/admin/connectors/webhookdeadletter/?system__exact=gohighlevel&q=dl-1")
    connection.set_schema_to_public()
    add = admin.get("/admin/connectors/webhookdeadletter/add/")
    connection.set_schema_to_public()

    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert add.status_code == 403


# --- API ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_api(alpha, make_user):
    return tenant_client(alpha, make_user(alpha, Role.TENANT_ADMIN))


def email_proposal(subject: str, key: str) -> str:
    payload = (
        '{"to": "lead@prospect.example", "to_name": "Lee", "to_title": "Head of Growth", '
        f'"subject": "{subject}", "body": "Hi"}}'
    )
    return f'{{"kind": "email.send", "payload": {payload}, "idempotency_key": "{key}"}}'


def requests_in(tenant) -> int:
    with tenant_context(tenant):
        count = ActionRequest.objects.count()
    connection.set_schema_to_public()
    return count


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("lone \\ud800 surrogate", "Text may not contain NUL characters or lone surrogates"),
        ("nul \\u0000 byte", "Text may not contain NUL characters or lone surrogates"),
        ('" , "note": 1e999, "x": "', "The number 1e999 is out of range."),
        ('" , "note": NaN, "x": "', "NaN is not a JSON number"),
        (f'" , "note": {DEEP}, "x": "', "JSON nested deeper than 64 levels is refused."),
    ],
    ids=["lone-surrogate", "nul", "number-out-of-range", "nan", "deeply-nested"],
)
def test_api_refuses_json_it_could_never_store_with_a_400(alpha, admin_api, subject, message):
    response = post_raw(admin_api, "/api/v1/approvals/requests/", raw(email_proposal(subject, "k-bad")))

    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert requests_in(alpha) == 0


def test_api_deep_nesting_in_a_policy_patch_is_400_and_changes_nothing(alpha, admin_api):
    response = post_raw(
        admin_api, "/api/v1/policy/rollout/", raw(f'{{"kill_switch_reason": {DEEP}}}'), method="PATCH"
    )

    assert response.status_code == 400
    with tenant_context(alpha):
        assert RolloutSettings.get_solo().kill_switch_reason == ""


@pytest.fixture
def heartbeats(alpha):
    with tenant_context(alpha):
        Heartbeat.objects.bulk_create([Heartbeat(worker=f"w{n}") for n in range(3)])
    connection.set_schema_to_public()


@pytest.mark.parametrize("limit", [str(2**63), str(2**70), "9" * 5000])
def test_api_limit_beyond_64_bits_is_clamped(admin_api, heartbeats, limit):
    response = admin_api.get(f"/api/v1/heartbeats/?limit={limit}")
    connection.set_schema_to_public()

    assert response.status_code == 200
    assert response.json()["count"] == 3 and len(response.json()["results"]) == 3
    assert MAX_LIMIT == 500


@pytest.mark.parametrize("offset", [str(2**63), str(2**70), str(MAX_OFFSET + 1)])
def test_api_offset_beyond_what_can_be_served_is_400(admin_api, heartbeats, offset):
    response = admin_api.get(f"/api/v1/heartbeats/?offset={offset}")
    connection.set_schema_to_public()

    assert response.status_code == 400
    assert response.json() == {"offset": [f"offset must be at most {MAX_OFFSET}."]}


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "%00"])
def test_api_limit_that_is_not_a_whole_number_is_400(admin_api, heartbeats, value):
    response = admin_api.get(f"/api/v1/heartbeats/?limit={value}")
    connection.set_schema_to_public()

    assert response.status_code == 400


def test_api_content_length_that_is_not_a_number_is_not_a_5xx(alpha, admin_api):
    response = post_raw(
        admin_api, "/api/v1/policy/rollout/", b'{"safe_mode": false}', method="PATCH", CONTENT_LENGTH="abc"
    )

    assert response.status_code < 500


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kill_switch_reason": ["a list"]}, "kill_switch_reason"),
        ({"kill_switch_reason": "x" * 501}, "kill_switch_reason"),
    ],
)
def test_api_wrong_type_or_length_is_a_field_error(alpha, admin_api, body, field):
    response = post_raw(admin_api, "/api/v1/policy/rollout/", json.dumps(body).encode(), method="PATCH")

    assert response.status_code == 400 and field in response.json()


def test_api_email_over_254_characters_is_refused_with_the_normalisers_message(alpha, admin_api):
    long_email = "a" * 250 + "@prospect.example"
    body = email_proposal("Hi", "k-long").replace("lead@prospect.example", long_email)

    response = post_raw(admin_api, "/api/v1/approvals/requests/", raw(body))

    assert response.status_code == 400
    assert "longer than 254 characters" in response.json()["detail"]
    assert requests_in(alpha) == 0


# --- the same ICP validation in the admin form and the API --------------------------------------


@pytest.mark.parametrize(
    ("domains", "message"),
    [
        (["rival.example", "not a domain"], "Not a domain name: not a domain."),
        (["under_score@x.example"], "Not a domain name: under_score@x.example."),
        (["-bad.example"], "Not a domain name: -bad.example."),
        (["nodot"], "Not a domain name: nodot."),
    ],
)
def test_api_refuses_the_icp_domains_the_admin_form_refuses(alpha, admin_api, domains, message):
    form = admin_api.post(
        "/admin/policy/icpdefinition/",
        {"company_size_min": "10", "company_size_max": "100", "competitor_domains": "\n".join(domains)},
    )
    connection.set_schema_to_public()
    api = post_raw(
        admin_api, "/api/v1/policy/icp/", json.dumps({"competitor_domains": domains}).encode(), method="PATCH"
    )

    assert form.status_code == 200 and message in str(form.context["adminform"].form.errors)
    assert api.status_code == 400 and api.json() == {"competitor_domains": [message]}
    with tenant_context(alpha):
        assert IcpDefinition.get_solo().competitor_domains == []


def test_icp_domains_are_canonical_alike_through_the_form_and_the_api(alpha, admin_api):
    api = post_raw(
        admin_api,
        "/api/v1/policy/icp/",
        json.dumps({"competitor_domains": ["WWW.Bücher.example", "rival.example."]}).encode(),
        method="PATCH",
    )
    with tenant_context(alpha):
        through_api = IcpDefinition.get_solo().competitor_domains
    connection.set_schema_to_public()
    form = admin_api.post(
        "/admin/policy/icpdefinition/",
        {
            "company_size_min": "10",
            "company_size_max": "100",
            "competitor_domains": "WWW.Bücher.example\nrival.example.",
        },
    )
    connection.set_schema_to_public()
    with tenant_context(alpha):
        through_form = IcpDefinition.get_solo().competitor_domains

    assert api.status_code == 200 and form.status_code == 302
    assert through_api == through_form == ["xn--bcher-kva.example", "rival.example"]
