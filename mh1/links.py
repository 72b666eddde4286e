"""Absolute links to one of our hosts: the one place that decides their scheme and port."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def host_url(host: str, path: str = "/", *, request: HttpRequest | None = None) -> str:
    """``path`` on ``host`` (a tenant's domain or the public one), as a browser should open it.

    With a request, the link keeps the scheme and the port the person is using now (an operator
    on ``localhost:8000`` gets ``acme.localhost:8000``). Without one (a task, a command): http and
    the demo port (``MH1_PORT``) in development, https otherwise.
    """
    if request is not None:
        scheme = request.scheme
        port = split_domain_port(request.get_host())[1]
    elif settings.DEBUG:
        scheme, port = "http", settings.DEMO_PORT
    else:
        scheme, port = "https", ""
    netloc = f"{host}:{port}" if port and port != _DEFAULT_PORTS.get(scheme) else host
    return f"{scheme}://{netloc}{path}"
