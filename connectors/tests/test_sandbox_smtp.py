"""The sandbox's SMTP listener and its faults, driven with smtplib: for each fault, what the client
sees and what the sandbox recorded as delivered (no database needed)."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from connectors.sandbox import SandboxServer, SandboxSMTP

SENDER = "ae@mh1.example"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[SandboxServer, SandboxSMTP]]:
    with SandboxServer() as http_server, SandboxSMTP(state=http_server.state) as smtp_server:
        yield http_server, smtp_server


@pytest.fixture
def sandbox(servers: tuple[SandboxServer, SandboxSMTP]) -> SandboxServer:
    servers[0].reset()
    return servers[0]


@pytest.fixture
def smtp(servers: tuple[SandboxServer, SandboxSMTP], sandbox: SandboxServer) -> SandboxSMTP:
    return servers[1]


@pytest.fixture
def control(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{sandbox.url}/_sandbox", trust_env=False, timeout=5) as c:
        yield c


def _message(to: str | list[str], key: str = "k-1") -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = ", ".join([to] if isinstance(to, str) else to)
    message["Subject"] = "Quick question"
    message["X-MH1-Idempotency-Key"] = key
    message.set_content("Hello.")
    return message


def _send(smtp: SandboxSMTP, to: str | list[str], *, key: str = "k-1", timeout: float = 5) -> dict:
    """One connection, one message, QUIT: what a sender does for each email."""
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    try:
        refused = client.send_message(_message(to, key))
    except BaseException:
        client.close()
        raise
    client.quit()
    return refused


def _delivered(sandbox: SandboxServer) -> list[dict]:
    return sandbox.state.smtp_messages(delivered=True)


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ------------------------------------------------------------------------------------------- plain


def test_a_message_is_recorded_delivered_and_reported_sent(sandbox: SandboxServer, smtp: SandboxSMTP) -> None:
    # when
    refused = _send(smtp, "bob@acme.example", key="send-1")

    # then
    assert refused == {}
    [entry] = sandbox.state.smtp_messages()
    assert entry["delivered"] is True
    assert entry["to"] == ["bob@acme.example"]
    assert entry["idempotency_key"] == "send-1"
    assert entry["fault"] is None
    assert entry["reply"] == "250 OK queued"
    _wait_for(lambda: [e["event_type"] for e in sandbox.state.snapshot(True)["data"]["instantly"]["events"]])
    events = sandbox.state.snapshot(True)["data"]["instantly"]["events"]
    assert [(e["event_type"], e["lead_email"], e["email_id"]) for e in events] == [
        ("email_sent", "bob@acme.example", "send-1")
    ]


def test_mail_to_unsubscribe_comes_back_unsubscribed(sandbox: SandboxServer, smtp: SandboxSMTP) -> None:
    _send(smtp, "unsubscribe-demo@northwind.example")

    def event_types() -> list[str]:
        return sorted(e["event_type"] for e in sandbox.state.snapshot(True)["data"]["instantly"]["events"])

    _wait_for(lambda: len(event_types()) == 2)
    assert event_types() == ["email_sent", "lead_unsubscribed"]


# ------------------------------------------------------------------------------------------- faults


def test_drop_after_data_delivers_but_the_client_sees_a_disconnect(
    sandbox: SandboxServer, smtp: SandboxSMTP
) -> None:
    # given
    sandbox.state.add_smtp_fault(kind="drop_after_data")

    # when / then: the sender cannot know the message left
    with pytest.raises(smtplib.SMTPServerDisconnected):
        _send(smtp, "bob@acme.example")
    [entry] = _delivered(sandbox)
    assert entry["fault"] == "drop_after_data"
    assert entry["reply"] is None

    # the fault was for one message: the next one is answered
    assert _send(smtp, "bob@acme.example", key="k-2") == {}
    assert [m["idempotency_key"] for m in _delivered(sandbox)] == ["k-1", "k-2"]


def test_withhold_reply_delivers_but_the_client_times_out(sandbox: SandboxServer, smtp: SandboxSMTP) -> None:
    sandbox.state.add_smtp_fault(kind="withhold_reply")

    started = time.monotonic()
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        _send(smtp, "bob@acme.example", timeout=1)

    assert time.monotonic() - started >= 1
    [entry] = _delivered(sandbox)
    assert entry["fault"] == "withhold_reply"
    assert entry["reply"] is None


def test_refuse_before_data_at_rcpt_delivers_nothing(sandbox: SandboxServer, smtp: SandboxSMTP) -> None:
    sandbox.state.add_smtp_fault(kind="refuse_before_data")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        _send(smtp, "bob@acme.example")

    assert caught.value.recipients["bob@acme.example"][0] == 451
    assert _delivered(sandbox) == []
    [entry] = sandbox.state.smtp_messages(delivered=False)
    assert (entry["fault"], entry["stage"], entry["to"]) == (
        "refuse_before_data",
        "rcpt",
        ["bob@acme.example"],
    )
    assert entry["reply"].startswith("451 ")


def test_refuse_before_data_with_421_closes_the_connection(sandbox: SandboxServer, smtp: SandboxSMTP) -> None:
    sandbox.state.add_smtp_fault(kind="refuse_before_data", code=421)

    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        _send(smtp, "bob@acme.example")

    assert caught.value.recipients["bob@acme.example"][0] == 421
    assert _delivered(sandbox) == []

    # the server closes too (RFC 5321 3.8), whether or not the client does
    sandbox.state.add_smtp_fault(kind="refuse_before_data", code=421)
    with socket.create_connection((smtp.host, smtp.port), timeout=5) as raw:
        raw.sendall(b"EHLO me\r\nMAIL FROM:<ae@mh1.example>\r\nRCPT TO:<bob@acme.example>\r\n")
        replies = b""
        while chunk := raw.recv(4096):
            replies += chunk
    assert replies.splitlines()[-1].startswith(b"421 ")
    assert _send(smtp, "bob@acme.example") == {}


def test_refuse_before_data_at_mail_from_with_a_permanent_code(
    sandbox: SandboxServer, smtp: SandboxSMTP
) -> None:
    sandbox.state.add_smtp_fault(kind="refuse_before_data", stage="mail", code=550, message="5.7.1 No relay")

    with pytest.raises(smtplib.SMTPSenderRefused) as caught:
        _send(smtp, "bob@acme.example")

    assert caught.value.smtp_code == 550
    assert caught.value.smtp_error == b"5.7.1 No relay"
    assert _delivered(sandbox) == []
    assert sandbox.state.counts()["smtp"] == {"delivered": 0, "not_delivered": 1, "faults": 0}


def test_fail_quit_delivers_and_answers_250_then_drops_on_quit(
    sandbox: SandboxServer, smtp: SandboxSMTP
) -> None:
    sandbox.state.add_smtp_fault(kind="fail_quit")
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=5)

    # the message itself is answered 250
    assert client.send_message(_message("bob@acme.example")) == {}
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.quit()

    [entry] = _delivered(sandbox)
    assert (entry["fault"], entry["reply"]) == ("fail_quit", "250 OK queued")


def test_a_fault_holds_for_the_next_n_messages(sandbox: SandboxServer, smtp: SandboxSMTP) -> None:
    sandbox.state.add_smtp_fault(kind="drop_after_data", times=2)

    for key in ("k-1", "k-2"):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            _send(smtp, "bob@acme.example", key=key)
    assert _send(smtp, "bob@acme.example", key="k-3") == {}

    # three messages left the sender, although it heard of only one
    assert [(m["idempotency_key"], m["fault"]) for m in _delivered(sandbox)] == [
        ("k-1", "drop_after_data"),
        ("k-2", "drop_after_data"),
        ("k-3", None),
    ]
    assert sandbox.state.counts()["smtp"]["faults"] == 0


def test_a_fault_for_matching_recipients_spares_the_others(sandbox: SandboxServer, smtp: SandboxSMTP) -> None:
    # given: every message to acme.example is refused until cleared
    sandbox.state.add_smtp_fault(kind="refuse_before_data", recipient="*@ACME.example", times=None)

    # when
    for _ in range(2):
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            _send(smtp, "bob@acme.example")
    refused = _send(smtp, ["bob@acme.example", "carol@northwind.example"])

    # then: the fault stays, and only the recipient it matches is refused
    assert list(refused) == ["bob@acme.example"]
    assert [m["to"] for m in _delivered(sandbox)] == [["carol@northwind.example"]]
    assert len(sandbox.state.smtp_messages(delivered=False)) == 3

    # and once cleared, acme.example gets mail again
    sandbox.state.clear_smtp_faults()
    assert _send(smtp, "bob@acme.example") == {}
    assert len(_delivered(sandbox)) == 2


def test_one_refusal_covers_every_matching_recipient_of_one_message(
    sandbox: SandboxServer, smtp: SandboxSMTP
) -> None:
    sandbox.state.add_smtp_fault(kind="refuse_before_data", recipient="*@acme.example")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        _send(smtp, ["bob@acme.example", "dan@acme.example"])

    assert sorted(caught.value.recipients) == ["bob@acme.example", "dan@acme.example"]
    assert _delivered(sandbox) == []
    # the fault was for one message, not one recipient
    assert _send(smtp, ["bob@acme.example", "dan@acme.example"]) == {}


# ------------------------------------------------------------------------------------------- control API


def test_smtp_faults_are_set_listed_and_cleared_through_the_control_api(
    sandbox: SandboxServer, smtp: SandboxSMTP, control: httpx.Client
) -> None:
    # set
    r = control.post("/smtp/faults", json={"kind": "drop_after_data", "recipient": "bob@*", "times": 3})
    assert r.status_code == 201
    fault = r.json()["fault"]
    assert (fault["kind"], fault["recipient"], fault["times"]) == ("drop_after_data", "bob@*", 3)
    assert control.get("/smtp/faults").json()["faults"] == [fault]

    with pytest.raises(smtplib.SMTPServerDisconnected):
        _send(smtp, "bob@acme.example")
    assert control.get("/smtp/faults").json()["faults"][0]["times"] == 2

    # clear
    assert control.delete("/smtp/faults").json() == {"faults": []}
    assert _send(smtp, "bob@acme.example", key="k-2") == {}

    # the record, through the control API
    messages = control.get("/smtp/messages", params={"delivered": "1"}).json()["messages"]
    assert [(m["idempotency_key"], m["fault"]) for m in messages] == [
        ("k-1", "drop_after_data"),
        ("k-2", None),
    ]
    state = control.get("/state").json()
    assert state["counts"]["smtp"] == {"delivered": 2, "not_delivered": 0, "faults": 0}
    assert len(state["smtp"]["messages"]) == 2

    # reset forgets faults and messages
    control.post("/smtp/faults", json={"kind": "fail_quit"})
    control.post("/reset")
    assert control.get("/smtp/faults").json()["faults"] == []
    assert control.get("/smtp/messages").json()["messages"] == []


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [
        ({"kind": "drop_before_data"}, "kind must be one of"),
        ({"kind": "drop_after_data", "pattern": "bob@*"}, "unknown SMTP fault keys: ['pattern']"),
        ({"kind": "drop_after_data", "times": 0}, "times must be a positive integer"),
        ({"kind": "refuse_before_data", "code": 250}, "code must be an SMTP error reply"),
        ({"kind": "refuse_before_data", "stage": "mail", "recipient": "bob@*"}, "MAIL FROM comes before"),
        ({"kind": "fail_quit", "code": 421}, "belong to refuse_before_data"),
        ({"kind": "withhold_reply", "hold_seconds": 0}, "hold_seconds must be above 0"),
    ],
)
def test_a_wrong_smtp_fault_is_refused_with_the_reason(
    sandbox: SandboxServer, control: httpx.Client, spec: dict, wanted: str
) -> None:
    r = control.post("/smtp/faults", json=spec)

    assert r.status_code == 400
    assert wanted in r.json()["error"]
    assert sandbox.state.counts()["smtp"]["faults"] == 0


def test_the_command_line_sandbox_controls_its_smtp_faults(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port for SMTP (the HTTP port is chosen by the sandbox)
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", "--port", "0", "--smtp-port", str(smtp_port)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        url = line.rsplit(" ", 1)[-1].strip()
        with httpx.Client(base_url=f"{url}/_sandbox", trust_env=False, timeout=5) as c:
            assert c.post("/smtp/faults", json={"kind": "refuse_before_data", "code": 450}).status_code == 201
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as client:
                with pytest.raises(smtplib.SMTPRecipientsRefused):
                    client.send_message(_message("bob@acme.example"))
                assert client.send_message(_message("bob@acme.example")) == {}
            assert c.get("/state").json()["counts"]["smtp"] == {
                "delivered": 1,
                "not_delivered": 1,
                "faults": 0,
            }
    finally:
        proc.terminate()
        proc.wait(timeout=5)
