"""Loopback sandbox speaking the subset of HubSpot, GoHighLevel, Instantly and Clay that we use:
the HTTP server and the request handler that routes each call to its vendor module.

Pure standard library (``http.server``, ``http.client``, ``json``) so it runs without Django:
``python -m connectors.sandbox --port 8025`` or, in-process, ``SandboxServer(port=0).start()``.

Vendor routes (every one needs ``Authorization: Bearer <token>``; GoHighLevel also ``Version``):

* HubSpot CRM v3 ........ ``/crm/v3/objects/contacts[...]`` (:mod:`.hubspot`)
* GoHighLevel v2 ........ ``/contacts/...``, ``/opportunities/...`` (:mod:`.gohighlevel`)
* Instantly v2 .......... ``/api/v2/...`` (:mod:`.instantly`)
* Clay webhook sources .. ``/clay/webhook/{source_id}`` (:mod:`.clay`)

Control API (no auth) under ``/_sandbox/``: see :data:`.control.CONTROL_HELP` or ``GET /_sandbox/``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from connectors.sandbox.common import CONTROL, Request, Response, SandboxError, error_body, now_iso, redact
from connectors.sandbox.control import CONTROL_HELP, control
from connectors.sandbox.faults import http_fault_response
from connectors.sandbox.routing import check_auth, check_scope, match_route, rate_headers, vendor_for
from connectors.sandbox.state import SandboxState

__all__ = ["CONTROL_HELP", "MAX_BODY_BYTES", "SandboxServer"]

MAX_BODY_BYTES = 1024 * 1024  # bodies above 1 MiB get 413
_DRAIN_LIMIT = 16 * 1024 * 1024  # read (and drop) oversize bodies up to this, so the client sees the 413


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool = False) -> None:
        self.state = state
        self.verbose = verbose
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MH1Sandbox/1.0"
    timeout = 120  # idle keep-alive connections
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing
    def _read_body(self) -> bytes | Response:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return Response(411, "Length Required: send Content-Length")
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw else 0
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            return Response(400, "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            remaining = length if length <= _DRAIN_LIMIT else 0
            while remaining > 0:  # drain, so the client reads our 413 instead of a reset
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
            return Response(413, f"Request body exceeds {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        payload = (
            b"" if response.body is None or response.status == 204 else json.dumps(response.body).encode()
        )
        try:
            self.send_response(response.status)
            if payload:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if payload:
                self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            # the client gave up (e.g. a timeout fault): the effect, if any, stays applied
            self.close_connection = True

    def _handle(self, method: str) -> None:
        state = self.server.state
        started = time.monotonic()
        split = urllib.parse.urlsplit(self.path)
        path = split.path if split.path in ("", "/") else split.path.rstrip("/")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        vendor = vendor_for(path)
        entry: dict[str, Any] = {
            "time": now_iso(),
            "vendor": vendor,
            "method": method,
            "path": path,
            "query": query,
            "json": None,
            "fault": None,
        }
        sleep_after = 0.0
        body = self._read_body()
        if isinstance(body, Response) and vendor == CONTROL:
            self._send(Response(body.status, {"error": body.body}))
            return
        if isinstance(body, Response):
            response = Response(body.status, error_body(vendor, body.status, body.body))
        else:
            data: Any = None
            bad_json = False
            if body:
                try:
                    data = json.loads(body)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    bad_json = True
            entry["json"] = redact(data)
            if vendor == CONTROL:
                try:
                    if bad_json:
                        raise SandboxError(400, "body is not valid JSON")
                    response = control(state, method, path, query, data)
                except SandboxError as exc:
                    response = Response(exc.status, {"error": exc.message})
                except TypeError as exc:  # unexpected keyword in a control body
                    response = Response(400, {"error": str(exc)})
                self._send(response)
                return  # control calls are not part of the request log
            response, sleep_after = self._vendor(
                state, method, path, query, body, data, bad_json, vendor, entry
            )
        entry["status"] = response.status
        entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        state.log_request(entry)
        if sleep_after:
            time.sleep(sleep_after)
        self._send(response)
        for action in response.after:
            action()

    def _vendor(
        self,
        state: SandboxState,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        data: Any,
        bad_json: bool,
        vendor: str | None,
        entry: dict[str, Any],
    ) -> tuple[Response, float]:
        if vendor is None:
            return Response(404, error_body(None, 404, f"no sandbox route for {path}")), 0.0
        error = check_auth(vendor, self.headers)
        route, params, path_known = match_route(method, path)
        if error is None and route is None:
            status = 405 if path_known else 404
            message = "Method Not Allowed" if path_known else f"Route {method}:{path} not found"
            error = SandboxError(status, message, category="OBJECT_NOT_FOUND" if status == 404 else None)
        if error is None and route is not None:
            error = check_scope(vendor, self.headers, route)
        if error is not None or route is None:
            return self._error(vendor, error or SandboxError(404, "not found")), 0.0
        headers = rate_headers(state, vendor)
        sleep_after = 0.0
        fault = state.take_fault(method, path)
        if fault is not None:
            entry["fault"] = fault["mode"]
            if fault["mode"] == "status":
                response = http_fault_response(vendor, fault)
                response.headers = {**headers, **response.headers}
                return response, 0.0
            if fault["mode"] == "timeout":
                time.sleep(fault["delay"])
                if not fault.get("apply", True):
                    return self._error(vendor, SandboxError(504, "Gateway Timeout (sandbox fault)")), 0.0
            else:
                sleep_after = fault["delay"]
        if bad_json:
            return self._error(vendor, SandboxError(400, "Invalid input JSON: body is not valid JSON")), 0.0
        request = Request(method, path, query, self.headers, body, vendor, params, data)
        try:
            response = route.handler(state, request)
        except SandboxError as exc:
            response = self._error(vendor, exc)
        response.headers = {**headers, **response.headers}
        return response, sleep_after

    @staticmethod
    def _error(vendor: str | None, exc: SandboxError) -> Response:
        body = exc.body if exc.body is not None else error_body(vendor, exc.status, exc.message, exc.category)
        return Response(exc.status, body, dict(exc.headers))


class SandboxServer:
    """The sandbox as an object: ``with SandboxServer() as sandbox: httpx.get(sandbox.url + ...)``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state: SandboxState | None = None,
        verbose: bool = False,
    ) -> None:
        self.state = state or SandboxState()
        self._httpd = _HTTPServer((host, port), self.state, verbose=verbose)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Blocking variant for ``python -m connectors.sandbox``."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def reset(self) -> None:
        self.state.reset()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
