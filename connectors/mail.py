"""Sending one email and knowing, from the SMTP dialogue, whether it may have left.

Once the server has answered 250 to the end of DATA the message is accepted; an error after the
DATA command was sent (a dropped connection, a time-out waiting for the reply) leaves the outcome
unknown, and sending again would deliver a second copy. So the dialogue is split in phases:

- everything before DATA (connect, TLS, login, MAIL FROM, RCPT TO) that fails: the message
  certainly did not leave → ``SMTPRefusedBeforeData`` (a retry is safe);
- an explicit refusal reply to DATA or to the message (``SMTPDataError``): not accepted either;
- any other error once DATA was sent → ``SMTPOutcomeUnknown`` (never resent blindly);
- an error on QUIT after the 250: the message was accepted; logged, not an error.

``SMTPBackend`` is Django's SMTP backend with that split (``EMAIL_BACKEND``). Other backends
(locmem in tests, console) are used as they are: their errors are treated as unknown unless they
are the refusals smtplib raises before DATA.
"""

from __future__ import annotations

import logging
import smtplib

from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address

logger = logging.getLogger(__name__)


class SMTPRefusedBeforeData(Exception):
    """The message did not leave: refused or failed before DATA. ``permanent`` for a 5xx."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class SMTPOutcomeUnknown(Exception):
    """DATA was sent and no final answer came back: the message may have been delivered."""


def _code_of(exc: BaseException) -> int | None:
    code = getattr(exc, "smtp_code", None)
    if code is None and isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code = next(iter(exc.recipients.values()))[0]
    return code if isinstance(code, int) else None


def _before_data(exc: BaseException) -> SMTPRefusedBeforeData:
    code = _code_of(exc)
    return SMTPRefusedBeforeData(f"{exc.__class__.__name__}: {exc}", permanent=bool(code and code >= 500))


class SMTPBackend(EmailBackend):
    """Django's SMTP backend, raising SMTPRefusedBeforeData / SMTPOutcomeUnknown by phase."""

    def send_messages(self, email_messages):
        if not email_messages:
            return 0
        sent = 0
        with self._lock:
            try:
                new_connection = self.open()
            except (smtplib.SMTPException, OSError) as exc:
                raise _before_data(exc) from exc
            try:
                for message in email_messages:
                    if self._send(message):
                        sent += 1
            finally:
                if new_connection:
                    self._quit()
        return sent

    def _quit(self) -> None:
        try:
            self.close()
        except (smtplib.SMTPException, OSError) as exc:
            # after the 250: the message is accepted whatever QUIT does
            logger.warning("SMTP: error on QUIT after the message was accepted: %s", exc)
            self.connection = None

    def _send(self, email_message: EmailMessage) -> bool:
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or "utf-8"
        from_email = sanitize_address(email_message.from_email, encoding)
        recipients = [sanitize_address(addr, encoding) for addr in email_message.recipients()]
        body = email_message.message().as_bytes(linesep="\r\n")
        conn = self.connection
        try:
            conn.ehlo_or_helo_if_needed()
            code, reply = conn.mail(from_email)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, from_email)
            refused = {}
            for rcpt in recipients:
                code, reply = conn.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, reply)
            if len(refused) == len(recipients):
                raise smtplib.SMTPRecipientsRefused(refused)
        except (smtplib.SMTPException, OSError) as exc:
            self._reset_quietly()
            raise _before_data(exc) from exc
        # From here on the message may leave.
        try:
            conn.data(body)
        except smtplib.SMTPDataError as exc:
            # an explicit refusal reply (to DATA or to the message): not accepted
            self._reset_quietly()
            raise SMTPRefusedBeforeData(
                f"SMTPDataError: {exc}", permanent=bool(exc.smtp_code and exc.smtp_code >= 500)
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.connection = None
            raise SMTPOutcomeUnknown(
                f"{exc.__class__.__name__} after DATA was sent: the message may have been delivered."
            ) from exc
        return True

    def _reset_quietly(self) -> None:
        try:
            self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self.connection = None


def message_send(message: EmailMessage) -> None:
    """Send through the configured backend; raise SMTPRefusedBeforeData or SMTPOutcomeUnknown."""
    try:
        message.send(fail_silently=False)
    except (SMTPRefusedBeforeData, SMTPOutcomeUnknown):
        raise
    except (
        smtplib.SMTPSenderRefused,
        smtplib.SMTPRecipientsRefused,
        smtplib.SMTPConnectError,
        smtplib.SMTPHeloError,
        smtplib.SMTPAuthenticationError,
        ConnectionRefusedError,
    ) as exc:
        raise _before_data(exc) from exc
    except (smtplib.SMTPException, OSError) as exc:
        # a backend that does not say its phase: assume the worst, never resend blindly
        raise SMTPOutcomeUnknown(f"{exc.__class__.__name__}: {exc}") from exc
