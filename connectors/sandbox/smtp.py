"""A minimal SMTP listener for the sandbox: accepts mail, records it in the sandbox's state, and
reports it back the way Instantly would (``email_sent``; ``lead_unsubscribed`` for recipients whose
address starts with ``unsubscribe``, so the demo can show an unsubscribe coming back).

SMTP faults (see :mod:`.faults`) break a transaction where a real server or network could:

* ``refuse_before_data``: MAIL FROM or RCPT TO is answered 4xx/5xx; nothing is delivered;
* ``drop_after_data``: the message is delivered, then the connection closes before the 250;
* ``withhold_reply``: the message is delivered, then the 250 never comes;
* ``fail_quit``: the message is delivered and answered 250, then QUIT gets no 221.

Set them with ``POST /_sandbox/smtp/faults`` or ``state.add_smtp_fault(...)``; every transaction,
delivered or not, is in ``state.smtp_messages()`` (``GET /_sandbox/smtp/messages``), so a test can
count what actually left the sender. Standard library only."""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from connectors.sandbox.faults import smtp_fault_matches
from connectors.sandbox.state import SandboxState

MAX_MESSAGE_BYTES = 1024 * 1024
# Events are reported a moment after the message is accepted, never while the sender waits:
# the sender may hold a lock that the webhook's handler needs.
REPORT_DELAY_SECONDS = 0.5
QUEUED_REPLY = "250 OK queued"


class _Handler(socketserver.StreamRequestHandler):
    server: SandboxSMTP

    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())
        self.wfile.flush()

    def handle(self) -> None:
        state = self.server.state
        self._reply("220 mh1-sandbox ESMTP")
        mail_from, rcpts = "", []
        # refusals already taken in this transaction: one fault refuses every recipient it matches
        refusals: list[dict[str, Any]] = []
        # a fail_quit fault met by a message of this connection: QUIT gets no answer
        drop_on_quit = False
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("HELO", "EHLO"):
                self._reply("250 mh1-sandbox")
            elif line.upper().startswith("MAIL FROM:"):
                mail_from, rcpts, refusals = line[10:].strip().strip("<>"), [], []
                fault = state.take_smtp_fault("mail", [])
                if fault is not None:
                    if self._refuse(fault, mail_from, []):
                        return
                    mail_from = ""
                    continue
                self._reply("250 OK")
            elif line.upper().startswith("RCPT TO:"):
                rcpt = line[8:].strip().strip("<>").split()[0].strip("<>")
                fault = next((f for f in refusals if smtp_fault_matches(f, "rcpt", [rcpt])), None)
                if fault is None:
                    fault = state.take_smtp_fault("rcpt", [rcpt])
                    if fault is not None:
                        refusals.append(fault)
                if fault is not None:
                    if self._refuse(fault, mail_from, [rcpt]):
                        return
                    continue
                rcpts.append(rcpt)
                self._reply("250 OK")
            elif verb == "DATA":
                if not rcpts:  # every recipient refused (or none given): nothing to deliver
                    self._reply("503 5.5.1 Error: need RCPT command")
                    continue
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                if data is None:
                    self._reply("552 Message too large")
                    continue
                fault = state.take_smtp_fault("data", rcpts)
                kind = fault["kind"] if fault is not None else None
                reply = None if kind in ("drop_after_data", "withhold_reply") else QUEUED_REPLY
                # recorded (and reported) before the sender hears anything: the message has left
                self.server.on_message(mail_from, list(rcpts), data, fault=kind, reply=reply)
                if kind == "drop_after_data":
                    return
                if kind == "withhold_reply":
                    self._hold(fault["hold_seconds"])
                    return
                self._reply(QUEUED_REPLY)
                drop_on_quit = drop_on_quit or kind == "fail_quit"
                mail_from, rcpts, refusals = "", [], []
            elif verb == "RSET":
                mail_from, rcpts, refusals = "", [], []
                self._reply("250 OK")
            elif verb == "NOOP":
                self._reply("250 OK")
            elif verb == "QUIT":
                if not drop_on_quit:
                    self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")

    def _refuse(self, fault: dict[str, Any], mail_from: str, rcpts: list[str]) -> bool:
        """Answer the refusal; True when the connection closes with it (421, RFC 5321 3.8)."""
        reply = f"{fault['code']} {fault['message']}"
        self.server.state.record_smtp(
            {
                "from": mail_from,
                "to": rcpts,
                "subject": "",
                "message_id": "",
                "idempotency_key": "",
                "delivered": False,
                "fault": fault["kind"],
                "stage": fault["stage"],
                "reply": reply,
            }
        )
        self._reply(reply)
        return fault["code"] == 421

    def _hold(self, seconds: float) -> None:
        """Keep the connection open without a word until the client gives up (or ``seconds``)."""
        deadline = time.monotonic() + seconds
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                if not self.connection.recv(4096):
                    return
        except OSError:  # our own time-out, or the client reset the connection
            return

    def _read_data(self) -> bytes | None:
        chunks, size = [], 0
        while True:
            raw = self.rfile.readline(MAX_MESSAGE_BYTES)
            if not raw or raw in (b".\r\n", b".\n"):
                break
            size += len(raw)
            if size > MAX_MESSAGE_BYTES:
                return None
            chunks.append(raw[1:] if raw.startswith(b"..") else raw)
        return b"".join(chunks)


class SandboxSMTP(socketserver.ThreadingTCPServer):
    """``SandboxSMTP(port=0, state=sandbox.state).start()``: mail lands in that state's SMTP log and
    its faults apply; ``report`` (default: the state's Instantly ``emit``) hears of each delivery."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        report: Callable[..., Any] | None = None,
        *,
        state: SandboxState | None = None,
    ):
        super().__init__((host, port), _Handler)
        self.state = state or SandboxState()
        self.report = report or self.state.emit
        self.host = host
        self.port = int(self.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages delivered so far (``from``, ``to``, ``subject``, ...)."""
        return self.state.smtp_messages(delivered=True)

    def on_message(
        self, mail_from: str, rcpts: list[str], data: bytes, *, fault: str | None = None, reply: str | None
    ) -> dict[str, Any]:
        message = email.message_from_bytes(data, policy=email.policy.default)
        key = message.get("X-MH1-Idempotency-Key") or ""
        email_id = key or message.get("Message-ID") or str(uuid.uuid4())
        subject = message.get("Subject", "")
        entry = self.state.record_smtp(
            {
                "from": mail_from,
                "to": rcpts,
                "subject": subject,
                "message_id": message.get("Message-ID", ""),
                "idempotency_key": key,
                "delivered": True,
                "fault": fault,
                "stage": "data" if fault else None,
                "reply": reply,
            }
        )
        for rcpt in rcpts:
            events = [("email_sent", email_id)]
            if rcpt.lower().startswith("unsubscribe"):
                events.append(("lead_unsubscribed", f"{email_id}:unsubscribed"))
            for event_type, event_email_id in events:
                timer = threading.Timer(
                    REPORT_DELAY_SECONDS,
                    self.report,
                    args=(event_type,),
                    kwargs={"lead_email": rcpt, "email_id": event_email_id, "subject": subject},
                )
                timer.daemon = True
                timer.start()
        return entry

    def start(self) -> SandboxSMTP:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-smtp", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

    def __enter__(self) -> SandboxSMTP:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
