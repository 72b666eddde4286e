"""The one base of every domain error: a code, the HTTP status the API answers with, and a message
a person can act on.

The API's exception handler (``mh1.api_errors``) and the admin know this class only, so ``mh1``
imports no feature app's errors: an app adds an error by subclassing ``DomainError`` in its own
``errors.py``.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal or failure the caller can act on; ``str()`` is the message."""

    code: str = "domain_error"
    status_code: int = 400  # what the API answers: 400 bad input, 403 not allowed, 409 wrong state

    def __init__(self, message: str = ""):
        super().__init__(message)
        self._message = message

    @property
    def message(self) -> str:
        return self._message

    @property
    def http_status(self) -> int:
        """The API's answer. Connectors' errors keep ``status_code`` for the vendor's own answer
        and override this instead."""
        return self.status_code
