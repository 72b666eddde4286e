"""Executor registry: how an approved action of each kind reaches the outside world.

An executor must be idempotent by the request's idempotency key: called twice with the same key
(a redelivered task after a crash), the effect happens once and the recorded outcome comes back.
Connectors register theirs here; the ``log`` executor serves every kind until they do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from django.db import connection, transaction

from approvals.models import ActionRequest, ExecutedEffect

logger = logging.getLogger(__name__)


class Executor(Protocol):
    def __call__(self, request: ActionRequest, payload: dict[str, Any]) -> dict[str, Any]: ...


def log_executor(request: ActionRequest, payload: dict[str, Any]) -> dict[str, Any]:
    """Record the effect in ExecutedEffect once per idempotency key, in the transaction that
    re-checks every gate (an effect already recorded is a repeat, whatever the gates say now)."""
    from approvals import gates

    with transaction.atomic(), connection.cursor() as cursor:
        gates.effect_gate(
            request,
            effect_exists_sql="EXISTS (SELECT 1 FROM approvals_executedeffect e "
            "WHERE e.idempotency_key = r.idempotency_key)",
        )
        cursor.execute(
            "INSERT INTO approvals_executedeffect (idempotency_key, kind, payload, executed_at) "
            "VALUES (%s, %s, %s::jsonb, now()) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            [request.idempotency_key, request.kind, _json(payload)],
        )
        row = cursor.fetchone()
    effect_id = row[0] if row else ExecutedEffect.objects.get(idempotency_key=request.idempotency_key).pk
    logger.info("log executor: %s %s (%s)", request.kind, request.target, "new" if row else "repeat")
    return {"executor": "log", "effect_id": effect_id, "repeat": row is None}


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


_EXECUTORS: dict[str, Callable[..., dict[str, Any]]] = {}
_DEFAULT: Callable[..., dict[str, Any]] = log_executor


def register(kind: str, executor: Callable[..., dict[str, Any]]) -> None:
    _EXECUTORS[kind] = executor


def executor_for(kind: str) -> Callable[..., dict[str, Any]]:
    return _EXECUTORS.get(kind, _DEFAULT)
