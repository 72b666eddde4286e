"""Query strings PostgreSQL could never compare: refused at the door with a 400.

A NUL byte cannot be stored in or compared with a PostgreSQL text column: a filter or search value
holding one (``?system=a%00b``) raised ``DataError`` deep in the ORM, after the admin's own
parameter checks, and answered 500. No legitimate parameter of ours holds one.
"""

from __future__ import annotations

from django.http import HttpResponseBadRequest, JsonResponse

NUL_MESSAGE = "Query parameters may not contain NUL characters."


def query_has_nul(query) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in query.lists())


class NulQueryGuardMiddleware:
    """Answer 400 to a request whose query string holds a NUL (``%00``) in a name or a value."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if query_has_nul(request.GET):
            if request.path.startswith("/api/"):
                return JsonResponse({"code": "nul_in_query", "detail": NUL_MESSAGE}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
