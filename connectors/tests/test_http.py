"""VendorHTTP against mocked vendors (respx) and the real Redis that holds the shared rate limit."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import redis
import respx

from connectors.errors import (
    CircuitOpenError,
    ConnectorError,
    FatalError,
    OutcomeUnknownError,
    RateLimitedLocally,
    RetryableError,
    VendorValidationError,
)
from connectors.http import (
    CIRCUIT_FAIL_MAX,
    ClientConfig,
    VendorHTTP,
    parse_retry_after,
    reset_circuit_breakers,
)

BASE = "https://vendor.test"
TOKEN = "sk-live-SECRET-do-not-log-1234"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_circuit_breakers()
    yield
    reset_circuit_breakers()


@pytest.fixture
def router():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_http(sleeps: list[float], **overrides) -> VendorHTTP:
    options = {
        "system": "instantly",
        "base_url": BASE,
        "token": TOKEN,
        "tenant_key": f"tenant-{uuid.uuid4().hex[:8]}",
        "max_attempts": 4,
    }
    options.update(overrides)
    return VendorHTTP(ClientConfig(**options), sleep=sleeps.append)


def test_success_returns_the_response_and_sends_the_bearer_token(router, sleeps):
    route = router.get("/ping").respond(200, json={"ok": True})

    response = make_http(sleeps).request("GET", "/ping")

    assert response.json() == {"ok": True}
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sleeps == []


def test_429_with_retry_after_is_retried_once_and_the_wait_is_honoured(router, sleeps):
    route = router.get("/campaigns").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"statusCode": 429, "message": "slow"}),
            httpx.Response(200, json={"items": []}),
        ]
    )

    response = make_http(sleeps).request("GET", "/campaigns")

    assert response.status_code == 200
    assert route.call_count == 2
    assert sleeps == [7.0]  # the backoff (<= 1s here) is below what the vendor asked for


def test_retry_after_as_http_date_is_honoured(router, sleeps):
    later = datetime.now(UTC).timestamp() + 12
    date = httpx.Headers({"d": datetime.fromtimestamp(later, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")})["d"]
    router.get("/x").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": date}), httpx.Response(200, json={})]
    )

    make_http(sleeps).request("GET", "/x")

    assert len(sleeps) == 1 and 10 <= sleeps[0] <= 12


def test_retry_after_beyond_backoff_max_is_handed_back_instead_of_waited(router, sleeps):
    route = router.get("/x").respond(429, headers={"Retry-After": "120"}, json={"message": "daily limit"})

    with pytest.raises(RetryableError) as caught:
        make_http(sleeps, backoff_max=30).request("GET", "/x")

    assert route.call_count == 1 and sleeps == []
    assert caught.value.retry_after == 120 and caught.value.status_code == 429


def test_parse_retry_after():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_5xx_is_retried_up_to_max_attempts_with_growing_backoff(router, sleeps):
    route = router.get("/leads").respond(
        503, json={"statusCode": 503, "error": "Unavailable", "message": "down"}
    )

    with pytest.raises(RetryableError) as caught:
        make_http(sleeps, max_attempts=4, backoff_base=0.5).request("GET", "/leads")

    assert route.call_count == 4
    assert len(sleeps) == 3
    # exponential: 0.5, 1, 2 (+ up to 0.5 jitter each)
    assert [0.5 <= sleeps[0] <= 1.0, 1.0 <= sleeps[1] <= 1.5, 2.0 <= sleeps[2] <= 2.5] == [True] * 3
    assert caught.value.kind == "retryable" and caught.value.status_code == 503
    assert caught.value.vendor_message == "down"


def test_400_is_a_validation_error_with_the_vendor_message_and_is_not_retried(router, sleeps):
    route = router.post("/leads").respond(
        400,
        json={
            "statusCode": 400,
            "error": "Bad Request",
            "message": "body/leads must NOT have more than 1000 items",
        },
    )

    with pytest.raises(VendorValidationError) as caught:
        make_http(sleeps).request("POST", "/leads", json={})

    assert route.call_count == 1 and sleeps == []
    assert caught.value.kind == "validation"
    assert caught.value.vendor_message == "body/leads must NOT have more than 1000 items"
    assert str(caught.value) == (
        "instantly validation error (HTTP 400) [Bad Request]: body/leads must NOT have more than 1000 items"
    )


def test_401_is_fatal_and_not_retried(router, sleeps):
    route = router.get("/me").respond(
        401, json={"statusCode": 401, "error": "Unauthorized", "message": "Invalid API key"}
    )

    with pytest.raises(FatalError) as caught:
        make_http(sleeps).request("GET", "/me")

    assert route.call_count == 1
    assert caught.value.kind == "fatal" and caught.value.status_code == 401


@pytest.mark.parametrize("status", [403, 404, 409])
def test_other_client_errors_are_fatal(router, sleeps, status):
    router.get("/x").respond(status, json={"message": "no"})

    with pytest.raises(FatalError):
        make_http(sleeps).request("GET", "/x")


def test_ok_statuses_are_returned_to_the_client(router, sleeps):
    router.get("/x").respond(404, json={"message": "not found"})

    assert make_http(sleeps).request("GET", "/x", ok_statuses=(404,)).status_code == 404


def test_timeout_is_retried_then_succeeds(router, sleeps):
    route = router.get("/slow").mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json={})])

    assert make_http(sleeps).request("GET", "/slow").status_code == 200
    assert route.call_count == 2 and len(sleeps) == 1


def test_connection_errors_exhaust_into_a_retryable_error(router, sleeps):
    router.get("/down").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(RetryableError, match="connection failed"):
        make_http(sleeps, max_attempts=2).request("GET", "/down")


def test_the_client_uses_the_configured_timeout(sleeps):
    http = make_http(sleeps, timeout=4.5)

    assert http._client.timeout == httpx.Timeout(4.5)


def test_circuit_opens_after_repeated_failures_and_then_sends_nothing(router, sleeps):
    route = router.get("/x").respond(503, json={"message": "down"})
    tenant = "tenant-circuit"
    http = make_http(sleeps, tenant_key=tenant, max_attempts=1)

    for _ in range(CIRCUIT_FAIL_MAX):
        # the tripping call still reports what the vendor said
        with pytest.raises(RetryableError) as caught:
            http.request("GET", "/x")
        assert not isinstance(caught.value, CircuitOpenError)

    # a second instance for the same tenant and vendor shares the breaker
    with pytest.raises(CircuitOpenError):
        make_http(sleeps, tenant_key=tenant).request("GET", "/x")

    assert route.call_count == CIRCUIT_FAIL_MAX
    # another tenant is not affected
    router.get("/y").respond(200, json={})
    assert make_http(sleeps, tenant_key="tenant-other").request("GET", "/y").status_code == 200


def test_circuit_open_mid_retry_stops_retrying(router, sleeps):
    route = router.get("/x").respond(500)
    http = make_http(sleeps, max_attempts=10)

    with pytest.raises(CircuitOpenError):
        http.request("GET", "/x")

    assert route.call_count == CIRCUIT_FAIL_MAX


def test_validation_and_fatal_errors_do_not_open_the_circuit(router, sleeps):
    router.get("/bad").respond(400, json={"message": "bad"})
    router.get("/ok").respond(200, json={})
    http = make_http(sleeps)

    for _ in range(CIRCUIT_FAIL_MAX * 2):
        with pytest.raises(VendorValidationError):
            http.request("GET", "/bad")

    assert http.request("GET", "/ok").status_code == 200


# --- shared rate limit (real Redis) ---------------------------------------------------------------


@pytest.fixture
def rl_prefix():
    prefix = f"mh1-test-rl-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_rate_limit_is_shared_by_instances_of_the_same_tenant(router, sleeps, rl_prefix):
    route = router.get("/x").respond(200, json={})
    shared = {"tenant_key": "tenant-rl", "requests_per_minute": 2, "redis_url": REDIS_URL}
    first = make_http(sleeps, rate_limit_prefix=rl_prefix, **shared)
    second = make_http(sleeps, rate_limit_prefix=rl_prefix, **shared)

    first.request("GET", "/x")
    second.request("GET", "/x")
    with pytest.raises(RateLimitedLocally) as caught:
        first.request("GET", "/x")

    assert route.call_count == 2
    assert 50 < caught.value.retry_after <= 60 and caught.value.kind == "retryable"
    assert sleeps == []  # a minute is beyond rate_limit_max_wait: refused at once, nothing waited
    # another tenant has its own budget
    other = make_http(
        sleeps,
        rate_limit_prefix=rl_prefix,
        tenant_key="tenant-rl-2",
        requests_per_minute=2,
        redis_url=REDIS_URL,
    )
    assert other.request("GET", "/x").status_code == 200
    assert any(
        key.startswith(rl_prefix.encode())
        for key in redis.Redis.from_url(REDIS_URL).scan_iter(f"{rl_prefix}*")
    )


def test_rate_limit_waits_when_the_window_frees_within_the_bound(router, rl_prefix):
    router.get("/x").respond(200, json={})
    client = redis.Redis.from_url(REDIS_URL)
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        # stands in for the minute passing: the window empties
        waited.append(seconds)
        client.delete(*client.scan_iter(f"{rl_prefix}*"))

    config = ClientConfig(
        system="hubspot",
        base_url=BASE,
        token=TOKEN,
        tenant_key="tenant-wait",
        requests_per_minute=1,
        redis_url=REDIS_URL,
        rate_limit_prefix=rl_prefix,
        rate_limit_max_wait=90,
    )
    http = VendorHTTP(config, sleep=sleep)

    http.request("GET", "/x")
    http.request("GET", "/x")

    assert len(waited) == 1 and 50 < waited[0] <= 60
    client.close()


def test_endpoint_limit_applies_on_top_of_the_system_limit(router, sleeps, rl_prefix):
    router.get("/api/v2/emails").respond(200, json={"items": []})
    http = make_http(sleeps, rate_limit_prefix=rl_prefix, redis_url=REDIS_URL, requests_per_minute=100)

    http.request("GET", "/api/v2/emails", endpoint_limit=("emails", 1))
    with pytest.raises(RateLimitedLocally):
        http.request("GET", "/api/v2/emails", endpoint_limit=("emails", 1))


def test_unreachable_rate_limit_store_fails_closed_as_retryable(router, sleeps):
    route = router.get("/x").respond(200, json={})
    http = make_http(
        sleeps, requests_per_minute=10, redis_url="redis://127.0.0.1:1/0", rate_limit_prefix="mh1-test-down"
    )

    with pytest.raises(RetryableError, match="rate limiter is unavailable"):
        http.request("GET", "/x")
    assert route.call_count == 0


# --- secrets ----------------------------------------------------------------------------------------


def test_the_token_never_reaches_logs_errors_or_reprs(router, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    router.get("/ok").respond(200, json={})
    router.get("/echo").respond(401, json={"message": f"Invalid API key {TOKEN}"})
    router.get("/flaky").mock(side_effect=[httpx.Response(503), httpx.ReadTimeout("t"), httpx.Response(200)])
    http = make_http(sleeps)

    http.request("GET", "/ok")
    http.request("GET", "/flaky")
    with pytest.raises(FatalError) as caught:
        http.request("GET", "/echo")

    assert caplog.records, "the calls are logged"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.__dict__)
        assert "Authorization" not in repr(record.__dict__)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value.args)
    assert "[redacted]" in str(caught.value)
    assert TOKEN not in repr(http.config)


def test_calls_are_logged_with_structured_fields(router, sleeps, caplog):
    caplog.set_level(logging.INFO, logger="connectors.http")
    router.get("/crm/v3/objects/contacts/a@b.example").respond(200, json={})

    make_http(sleeps, system="hubspot", tenant_key="tenant-log").request(
        "GET", "/crm/v3/objects/contacts/a@b.example"
    )

    (record,) = [r for r in caplog.records if r.getMessage() == "vendor call"]
    assert (record.vendor, record.tenant, record.method, record.status) == (
        "hubspot",
        "tenant-log",
        "GET",
        200,
    )
    assert record.path == "/crm/v3/objects/contacts/<email>"  # no personal data in logs


def test_connector_error_converts_to_the_approvals_execution_errors():
    from approvals.errors import FatalExecutionError, RetryableExecutionError

    assert isinstance(RetryableError("hubspot", "x").as_execution_error(), RetryableExecutionError)
    assert isinstance(VendorValidationError("hubspot", "x").as_execution_error(), FatalExecutionError)
    assert isinstance(FatalError("hubspot", "x").as_execution_error(), FatalExecutionError)
    assert isinstance(RateLimitedLocally("hubspot", 3.0), ConnectorError)


def test_post_that_times_out_after_sending_is_not_repeated():
    import httpx
    import respx

    from connectors.errors import OutcomeUnknownError
    from connectors.http import ClientConfig, VendorHTTP

    with respx.mock(base_url="https://api.hubapi.com") as router:
        route = router.post("/crm/v3/objects/contacts").mock(side_effect=httpx.ReadTimeout("late"))
        http = VendorHTTP(
            ClientConfig(system="hubspot", base_url="https://api.hubapi.com", token="t", tenant_key="ou"),
            sleep=lambda _: None,
        )
        with pytest.raises(OutcomeUnknownError, match="may have been applied"):
            http.request("POST", "/crm/v3/objects/contacts", json={"properties": {}})
    assert route.call_count == 1


# --- non-idempotent requests: retried only when they certainly never arrived ---------------------
# Each case counts the requests that reached the mock: a POST repeated after it may have been
# applied is a second payment at Clay or a duplicate contact at GoHighLevel.


@pytest.mark.parametrize("status", [500, 502, 504])
def test_post_answered_5xx_is_tried_once_and_raises_outcome_unknown(router, sleeps, status):
    route = router.post("/rows").respond(status, json={"message": "upstream broke"})

    with pytest.raises(OutcomeUnknownError) as caught:
        make_http(sleeps).request("POST", "/rows", json={"email": "a@b.example"})

    assert route.call_count == 1 and sleeps == []
    assert caught.value.status_code == status
    assert "may have been applied" in str(caught.value)


def test_post_502_without_retry_after_is_unknown(router, sleeps):
    route = router.post("/rows").respond(502)

    with pytest.raises(OutcomeUnknownError):
        make_http(sleeps).request("POST", "/rows", json={})

    assert route.call_count == 1


def test_post_503_without_retry_after_is_unknown(router, sleeps):
    route = router.post("/rows").respond(503, json={"message": "down"})

    with pytest.raises(OutcomeUnknownError):
        make_http(sleeps).request("POST", "/rows", json={})

    assert route.call_count == 1


def test_post_503_with_retry_after_is_retried(router, sleeps):
    route = router.post("/rows").mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(200, json={"id": 1})]
    )

    assert make_http(sleeps).request("POST", "/rows", json={}).json() == {"id": 1}
    assert route.call_count == 2 and sleeps == [2.0]


def test_post_answered_429_is_retried(router, sleeps):
    route = router.post("/rows").mock(side_effect=[httpx.Response(429), httpx.Response(201, json={})])

    assert make_http(sleeps).request("POST", "/rows", json={}).status_code == 201
    assert route.call_count == 2


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_post_with_connect_error_is_retried(router, sleeps, error):
    route = router.post("/rows").mock(side_effect=[error("never sent"), httpx.Response(200, json={})])

    assert make_http(sleeps).request("POST", "/rows", json={}).status_code == 200
    assert route.call_count == 2


def test_post_whose_connection_never_opens_exhausts_into_a_retryable_error(router, sleeps):
    route = router.post("/rows").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(RetryableError, match="connection failed"):
        make_http(sleeps, max_attempts=3).request("POST", "/rows", json={})

    assert route.call_count == 3


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError],
)
def test_post_failing_after_it_may_have_been_sent_is_tried_once_and_unknown(router, sleeps, error):
    route = router.post("/rows").mock(side_effect=error("mid-flight"))

    with pytest.raises(OutcomeUnknownError, match="may have been applied"):
        make_http(sleeps).request("POST", "/rows", json={})

    assert route.call_count == 1 and sleeps == []


def test_patch_is_not_idempotent_unless_the_caller_says_so(router, sleeps):
    route = router.patch("/contacts/1").respond(502)

    with pytest.raises(OutcomeUnknownError):
        make_http(sleeps).request("PATCH", "/contacts/1", json={})
    assert route.call_count == 1

    with pytest.raises(RetryableError):
        make_http(sleeps, max_attempts=3).request("PATCH", "/contacts/1", json={}, idempotent=True)
    assert route.call_count == 1 + 3


def test_post_declared_idempotent_keeps_the_retries(router, sleeps):
    route = router.post("/search").mock(
        side_effect=[
            httpx.Response(500),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json={"results": []}),
        ]
    )

    response = make_http(sleeps).request("POST", "/search", json={}, idempotent=True)

    assert response.json() == {"results": []}
    assert route.call_count == 3


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_idempotent_methods_keep_their_retries_on_5xx_and_read_errors(router, sleeps, method):
    route = router.route(method=method, path="/thing").mock(
        side_effect=[httpx.Response(502), httpx.ReadError("reset"), httpx.Response(200, json={})]
    )

    assert make_http(sleeps).request(method, "/thing").status_code == 200
    assert route.call_count == 3


def test_an_unknown_outcome_counts_as_a_vendor_failure_for_the_circuit(router, sleeps):
    route = router.post("/rows").respond(500)
    http = make_http(sleeps, tenant_key="tenant-unknown-circuit")

    for _ in range(CIRCUIT_FAIL_MAX):
        with pytest.raises(OutcomeUnknownError):
            http.request("POST", "/rows", json={})

    with pytest.raises(CircuitOpenError):
        http.request("POST", "/rows", json={})
    assert route.call_count == CIRCUIT_FAIL_MAX


# --- each client's POSTs: searches and state-setting calls are marked idempotent, creations are not


def _client(cls, system: str, base_url: str, **extra):
    config = ClientConfig(
        system=system,
        base_url=base_url,
        token=TOKEN,
        tenant_key=f"tenant-{uuid.uuid4().hex[:8]}",
        extra=extra,
    )
    return cls(config, sleep=lambda _: None)


def test_client_searches_and_state_setting_posts_are_retried_after_a_5xx():
    from connectors.clients.gohighlevel import GoHighLevelReadClient, GoHighLevelWriteClient
    from connectors.clients.hubspot import HubSpotReadClient, HubSpotWriteClient
    from connectors.clients.instantly import InstantlyWriteClient

    flaky = [httpx.Response(502), httpx.Response(200, json={})]
    with respx.mock(assert_all_called=True) as mock:
        hs_search = mock.post("https://api.hubapi.com/crm/v3/objects/contacts/search").mock(
            side_effect=flaky[:]
        )
        hs_upsert = mock.patch("https://api.hubapi.com/crm/v3/objects/contacts/a@b.example").mock(
            side_effect=[httpx.Response(502), httpx.Response(200, json={"id": "1"})]
        )
        hs_props = mock.patch("https://api.hubapi.com/crm/v3/objects/contacts/1").mock(
            side_effect=[httpx.Response(502), httpx.Response(200, json={"id": "1"})]
        )
        ghl_search = mock.post("https://ghl.test/contacts/search").mock(side_effect=flaky[:])
        ghl_tags = mock.post("https://ghl.test/contacts/c1/tags").mock(side_effect=flaky[:])
        pause = mock.post("https://instantly.test/api/v2/campaigns/c1/pause").mock(side_effect=flaky[:])
        activate = mock.post("https://instantly.test/api/v2/campaigns/c1/activate").mock(side_effect=flaky[:])
        leads = mock.post("https://instantly.test/api/v2/leads/add").mock(side_effect=flaky[:])

        _client(HubSpotReadClient, "hubspot", "https://api.hubapi.com").search_contacts([])
        hubspot = _client(HubSpotWriteClient, "hubspot", "https://api.hubapi.com")
        hubspot.upsert_contact_by_email("a@b.example", {"firstname": "A"})
        hubspot.set_properties("1", {"hs_email_optout": "true"})
        _client(GoHighLevelReadClient, "gohighlevel", "https://ghl.test", location_id="loc").search_contacts()
        _client(GoHighLevelWriteClient, "gohighlevel", "https://ghl.test", location_id="loc").add_tags(
            "c1", ["DNC"]
        )
        instantly = _client(InstantlyWriteClient, "instantly", "https://instantly.test")
        instantly.pause_campaign("c1")
        instantly.activate_campaign("c1")
        instantly.add_leads("c1", [{"email": "a@b.example"}])  # skip_if_in_campaign: a repeat adds nobody

    for route in (hs_search, hs_upsert, hs_props, ghl_search, ghl_tags, pause, activate, leads):
        assert route.call_count == 2, route


def test_client_creations_are_tried_once_after_a_5xx():
    from connectors.clients.clay import ClayWriteClient
    from connectors.clients.gohighlevel import GoHighLevelWriteClient
    from connectors.clients.hubspot import HubSpotWriteClient
    from connectors.clients.instantly import InstantlyWriteClient

    clay_url = "https://api.clay.com/v3/sources/webhook/abc"
    with respx.mock(assert_all_called=True) as mock:
        clay = mock.post(clay_url).respond(500)
        ghl_upsert = mock.post("https://ghl.test/contacts/upsert").respond(500)
        ghl_opportunity = mock.post("https://ghl.test/opportunities/").respond(504)
        mock.patch("https://api.hubapi.com/crm/v3/objects/contacts/new@b.example").respond(404)
        hs_create = mock.post("https://api.hubapi.com/crm/v3/objects/contacts").respond(502)
        block = mock.post("https://instantly.test/api/v2/block-lists-entries").respond(500)
        hook = mock.post("https://instantly.test/api/v2/webhooks").respond(500)
        leads = mock.post("https://instantly.test/api/v2/leads/add").respond(500)

        calls = [
            lambda: _client(ClayWriteClient, "clay", "").submit_row(clay_url, {"email": "a@b.example"}),
            lambda: _client(
                GoHighLevelWriteClient, "gohighlevel", "https://ghl.test", location_id="l"
            ).upsert_contact("a@b.example"),
            lambda: _client(
                GoHighLevelWriteClient, "gohighlevel", "https://ghl.test", location_id="l"
            ).create_opportunity(pipeline_id="p", stage_id="s", contact_id="c", name="n"),
            lambda: _client(HubSpotWriteClient, "hubspot", "https://api.hubapi.com").upsert_contact_by_email(
                "new@b.example", {}
            ),
            lambda: _client(InstantlyWriteClient, "instantly", "https://instantly.test").add_block_list_entry(
                "a@b.example"
            ),
            lambda: _client(InstantlyWriteClient, "instantly", "https://instantly.test").register_webhook(
                "https://x.test/hook", {}
            ),
            lambda: _client(InstantlyWriteClient, "instantly", "https://instantly.test").add_leads(
                "c1", [{"email": "a@b.example"}], skip_if_in_campaign=False
            ),
        ]
        for call in calls:
            with pytest.raises(OutcomeUnknownError):
                call()

    for route in (clay, ghl_upsert, ghl_opportunity, hs_create, block, hook, leads):
        assert route.call_count == 1, route
