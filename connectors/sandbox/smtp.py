"""A minimal SMTP listener for the sandbox: accepts mail, records it, and reports it back the way
Instantly would (``email_sent``; ``lead_unsubscribed`` for recipients whose address starts with
``unsubscribe``, so the demo can show an unsubscribe coming back). Standard library only."""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
import uuid
from collections.abc import Callable
from typing import Any

MAX_MESSAGE_BYTES = 1024 * 1024
# Events are reported a moment after the message is accepted, never while the sender waits:
# the sender may hold a lock that the webhook's handler needs.
REPORT_DELAY_SECONDS = 0.5


class _Handler(socketserver.StreamRequestHandler):
    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())
        self.wfile.flush()

    def handle(self) -> None:
        self._reply("220 mh1-sandbox ESMTP")
        mail_from, rcpts = "", []
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("HELO", "EHLO"):
                self._reply("250 mh1-sandbox")
            elif line.upper().startswith("MAIL FROM:"):
                mail_from, rcpts = line[10:].strip().strip("<>"), []
                self._reply("250 OK")
            elif line.upper().startswith("RCPT TO:"):
                rcpts.append(line[8:].strip().strip("<>").split()[0].strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                if data is None:
                    self._reply("552 Message too large")
                    continue
                self._reply("250 OK queued")
                self.server.on_message(mail_from, list(rcpts), data)  # type: ignore[attr-defined]
                mail_from, rcpts = "", []
            elif verb == "RSET":
                mail_from, rcpts = "", []
                self._reply("250 OK")
            elif verb == "NOOP":
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")

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
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, report: Callable[..., Any]):
        super().__init__((host, port), _Handler)
        self.report = report
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def on_message(self, mail_from: str, rcpts: list[str], data: bytes) -> None:
        message = email.message_from_bytes(data, policy=email.policy.default)
        email_id = message.get("X-MH1-Idempotency-Key") or message.get("Message-ID") or str(uuid.uuid4())
        with self.lock:
            self.messages.append({"from": mail_from, "to": rcpts, "subject": message.get("Subject", "")})
        for rcpt in rcpts:
            events = [("email_sent", email_id)]
            if rcpt.lower().startswith("unsubscribe"):
                events.append(("lead_unsubscribed", f"{email_id}:unsubscribed"))
            for event_type, event_email_id in events:
                timer = threading.Timer(
                    REPORT_DELAY_SECONDS,
                    self.report,
                    args=(event_type,),
                    kwargs={
                        "lead_email": rcpt,
                        "email_id": event_email_id,
                        "subject": message.get("Subject", ""),
                    },
                )
                timer.daemon = True
                timer.start()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="sandbox-smtp", daemon=True)
        thread.start()
        return thread
