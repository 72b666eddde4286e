"""Domain errors of the approval queue; each carries a code and a message a person can act on."""

from mh1.errors import DomainError


class ApprovalError(DomainError):
    code = "approval_error"
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)


class UnknownActionKind(ApprovalError):
    code = "unknown_kind"


class PayloadInvalid(ApprovalError):
    code = "payload_invalid"


class RequestNotFound(ApprovalError):
    code = "not_found"
    status_code = 404


class IllegalTransition(ApprovalError):
    code = "illegal_transition"
    status_code = 409


class ReasonRequired(ApprovalError):
    code = "reason_required"


class NotAllowed(ApprovalError):
    code = "not_allowed"
    status_code = 403


class RetryableExecutionError(Exception):
    """A transient failure of an executor (timeout, 429, 5xx): the task retries."""


class GateClosedError(Exception):
    """An executor found a safety gate closed before any effect (e.g. recipient suppressed).

    ``status`` is what the request becomes (cancelled, or expired for a stale approval); None
    when it is no longer executing and must be left as it is.
    """

    def __init__(self, message: str, *, status: str | None = "cancelled"):
        super().__init__(message)
        self.status = status


class OutcomeUnknown(Exception):
    """The effect may have happened (an SMTP error after DATA, a vendor time-out after sending):
    the request is marked unknown, never retried blindly."""


class DeferExecution(Exception):  # a signal to reschedule, not an error
    """A limit (e.g. the sending policy) allows this action only later: run it at ``not_before``."""

    def __init__(self, message: str, not_before):
        super().__init__(message)
        self.not_before = not_before


class FatalExecutionError(Exception):
    """A failure that a retry cannot fix (validation, 4xx): the action fails for good."""
