"""The one strict JSON reader: what PostgreSQL could never store is refused with a message.

Python's ``json`` accepts NaN and Infinity (not JSON), reads ``1e999`` as infinity, recurses into
any nesting until a ``RecursionError``, and returns strings PostgreSQL cannot hold (NUL, lone
surrogates such as ``"\\ud800"``). Each of those answered 500 somewhere (a jsonb column refusing the
value, or the parser's own crash). Every JSON body is read here instead: the API's DRF parser
(``StrictJSONParser``, the default in settings) and the webhooks (``connectors.api``).

- NaN, Infinity and numbers beyond a double's range are refused;
- nesting deeper than ``MAX_JSON_DEPTH`` is refused;
- NUL and lone surrogates in any string (keys too) are refused, or, for webhooks, which must
  store every well-formed event (``storable=True``), replaced with U+FFFD.

The checks that walk the value run only when a cheap test on the raw body says they may find
something (an escape of the kind, more brackets than the depth limit): the Instantly accept path
reads thousands of bodies a second.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deeper than any body we accept (the webhooks' and the API's nest a few levels); far below
# what exhausts Python's stack or PostgreSQL's jsonb.
MAX_JSON_DEPTH = 64
# Only an escape can put a NUL or a lone surrogate into a string of valid UTF-8 JSON.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels is refused."


class JsonRefused(ValueError):
    """The body is not JSON we can use; the message says why (shown to the caller)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        # json_syntax (not JSON at all), json_number, json_depth, json_text
        self.code = code


def _refuse_constant(name: str) -> float:
    raise JsonRefused(f"{name} is not a JSON number (NaN and Infinity are refused).", "json_number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused(f"The number {text[:40]} is out of range.", "json_number")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _clean(value: Any, *, storable: bool) -> Any:
    """``value`` with NUL and lone surrogates replaced (``storable``) or refused. Recursive: only
    called on values within MAX_JSON_DEPTH."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value) is None:
            return value
        if not storable:
            message = "Text may not contain NUL characters or lone surrogates (\\u0000, \\ud800…)."
            raise JsonRefused(message, "json_text")
        return _UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_clean(k, storable=storable): _clean(v, storable=storable) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, storable=storable) for v in value]
    return value


def json_storable(value: Any) -> Any:
    """``value`` (parsed JSON: within MAX_JSON_DEPTH) with what PostgreSQL's jsonb cannot hold
    (NUL, lone surrogates) replaced by U+FFFD: the one helper for storing a vendor's event as sent,
    whatever path it came by."""
    return _clean(value, storable=True)


def json_strict_loads(body: bytes | str, *, storable: bool = False) -> Any:
    """Parse a JSON body strictly (see the module's docstring); raises ``JsonRefused``."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused(TOO_DEEP, "json_depth") from None
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise JsonRefused(f"Not valid JSON ({str(exc)[:120]}).", "json_syntax") from None
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth_exceeds(value, MAX_JSON_DEPTH):
        raise JsonRefused(TOO_DEEP, "json_depth")
    if _SUSPECT_ESCAPE.search(raw):
        value = _clean(value, storable=storable)
    return value


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, reading through ``json_strict_loads``: a refused body is a 400 whose
    message says why, never a 500 further down."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        try:
            return json_strict_loads(body)
        except JsonRefused as exc:
            raise ParseError(f"JSON parse error - {exc.message}") from None
