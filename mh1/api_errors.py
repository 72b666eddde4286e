"""API errors: domain errors become JSON with their code and message, never a 500."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from mh1.errors import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        # 400 bad input, 403 not allowed (scope, four eyes), 409 wrong state, 502 a vendor failed:
        # the error says which. Nothing of a refused request is kept.
        set_rollback()
        body = {"code": exc.code, "detail": exc.message}
        if isinstance(getattr(exc, "errors", None), dict) and exc.errors:
            body["errors"] = exc.errors  # per-field messages, as a form would show them
        return Response(body, status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DataError):
        # A value the serializer let through but the column cannot hold (too long, out of range,
        # unstorable text): the caller's input, so a 400 with the database's reason; nothing is
        # kept (the transaction is rolled back).
        set_rollback()
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "invalid value"
        return Response(
            {"code": "value_unstorable", "detail": f"A value cannot be stored: {reason}."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return drf_exception_handler(exc, context)
