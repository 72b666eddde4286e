"""What every part of the sandbox shares: vendor names, the request and response of a route, the
error a route raises, each vendor's error document, and the outgoing POST used for webhooks."""

from __future__ import annotations

import http.client
import re
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.sandbox.state import SandboxState

HUBSPOT, GHL, INSTANTLY, CLAY, CONTROL = "hubspot", "gohighlevel", "instantly", "clay", "control"


_SECRET_KEYS = frozenset({"headers", "api_key", "apikey", "token", "secret", "password", "authorization"})


def redact(value: Any) -> Any:
    """A copy for the request log: header values and secret-looking fields are masked."""
    if isinstance(value, dict):
        return {
            k: ("***" if str(k).lower() in _SECRET_KEYS and v else redact(v)) if k != "headers" else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _mask(headers: Any) -> Any:
    return dict.fromkeys(headers, "***") if isinstance(headers, dict) else "***"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_HUBSPOT_CATEGORY = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "VALIDATION_ERROR",
    413: "VALIDATION_ERROR",
}


def error_body(vendor: str | None, status: int, message: Any, category: str | None = None) -> dict[str, Any]:
    """The error document each vendor answers with."""
    if vendor == HUBSPOT:
        if status == 429:
            return {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": "TEN_SECONDLY_ROLLING",
            }
        return {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category or _HUBSPOT_CATEGORY.get(status, "INTERNAL_ERROR"),
        }
    if vendor in (GHL, INSTANTLY):  # NestJS / Fastify style
        return {"statusCode": status, "error": reason(status), "message": message}
    if vendor == CLAY:
        return {"status": "error", "message": message}
    return {"error": reason(status), "message": message}


class SandboxError(Exception):
    """Raised by a route handler: answered with the vendor's error shape."""

    def __init__(
        self,
        status: int,
        message: Any,
        *,
        category: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.category = category
        self.body = body
        self.headers = headers or {}


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # run in the handler thread after the response has been written (e.g. auto-emitted webhooks)
    after: list[Callable[[], Any]] = field(default_factory=list)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    vendor: str | None
    params: dict[str, str] = field(default_factory=dict)
    data: Any = None

    def obj(self) -> dict[str, Any]:
        if self.data is None:
            return {}
        if not isinstance(self.data, dict):
            raise SandboxError(400, "request body must be a JSON object")
        return self.data


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[SandboxState, Request], Response]
    area: str
    scope: str


def route(method: str, path: str, handler: Callable, area: str, scope: str) -> Route:
    """A route from a path template: ``{name}`` matches one segment, passed as ``params[name]``."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(f"^{regex}$"), handler, area, scope)


def post_json(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int | None, str | None]:
    """POST straight to the target (no HTTP(S)_PROXY detour; header names keep their case)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, "target_hook_url is not an http(s) URL"
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # *.localhost is loopback (RFC 6761) but Python's resolver does not know it: connect to
    # 127.0.0.1 and keep the name in the Host header, so tenant hosts work in the demo.
    connect_host = parts.hostname
    if connect_host == "localhost" or connect_host.endswith(".localhost"):
        connect_host = "127.0.0.1"
        headers = {"Host": parts.netloc, **headers}
    try:
        connection = connection_class(connect_host, parts.port, timeout=timeout)
    except ValueError as exc:  # e.g. a bad port
        return None, f"ValueError: {exc}"
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()
    return response.status, None if 200 <= response.status < 300 else f"HTTP {response.status}"
