"""The lean Instantly accept path (connectors.ingest), called as the WSGI server calls it.

Most tests run the same requests through the accept path and through Django alone (the
reference view, ``connectors.api.instantly_webhook``) and expect the same answers.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from wsgiref.util import setup_testing_defaults

import pytest
from auditlog.models import LogEntry
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import (
    DEFAULT_DB_ALIAS,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from django.urls import reverse
from django_tenants.utils import tenant_context

from approvals.models import Status
from approvals.services import action_approve
from approvals.tests.factories import email_payload, propose_email, set_phase
from connectors import ingest, services
from connectors.ingest import INSTANTLY_PATH, InstantlyIngest
from connectors.models import Suppression, WebhookEndpoint, WebhookEvent
from tenants.models import Tenant
from tenants.roles import Role
from tests.fixtures import host_of

pytestmark = pytest.mark.django_db
WRONG_SECRET = "Missing or wrong X-MH1-Webhook-Secret header."


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    data: dict = field(default_factory=dict)
    by_django: bool = False  # Django's handler answered (not the accept path)


class DjangoHandler(WSGIHandler):
    """Django's WSGI handler, noting that it was called."""

    called = False

    def __call__(self, environ, start_response):
        self.called = True
        return super().__call__(environ, start_response)


@pytest.fixture(scope="module")
def django_app():
    return DjangoHandler()


@pytest.fixture(scope="module")
def fast_app(django_app):
    return InstantlyIngest(django_app)


@pytest.fixture(autouse=True)
def _wsgi_in_test_transaction(monkeypatch):
    """As Django's test client does: no request may close the test's connection mid-transaction."""
    ingest.cache_clear()
    monkeypatch.setattr(ingest, "close_old_connections", lambda: None)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    ingest.cache_clear()


@pytest.fixture(params=["fast", "django"])
def app(request, fast_app, django_app):
    """The accept path, then Django alone: the same requests must get the same answers."""
    return fast_app if request.param == "fast" else django_app


def call(
    app, tenant: Tenant | str, *, body=None, secret=None, method="POST", path=INSTANTLY_PATH, headers=None
):
    """One request as a WSGI server makes it; the schema is public again afterwards."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "HTTP_HOST": tenant if isinstance(tenant, str) else host_of(tenant),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    if secret is not None:
        environ["HTTP_X_MH1_WEBHOOK_SECRET"] = secret
    environ.update(headers or {})
    setup_testing_defaults(environ)
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"], started["headers"] = status, dict(response_headers)

    django_app = django_app_of(app)
    django_app.called = False
    result = app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    connection.set_schema_to_public()
    answer = Answer(
        int(started["status"].split()[0]), started["headers"], content, by_django=django_app.called
    )
    if started["headers"].get("Content-Type") == "application/json":
        answer.data = json.loads(content)
    return answer


def django_app_of(app):
    """The Django handler behind ``app`` (``app`` itself when it is Django's)."""
    return app.django_app if isinstance(app, InstantlyIngest) else app


def endpoint_secret(tenant: Tenant) -> str:
    with tenant_context(tenant):
        secret = str(WebhookEndpoint.objects.create(system="instantly").secret)
    connection.set_schema_to_public()
    return secret


def events_in(tenant: Tenant) -> list[WebhookEvent]:
    with tenant_context(tenant):
        events = list(WebhookEvent.objects.order_by("pk"))
    connection.set_schema_to_public()
    return events


def opened(ref: str = "e-1", **extra) -> dict:
    return {
        "event_type": "email_opened",
        "lead_email": "Lee@Prospect.example",
        "email_id": ref,
        "timestamp": "2026-01-05T10:00:00.000Z",
        "campaign_id": "camp-1",
        **extra,
    }


@pytest.fixture
def alpha_secret(alpha) -> str:
    return endpoint_secret(alpha)


def test_event_is_stored_once_and_its_replays_answer_the_same_id(app, alpha, alpha_secret):
    answers = [call(app, alpha, body=opened(), secret=alpha_secret) for _ in range(3)]

    assert [a.status for a in answers] == [200, 200, 200]
    assert {a.by_django for a in answers} == {app is django_app_of(app)}
    stored_id = answers[0].data["id"]
    assert answers[0].data == {"status": "stored", "id": stored_id, "outcome": "stored"}
    assert [a.data for a in answers[1:]] == [{"status": "duplicate", "id": stored_id}] * 2
    [event] = events_in(alpha)
    assert (event.pk, event.event_id, event.event_type, event.email, event.outcome) == (
        stored_id,
        "email_opened:e-1",
        "email_opened",
        "lee@prospect.example",
        "stored",
    )
    assert event.payload == opened()


@pytest.mark.parametrize(
    ("secret", "body", "status", "message"),
    [
        ("wrong", opened(), 401, WRONG_SECRET),
        ("", opened(), 401, WRONG_SECRET),
        (None, opened(), 401, WRONG_SECRET),
        ("right", b"{not json", 400, "Body is not valid JSON."),
        ("right", b"", 400, "Body is not valid JSON."),
        ("right", b"\xff\xfe{", 400, "Body is not valid JSON."),
        ("right", [1, 2], 400, "Body must be a JSON object."),
        ("right", {"lead_email": "a@b.example"}, 400, "event_type must be a non-empty string."),
        ("right", {"event_type": ""}, 400, "event_type must be a non-empty string."),
        ("right", {"event_type": ["lead_neutral"]}, 400, "event_type must be a non-empty string."),
        ("right", opened(pad="x" * 300_000), 413, "Body larger than 262144 bytes."),
    ],
)
def test_refused_requests_say_why_and_store_nothing(app, alpha, alpha_secret, secret, body, status, message):
    answer = call(app, alpha, body=body, secret=alpha_secret if secret == "right" else secret)

    assert answer.status == status and answer.by_django == (app is django_app_of(app))
    assert answer.data == {"detail": message}
    assert events_in(alpha) == []


@pytest.mark.parametrize(
    "event_type",
    ["lead_neutral", "lead_wrong_person", "lead_no_show", "lead_closed", "Hot lead 🔥", "new_kind"],
)
def test_events_we_do_not_act_on_are_stored_and_answered_2xx(app, alpha, alpha_secret, event_type):
    # Instantly disables a webhook after repeated non-2xx answers: then unsubscribes stop arriving.
    body = {"event_type": event_type, "lead_email": "Lee@Prospect.example", "email_id": "l-1"}

    first = call(app, alpha, body=body, secret=alpha_secret)
    again = call(app, alpha, body=body, secret=alpha_secret)

    assert (first.status, first.data) == (
        200,
        {"status": "stored", "id": first.data["id"], "outcome": "stored"},
    )
    assert (again.status, again.data) == (200, {"status": "duplicate", "id": first.data["id"]})
    [event] = events_in(alpha)
    assert (event.event_type, event.email, event.outcome) == (event_type, "lee@prospect.example", "stored")


def test_email_is_made_canonical_and_an_invalid_one_is_stored_without_effect(app, alpha, alpha_secret):
    named = call(app, alpha, body=opened(lead_email="Lee <Lee@Prospect.example>"), secret=alpha_secret)
    bad = {"event_type": "lead_unsubscribed", "lead_email": "not an address", "email_id": "u-9"}
    unsubscribed = call(app, alpha, body=bad, secret=alpha_secret)

    assert named.status == unsubscribed.status == 200
    assert unsubscribed.data["outcome"].startswith("not applied: no valid email")
    assert [e.email for e in events_in(alpha)] == ["lee@prospect.example", ""]
    with tenant_context(alpha):
        assert not Suppression.objects.exists()


def test_unknown_secret_is_refused_before_the_body_is_read(app, alpha, alpha_secret):
    answer = call(app, alpha, body=opened(pad="x" * 300_000), secret="wrong")

    assert (answer.status, answer.data) == (401, {"detail": WRONG_SECRET})


def test_tenant_without_an_active_endpoint_refuses_every_secret(app, alpha, alpha_secret):
    with tenant_context(alpha):
        WebhookEndpoint.objects.update(is_active=False)

    answer = call(app, alpha, body=opened(), secret=alpha_secret)

    assert (answer.status, answer.data) == (401, {"detail": WRONG_SECRET})
    assert events_in(alpha) == []


@pytest.fixture
def ae(alpha, make_user):
    user = make_user(alpha, Role.AE)
    connection.set_tenant(alpha)
    set_phase("assisted")
    connection.set_schema_to_public()
    return user


def test_unsubscribe_suppresses_at_once_and_cancels_open_sends(app, alpha, alpha_secret, ae):
    connection.set_tenant(alpha)
    approved = propose_email(payload=email_payload(to="gone@prospect.example"))
    action_approve(request_id=approved.pk, acting_user=ae)
    other = propose_email(payload=email_payload(to="stay@prospect.example"))
    connection.set_schema_to_public()
    body = {"event_type": "lead_unsubscribed", "lead_email": "Gone@Prospect.example", "email_id": "u-1"}

    first = call(app, alpha, body=body, secret=alpha_secret, headers={"HTTP_X_CORRELATION_ID": "unsub-1"})
    again = call(app, alpha, body=body, secret=alpha_secret)

    assert first.status == 200 and first.by_django == (app is django_app_of(app))
    assert first.data == {
        "status": "stored",
        "id": first.data["id"],
        "outcome": "suppressed gone@prospect.example; cancelled 1 open send(s)",
    }
    assert again.data == {"status": "duplicate", "id": first.data["id"]}
    with tenant_context(alpha):
        assert Suppression.objects.get(email="gone@prospect.example").reason == "unsubscribed"
        approved.refresh_from_db()
        other.refresh_from_db()
        assert approved.status == Status.CANCELLED
        assert approved.cancel_reason == "Recipient suppressed (unsubscribed, from instantly)."
        assert other.status == Status.PENDING
        assert WebhookEvent.objects.get().outcome == first.data["outcome"]
        # the cancellation's audit entry names the request it came from, as under Django's middleware
        latest = LogEntry.objects.get_for_object(approved).first()
        assert (latest.changes, latest.cid) == ({"status": ["approved", "cancelled"]}, "unsub-1")


def test_bounce_suppresses_once_however_often_it_is_replayed(app, alpha, alpha_secret):
    body = {"event_type": "email_bounced", "lead_email": "b@x.example", "email_id": "bounce-7"}

    answers = [call(app, alpha, body=body, secret=alpha_secret).data["status"] for _ in range(3)]

    assert answers == ["stored", "duplicate", "duplicate"]
    assert len(events_in(alpha)) == 1
    with tenant_context(alpha):
        assert Suppression.objects.get(email="b@x.example").reason == "bounced"


def test_one_tenants_secret_does_not_open_another_tenants_host(app, alpha, bravo, alpha_secret):
    endpoint_secret(bravo)

    answer = call(app, bravo, body=opened(), secret=alpha_secret)

    assert (answer.status, answer.data) == (401, {"detail": WRONG_SECRET})
    assert events_in(alpha) == [] and events_in(bravo) == []


def test_each_tenant_stores_its_own_events(app, alpha, bravo, alpha_secret):
    bravo_secret = endpoint_secret(bravo)

    in_alpha = call(app, alpha, body=opened(), secret=alpha_secret)
    in_bravo = call(app, bravo, body=opened(), secret=bravo_secret)

    assert in_alpha.data["status"] == in_bravo.data["status"] == "stored"
    assert (
        [e.event_id for e in events_in(alpha)]
        == [e.event_id for e in events_in(bravo)]
        == ["email_opened:e-1"]
    )


@pytest.mark.parametrize("host", ["dormant.localhost", "nobody.localhost", "localhost"])
def test_inactive_unknown_and_public_hosts_answer_404(app, tenants, host):
    dormant_secret = endpoint_secret(tenants["dormant"])

    answer = call(app, host, body=opened(), secret=dormant_secret)

    assert answer.status == 404 and answer.by_django  # Django reads the tenant afresh and refuses
    assert events_in(tenants["dormant"]) == []


def test_other_methods_are_left_to_django(app, alpha, alpha_secret):
    answer = call(app, alpha, method="GET", secret=alpha_secret)

    assert answer.status == 405 and answer.headers["Allow"] == "POST" and answer.by_django


def test_other_paths_are_answered_by_django(fast_app, alpha, alpha_secret):
    login = call(fast_app, alpha, method="GET", path="/admin/login/")
    hubspot = call(fast_app, alpha, body=[], path="/api/v1/webhooks/hubspot/", secret=alpha_secret)
    no_slash = call(fast_app, alpha, method="GET", path=INSTANTLY_PATH.rstrip("/"), secret=alpha_secret)

    assert all(answer.by_django for answer in (login, hubspot, no_slash))
    assert login.status == 200 and "text/html" in login.headers["Content-Type"]
    assert hubspot.status == 401 and hubspot.data["detail"].startswith("Missing, wrong or expired")
    assert no_slash.status == 301 and no_slash.headers["Location"] == INSTANTLY_PATH
    assert events_in(alpha) == []


def test_the_path_is_the_one_the_urlconf_routes_to_the_view():
    assert reverse("webhook-instantly", urlconf="mh1.urls_tenant") == INSTANTLY_PATH


def test_same_rows_headers_and_answers_as_the_view(fast_app, django_app, alpha, bravo, alpha_secret):
    bravo_secret = endpoint_secret(bravo)
    long_ref = "r" * 250
    requests = [
        opened(),
        opened(),
        {"event_type": "reply_received", "email": "Reply@X.example", "timestamp": "t1", "campaign_id": "c"},
        {"event_type": "link_clicked", "lead_email": "c@x.example", "email_id": long_ref, "n": [1.5, None]},
        {"event_type": "lead_unsubscribed", "lead_email": "u@x.example", "email_id": 42},
        {"event_type": "campaign_completed"},
    ]

    fast = [call(fast_app, alpha, body=body, secret=alpha_secret) for body in requests]
    view = [call(django_app, bravo, body=body, secret=bravo_secret) for body in requests]

    def comparable(answers, events):
        ids = {event.pk: n for n, event in enumerate(events)}
        return [(a.status, {**a.data, "id": ids[a.data["id"]]}) for a in answers], [
            (e.event_id, e.event_type, e.email, e.payload, e.outcome) for e in events
        ]

    assert not any(answer.by_django for answer in fast)
    assert comparable(fast, events_in(alpha)) == comparable(view, events_in(bravo))
    assert len(events_in(alpha)) == 5
    assert {e.event_id for e in events_in(alpha)} >= {f"link_clicked:{long_ref}"[:200], "email_opened:e-1"}
    # Vary: Cookie comes from Django's audit middleware reading the session; the accept path
    # reads no cookie, so its answer does not vary by one.
    ignored = {"X-Correlation-ID", "Content-Length", "Vary"}
    for fast_answer, view_answer in zip(fast, view, strict=True):
        assert int(fast_answer.headers["Content-Length"]) == len(fast_answer.body)
        assert {k: v for k, v in fast_answer.headers.items() if k not in ignored} == {
            k: v for k, v in view_answer.headers.items() if k not in ignored
        }


def test_correlation_id_is_taken_from_the_caller_or_made(app, alpha, alpha_secret):
    given = call(app, alpha, body=opened(), secret=alpha_secret, headers={"HTTP_X_CORRELATION_ID": "inst-42"})
    made = call(
        app, alpha, body=opened("e-2"), secret=alpha_secret, headers={"HTTP_X_CORRELATION_ID": "bad id!"}
    )

    assert given.headers["X-Correlation-ID"] == "inst-42"
    assert made.headers["X-Correlation-ID"] not in ("", "bad id!")


def test_database_error_answers_503_with_a_message_and_stores_nothing(
    fast_app, alpha, alpha_secret, caplog, monkeypatch
):
    insert = "INSERT INTO no_such_table VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING 1"
    monkeypatch.setattr(ingest, "_statements", lambda schema: (insert, "SELECT 1"))

    with caplog.at_level(logging.ERROR, logger="connectors.ingest"), transaction.atomic():
        answer = call(fast_app, alpha, body=opened(), secret=alpha_secret)
        transaction.set_rollback(True)  # the failed statement aborted the test's transaction

    assert (answer.status, answer.data) == (503, {"detail": ingest.RETRY_LATER})
    assert "database error" in caplog.text and "no_such_table" in caplog.text
    assert events_in(alpha) == []


def test_a_nul_character_postgresql_cannot_store_is_replaced_not_refused(app, alpha, alpha_secret):
    # Well-formed JSON that jsonb refuses (\u0000) must not be answered 5xx for ever.
    answer = call(app, alpha, body=opened(note="nul \u0000 byte", **{"k\u0000": 1}), secret=alpha_secret)

    assert (answer.status, answer.data["status"]) == (200, "stored")
    [event] = events_in(alpha)
    assert event.payload["note"] == "nul \ufffd byte" and event.payload["k\ufffd"] == 1


def test_suppression_that_fails_is_forgotten_so_the_retry_applies_it(app, alpha, alpha_secret, monkeypatch):
    body = {"event_type": "email_bounced", "lead_email": "gone@x.example", "email_id": "s-1"}

    def outage(event):
        raise OperationalError("could not obtain lock")

    with monkeypatch.context() as patch:
        patch.setattr(services, "webhook_event_apply", outage)
        failed = call(app, alpha, body=body, secret=alpha_secret)
    kept = events_in(alpha)
    retried = call(app, alpha, body=body, secret=alpha_secret)

    assert failed.status in (500, 503)  # the accept path answers 503 "retry", Django its 500
    assert kept == []
    assert retried.data["status"] == "stored"
    assert [e.outcome for e in events_in(alpha)] == [retried.data["outcome"]]
    with tenant_context(alpha):
        assert Suppression.objects.get(email="gone@x.example").reason == "bounced"


def test_rotated_secret_and_deactivated_tenant_take_effect_within_the_cache_time(
    fast_app, alpha, bravo, alpha_secret, monkeypatch, settings
):
    settings.WEBHOOK_INGEST_CACHE_SECONDS = 30
    now = [1000.0]
    monkeypatch.setattr(ingest, "clock", lambda: now[0])
    bravo_secret = endpoint_secret(bravo)
    assert call(fast_app, alpha, body=opened("e-1"), secret=alpha_secret).status == 200
    assert call(fast_app, bravo, body=opened("e-1"), secret=bravo_secret).status == 200
    with tenant_context(alpha):
        endpoint = WebhookEndpoint.objects.get()
        endpoint.secret = "rotated-secret"
        endpoint.save()
    Tenant.objects.filter(pk=bravo.pk).update(is_active=False)

    now[0] += 29
    old_secret = call(fast_app, alpha, body=opened("e-2"), secret=alpha_secret)
    new_secret_early = call(fast_app, alpha, body=opened("e-3"), secret="rotated-secret")
    bravo_early = call(fast_app, bravo, body=opened("e-2"), secret=bravo_secret)
    now[0] += 2
    old_secret_late = call(fast_app, alpha, body=opened("e-4"), secret=alpha_secret)
    new_secret_late = call(fast_app, alpha, body=opened("e-5"), secret="rotated-secret")
    bravo_late = call(fast_app, bravo, body=opened("e-3"), secret=bravo_secret)

    assert (old_secret.status, new_secret_early.status, bravo_early.status) == (200, 401, 200)
    assert (old_secret_late.status, new_secret_late.status, bravo_late.status) == (401, 200, 404)


def test_no_cache_time_reads_the_tenant_and_secret_on_every_request(fast_app, alpha, alpha_secret, settings):
    settings.WEBHOOK_INGEST_CACHE_SECONDS = 0
    assert call(fast_app, alpha, body=opened(), secret=alpha_secret).status == 200
    with tenant_context(alpha):
        WebhookEndpoint.objects.update(is_active=False)

    assert call(fast_app, alpha, body=opened("e-2"), secret=alpha_secret).status == 401


def test_wsgi_application_is_the_accept_path_in_front_of_django(settings):
    settings.DEBUG = True  # the production guard refuses the development key otherwise
    from mh1 import wsgi

    assert settings.WSGI_APPLICATION == "mh1.wsgi.application"
    assert isinstance(wsgi.application, InstantlyIngest)
    assert wsgi.application.django_app is wsgi.django_application


@pytest.fixture
def worker_tenant(transactional_db):
    """For tests on committed rows: they end in the worker tenant, so the flush after them
    truncates only its tables (tests/fixtures.py)."""
    tenant = Tenant.objects.get(slug="worker")
    yield tenant
    connection.set_tenant(tenant)


def test_kept_connection_found_dead_costs_no_event(fast_app, worker_tenant, monkeypatch):
    monkeypatch.setattr(ingest, "close_old_connections", close_old_connections)  # as in production
    secret = endpoint_secret(worker_tenant)
    first = call(fast_app, worker_tenant, body=opened(), secret=secret)
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:  # the server drops the kept connection between requests
            cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    finally:
        other.close()

    second = call(fast_app, worker_tenant, body=opened("e-2"), secret=secret)

    assert first.data["status"] == second.data["status"] == "stored"
    assert [e.event_id for e in events_in(worker_tenant)] == ["email_opened:e-1", "email_opened:e-2"]


def test_an_unsubscribe_reply_suppresses_at_once_and_starts_the_reply_handler(app, alpha, alpha_secret, ae):
    from skills.models import SkillRun

    connection.set_tenant(alpha)
    approved = propose_email(payload=email_payload(to="done@prospect.example"))
    action_approve(request_id=approved.pk, acting_user=ae)
    connection.set_schema_to_public()
    body = {
        "event_type": "reply_received",
        "lead_email": "Done@Prospect.example",
        "email_id": "r-1",
        "reply_subject": "Re: Globex",
        "reply_text": "Please remove me from your list.\n\nOn Mon, Sam wrote:\n> Interested in a call?",
    }

    first = call(app, alpha, body=body, secret=alpha_secret)
    again = call(app, alpha, body=body, secret=alpha_secret)

    assert first.status == 200 and again.data == {"status": "duplicate", "id": first.data["id"]}
    assert first.data["outcome"] == (
        "reply: unsubscribe; suppressed done@prospect.example; cancelled 1 open send(s); "
        "reply-handler started"
    )
    with tenant_context(alpha):
        assert Suppression.objects.get(email="done@prospect.example").reason == "unsubscribed"
        approved.refresh_from_db()
        assert approved.status == Status.CANCELLED
        run = SkillRun.objects.get()
        event = WebhookEvent.objects.get()
        assert (run.skill, run.inputs, run.trigger) == ("reply-handler", {"event_id": event.pk}, "webhook")


def test_an_interested_reply_suppresses_nothing_and_starts_one_run(app, alpha, alpha_secret):
    from skills.models import SkillRun

    body = {
        "event_type": "reply_received",
        "lead_email": "keen@prospect.example",
        "email_id": "r-2",
        "reply_text": "Sounds interesting. Can we book a call next week?",
    }

    answer = call(app, alpha, body=body, secret=alpha_secret)

    assert answer.status == 200 and answer.data["outcome"] == "reply: interested; reply-handler started"
    with tenant_context(alpha):
        assert not Suppression.objects.exists()
        assert SkillRun.objects.get().status == "queued"
