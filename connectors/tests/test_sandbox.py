"""The loopback vendor sandbox speaks the documented shapes (no database needed)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from connectors.sandbox import DEMO_CAMPAIGN_ID, DEMO_PIPELINE_ID, GHL_VERSION, SandboxServer

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GHL = {**AUTH, "Version": GHL_VERSION}
CONTACTS = "/crm/v3/objects/contacts"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxServer:
    server.reset()
    return server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, trust_env=False, timeout=5) as c:
        yield c


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.headers, json.loads(body)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    httpd.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ------------------------------------------------------------------------------------------- auth


def test_auth_errors_use_each_vendors_shape(client: httpx.Client, sandbox: SandboxServer) -> None:
    r = client.get(f"{CONTACTS}/a@example.com", params={"idProperty": "email"})
    assert r.status_code == 401
    assert r.json()["status"] == "error"
    assert r.json()["category"] == "INVALID_AUTHENTICATION"

    r = client.get("/api/v2/campaigns", headers={"Authorization": "Bearer bad-key"})
    assert r.status_code == 401
    assert r.json() == {"statusCode": 401, "error": "Unauthorized", "message": "Invalid API key"}

    r = client.get("/api/v2/campaigns", headers={"Authorization": "Bearer"})
    assert r.status_code == 401

    # a scope missing on one area only: the others keep working
    noscope = {"Authorization": "Bearer key-noscope-campaigns"}
    r = client.get("/api/v2/campaigns", headers=noscope)
    assert r.status_code == 403
    assert r.json()["statusCode"] == 403
    assert "campaigns:read" in r.json()["message"]
    assert client.get("/api/v2/block-lists-entries", headers=noscope).status_code == 200

    r = client.get(f"{CONTACTS}/1", headers={"Authorization": "Bearer pat-noscope-contacts"})
    assert r.status_code == 403
    assert r.json()["category"] == "MISSING_SCOPES"
    assert r.json()["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.read"]

    # GoHighLevel: Version header on every call
    r = client.get("/opportunities/pipelines", params={"locationId": "loc1"}, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["statusCode"] == 400
    r = client.get("/opportunities/pipelines", params={"locationId": "loc1"}, headers={**GHL, **AUTH})
    assert r.status_code == 200
    r = client.get(
        "/contacts/x", headers={"Authorization": "Bearer t-noscope-contacts", "Version": GHL_VERSION}
    )
    assert r.status_code == 403

    # the control API needs no auth; the log never holds the Authorization header
    state = client.get("/_sandbox/state").json()
    assert [e["status"] for e in state["requests"]][:3] == [401, 401, 401]
    dumped = json.dumps(sandbox.state.snapshot(include_data=True))
    assert "noscope-contacts" not in dumped
    assert "bad-key" not in dumped


# ------------------------------------------------------------------------------------------- HubSpot


def test_hubspot_upsert_by_email_flow(client: httpx.Client, sandbox: SandboxServer) -> None:
    email_path = f"{CONTACTS}/Ada@Example.com"
    by_email = {"idProperty": "email"}

    r = client.get(email_path, params=by_email, headers=AUTH)
    assert r.status_code == 404
    assert {k: r.json()[k] for k in ("status", "message", "category")} == {
        "status": "error",
        "message": "resource not found",
        "category": "OBJECT_NOT_FOUND",
    }
    r = client.patch(email_path, params=by_email, headers=AUTH, json={"properties": {"firstname": "Ada"}})
    assert r.status_code == 404

    r = client.post(
        CONTACTS, headers=AUTH, json={"properties": {"email": "ada@example.com", "firstname": "Ada"}}
    )
    assert r.status_code == 201
    created = r.json()
    assert set(created) >= {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert created["archived"] is False
    contact_id = created["id"]

    r = client.post(CONTACTS, headers=AUTH, json={"properties": {"email": "ADA@example.com"}})
    assert r.status_code == 409
    assert r.json()["category"] == "CONFLICT"
    assert r.json()["message"] == f"Contact already exists. Existing ID: {contact_id}"

    r = client.patch(email_path, params=by_email, headers=AUTH, json={"properties": {"lastname": "Lovelace"}})
    assert r.status_code == 200
    assert r.json()["id"] == contact_id
    assert r.json()["properties"]["lastname"] == "Lovelace"

    r = client.get(f"{CONTACTS}/{contact_id}", headers=AUTH)
    assert r.json()["properties"]["firstname"] == "Ada"
    assert r.json()["properties"]["lastname"] == "Lovelace"

    search = {
        "filterGroups": [
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "ada@example.com"}]}
        ]
    }
    r = client.post(f"{CONTACTS}/search", headers=AUTH, json=search)
    assert r.json()["total"] == 1
    assert r.json()["results"][0]["id"] == contact_id

    r = client.post(
        f"{CONTACTS}/batch/upsert",
        headers=AUTH,
        json={
            "inputs": [{"idProperty": "email", "id": "ada@example.com", "properties": {"jobtitle": "CTO"}}]
        },
    )
    assert r.json()["results"][0]["new"] is False
    assert sandbox.state.counts()["contacts"]["hubspot"] == 1
    assert len(sandbox.state.requests_log("POST", CONTACTS)) == 4


def test_hubspot_search_can_lag_behind_writes(client: httpx.Client) -> None:
    client.post("/_sandbox/config", json={"hubspot_search_lag_seconds": 60})
    client.post(CONTACTS, headers=AUTH, json={"properties": {"email": "lag@example.com"}})
    search = {
        "filterGroups": [
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "lag@example.com"}]}
        ]
    }
    assert client.post(f"{CONTACTS}/search", headers=AUTH, json=search).json()["total"] == 0
    r = client.get(f"{CONTACTS}/lag@example.com", params={"idProperty": "email"}, headers=AUTH)
    assert r.status_code == 200


# ------------------------------------------------------------------------------------------- GoHighLevel


def test_ghl_upsert_new_flag_tags_and_opportunity(client: httpx.Client, sandbox: SandboxServer) -> None:
    body = {"locationId": "loc1", "email": "Grace@Example.com", "firstName": "Grace"}
    r = client.post("/contacts/upsert", headers=AUTH, json=body)
    assert r.status_code == 400  # no Version header
    assert sandbox.state.counts()["contacts"]["gohighlevel"] == 0

    r = client.post("/contacts/upsert", headers=GHL, json=body)
    assert r.status_code == 200
    assert r.json()["new"] is True
    contact = r.json()["contact"]
    assert contact["email"] == "grace@example.com"
    assert contact["tags"] == []

    r = client.post("/contacts/upsert", headers=GHL, json={**body, "lastName": "Hopper"})
    assert r.json()["new"] is False
    assert r.json()["contact"]["id"] == contact["id"]
    assert r.json()["contact"]["lastName"] == "Hopper"

    r = client.get(
        "/contacts/search/duplicate", params={"locationId": "loc1", "email": "grace@example.com"}, headers=GHL
    )
    assert r.json()["contact"]["id"] == contact["id"]
    r = client.get(
        "/contacts/search/duplicate", params={"locationId": "loc2", "email": "grace@example.com"}, headers=GHL
    )
    assert r.json() == {"contact": None}

    cid = contact["id"]
    assert client.post(f"/contacts/{cid}/tags", headers=GHL, json={"tags": ["mh1", "icp"]}).json() == {
        "tags": ["mh1", "icp"]
    }
    r = client.request("DELETE", f"/contacts/{cid}/tags", headers=GHL, json={"tags": ["icp"]})
    assert r.json() == {"tags": ["mh1"]}
    assert client.get(f"/contacts/{cid}", headers=GHL).json()["contact"]["tags"] == ["mh1"]
    assert client.get("/contacts/nope", headers=GHL).status_code == 404

    pipelines = client.get("/opportunities/pipelines", params={"locationId": "loc1"}, headers=GHL).json()
    pipeline = pipelines["pipelines"][0]
    assert pipeline["id"] == DEMO_PIPELINE_ID
    stage1, stage2 = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    r = client.post(
        "/opportunities/",
        headers=GHL,
        json={
            "pipelineId": DEMO_PIPELINE_ID,
            "locationId": "loc1",
            "name": "Grace deal",
            "pipelineStageId": stage1,
            "status": "open",
            "contactId": cid,
        },
    )
    assert r.status_code == 201
    opp_id = r.json()["opportunity"]["id"]
    r = client.put(f"/opportunities/{opp_id}", headers=GHL, json={"pipelineStageId": stage2})
    assert r.json()["opportunity"]["pipelineStageId"] == stage2
    assert (
        client.put(f"/opportunities/{opp_id}", headers=GHL, json={"pipelineStageId": "x"}).status_code == 400
    )


# ------------------------------------------------------------------------------------------- Instantly


def test_instantly_campaign_status_and_leads_limit(client: httpx.Client, sandbox: SandboxServer) -> None:
    r = client.get(f"/api/v2/campaigns/{DEMO_CAMPAIGN_ID}", headers=AUTH)
    assert r.json()["status"] == 1
    assert client.post(f"/api/v2/campaigns/{DEMO_CAMPAIGN_ID}/pause", headers=AUTH).json()["status"] == 2
    assert client.get(f"/api/v2/campaigns/{DEMO_CAMPAIGN_ID}", headers=AUTH).json()["status"] == 2
    assert client.post(f"/api/v2/campaigns/{DEMO_CAMPAIGN_ID}/activate", headers=AUTH).json()["status"] == 1
    assert [c["id"] for c in client.get("/api/v2/campaigns", headers=AUTH).json()["items"]] == [
        DEMO_CAMPAIGN_ID
    ]
    assert client.get("/api/v2/campaigns/missing", headers=AUTH).status_code == 404

    too_many = [{"email": f"lead{i}@example.com"} for i in range(1001)]
    r = client.post(
        "/api/v2/leads/add", headers=AUTH, json={"campaign_id": DEMO_CAMPAIGN_ID, "leads": too_many}
    )
    assert r.status_code == 400
    assert set(r.json()) == {"statusCode", "error", "message"}
    assert r.json()["error"] == "Bad Request"
    assert sandbox.state.counts()["contacts"]["instantly"] == 0

    client.post("/api/v2/block-lists-entries", headers=AUTH, json={"bl_value": "blocked.example"})
    leads = [*too_many[:1000]]
    leads[0] = {"email": "someone@blocked.example"}
    r = client.post("/api/v2/leads/add", headers=AUTH, json={"campaign_id": DEMO_CAMPAIGN_ID, "leads": leads})
    assert r.status_code == 200
    assert r.json()["leads_uploaded"] == 999
    assert r.json()["in_blocklist"] == 1
    r = client.post(
        "/api/v2/leads/add", headers=AUTH, json={"campaign_id": DEMO_CAMPAIGN_ID, "leads": leads[1:3]}
    )
    assert r.json()["already_in_campaign"] == 2

    entries = client.get("/api/v2/block-lists-entries", headers=AUTH).json()["items"]
    assert [(e["bl_value"], e["is_domain"]) for e in entries] == [("blocked.example", True)]
    analytics = client.get(
        "/api/v2/campaigns/analytics", params={"id": DEMO_CAMPAIGN_ID}, headers=AUTH
    ).json()
    assert analytics[0]["leads_count"] == 999


# ------------------------------------------------------------------------------------------- faults


def test_fault_429_twice_then_success(client: httpx.Client, sandbox: SandboxServer) -> None:
    client.post(CONTACTS, headers=AUTH, json={"properties": {"email": "rl@example.com"}})
    r = client.post(
        "/_sandbox/faults",
        json={"method": "PATCH", "path_prefix": CONTACTS, "status": 429, "times": 2, "retry_after": 1},
    )
    assert r.status_code == 201
    path, params, body = f"{CONTACTS}/rl@example.com", {"idProperty": "email"}, {"properties": {"a": "1"}}

    for _ in range(2):
        r = client.patch(path, params=params, headers=AUTH, json=body)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        assert r.json()["errorType"] == "RATE_LIMIT"
        assert r.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert r.json()["message"] == "You have reached your ten_secondly_rolling limit."
    r = client.patch(path, params=params, headers=AUTH, json=body)
    assert r.status_code == 200
    assert r.json()["properties"]["a"] == "1"
    assert [e["status"] for e in sandbox.state.requests_log("PATCH")] == [429, 429, 200]
    assert client.get("/_sandbox/faults").json() == {"faults": []}


def test_fault_503_uses_vendor_shape_and_clears(client: httpx.Client) -> None:
    client.post("/_sandbox/faults", json={"path_prefix": "/api/v2/", "status": 503, "times": None})
    r = client.get("/api/v2/campaigns", headers=AUTH)
    assert r.status_code == 503
    assert r.json()["statusCode"] == 503
    assert client.get("/api/v2/campaigns", headers=AUTH).status_code == 503
    client.delete("/_sandbox/faults")
    assert client.get("/api/v2/campaigns", headers=AUTH).status_code == 200


def test_timeout_after_apply_applies_once(client: httpx.Client, sandbox: SandboxServer) -> None:
    client.post(
        "/_sandbox/faults",
        json={
            "mode": "timeout_after_apply",
            "method": "POST",
            "path_prefix": CONTACTS,
            "times": 1,
            "delay": 1.0,
        },
    )
    body = {"properties": {"email": "slow@example.com"}}
    with pytest.raises(httpx.ReadTimeout):
        client.post(CONTACTS, headers=AUTH, json=body, timeout=0.3)
    # the remote applied the write although the client saw a timeout
    assert sandbox.state.counts()["contacts"]["hubspot"] == 1
    r = client.post(CONTACTS, headers=AUTH, json=body)  # a naive retry
    assert r.status_code == 409
    r = client.get(f"{CONTACTS}/slow@example.com", params={"idProperty": "email"}, headers=AUTH)
    assert r.status_code == 200
    assert sandbox.state.counts()["contacts"]["hubspot"] == 1
    assert [e["status"] for e in sandbox.state.requests_log("POST", CONTACTS)] == [201, 409]


def test_timeout_without_apply_drops_the_write(client: httpx.Client, sandbox: SandboxServer) -> None:
    client.post(
        "/_sandbox/faults",
        json={
            "mode": "timeout",
            "method": "POST",
            "path_prefix": "/contacts/upsert",
            "delay": 0.4,
            "apply": False,
        },
    )
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            "/contacts/upsert", headers=GHL, json={"locationId": "l", "email": "t@example.com"}, timeout=0.1
        )
    _wait_for(lambda: sandbox.state.requests_log("POST", "/contacts/upsert"))
    assert sandbox.state.requests_log("POST", "/contacts/upsert")[0]["status"] == 504
    assert sandbox.state.counts()["contacts"]["gohighlevel"] == 0


# ------------------------------------------------------------------------------------------- webhooks


def test_emit_reaches_receiver_with_registered_secret_header(
    client: httpx.Client, sandbox: SandboxServer, receiver: ThreadingHTTPServer
) -> None:
    target = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/instantly"
    r = client.post(
        "/api/v2/webhooks",
        headers=AUTH,
        json={
            "target_hook_url": target,
            "event_type": "all_events",
            "headers": {"X-MH1-Webhook-Secret": "s3cret"},
        },
    )
    assert r.status_code == 200
    client.post(
        "/api/v2/webhooks",
        headers=AUTH,
        json={"target_hook_url": target, "event_type": "reply_received", "headers": {"X-Other": "x"}},
    )

    r = client.post("/_sandbox/emit", json={"event_type": "email_bounced", "lead_email": "gone@example.com"})
    assert r.status_code == 200
    assert [d["ok"] for d in r.json()["deliveries"]] == [True]
    assert len(receiver.received) == 1  # type: ignore[attr-defined]
    headers, payload = receiver.received[0]  # type: ignore[attr-defined]
    assert headers["X-MH1-Webhook-Secret"] == "s3cret"
    assert "X-MH1-Webhook-Secret" in list(headers)  # sent with the registered spelling
    assert headers.get("X-Other") is None
    assert payload["event_type"] == "email_bounced"
    assert payload["lead_email"] == "gone@example.com"
    assert payload["campaign_id"] == DEMO_CAMPAIGN_ID
    assert payload["timestamp"].endswith("Z")
    assert sandbox.state.deliveries[0]["status"] == 200
    state = client.get("/_sandbox/state").json()
    assert "s3cret" not in json.dumps(state["deliveries"])
    assert "s3cret" not in json.dumps(state["requests"])  # the registration body is masked in the log

    # a reply reaches both subscriptions and shows up in GET /api/v2/emails
    client.post("/_sandbox/emit", json={"event_type": "reply_received", "lead_email": "ada@example.com"})
    assert len(receiver.received) == 3  # type: ignore[attr-defined]
    emails = client.get("/api/v2/emails", params={"email_type": "received"}, headers=AUTH).json()["items"]
    assert [e["from_address_email"] for e in emails] == ["ada@example.com"]


def test_auto_events_emit_email_sent_for_added_leads(
    client: httpx.Client, sandbox: SandboxServer, receiver: ThreadingHTTPServer
) -> None:
    target = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    client.post(
        "/api/v2/webhooks",
        headers=AUTH,
        json={"target_hook_url": target, "event_type": "email_sent", "headers": {"X-Secret": "k"}},
    )
    client.post("/_sandbox/config", json={"auto_events": True})
    leads = [{"email": "one@example.com"}, {"email": "two@example.com"}]
    r = client.post("/api/v2/leads/add", headers=AUTH, json={"campaign_id": DEMO_CAMPAIGN_ID, "leads": leads})
    assert r.json()["leads_uploaded"] == 2
    _wait_for(lambda: len(receiver.received) == 2)  # type: ignore[attr-defined]
    assert sorted(p["lead_email"] for _, p in receiver.received) == ["one@example.com", "two@example.com"]  # type: ignore[attr-defined]
    _wait_for(lambda: len(sandbox.state.deliveries) == 2)
    analytics = client.get(
        "/api/v2/campaigns/analytics", params={"id": DEMO_CAMPAIGN_ID}, headers=AUTH
    ).json()
    assert analytics[0]["emails_sent_count"] == 2


# ------------------------------------------------------------------------------------------- Clay, limits


def test_clay_counts_submissions_and_refuses_past_the_limit(
    client: httpx.Client, sandbox: SandboxServer
) -> None:
    client.post("/_sandbox/config", json={"clay_submission_limit": 2})
    for _ in range(2):
        r = client.post("/clay/webhook/src-1", headers=AUTH, json={"email": "a@example.com"})
        assert r.status_code == 202
        assert r.json() == {"status": "ok"}
    r = client.post("/clay/webhook/src-1", headers=AUTH, json={"email": "a@example.com"})
    assert r.status_code == 422
    assert (
        client.post("/clay/webhook/src-2", headers=AUTH, json={"email": "a@example.com"}).status_code == 202
    )
    assert sandbox.state.counts()["clay"]["submissions"] == {"src-1": 2, "src-2": 1}
    assert client.post("/clay/webhook/src-3", json={"x": 1}).status_code == 401


def test_body_over_one_mib_is_rejected(client: httpx.Client, sandbox: SandboxServer) -> None:
    big = {"properties": {"email": "big@example.com", "notes": "x" * (1024 * 1024)}}
    r = client.post(CONTACTS, headers=AUTH, json=big)
    assert r.status_code == 413
    assert r.json()["status"] == "error"
    assert sandbox.state.counts()["contacts"]["hubspot"] == 0
    # the server still answers afterwards
    assert client.get("/_sandbox/state").status_code == 200


def test_module_entry_point_serves(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, trust_env=False, timeout=5) as c:
            assert c.get("/_sandbox/state").json()["counts"]["instantly"]["campaigns"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=5)
