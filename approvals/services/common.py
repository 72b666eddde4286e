"""What every state change of an action request shares: the transition table, the one
function that moves a locked request (with its event and audit entry), scheduling of execution,
routing to approvers."""

import logging
from datetime import datetime, timedelta
from typing import Any

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from guardian.shortcuts import remove_perm

from approvals import registry
from approvals.errors import (
    IllegalTransition,
    NotAllowed,
)
from approvals.gates import can_decide
from approvals.models import (
    ActionRequest,
    ApproverRule,
    Event,
    Status,
)
from mh1.sql import fetchone
from mh1.tenancy import enqueue_quietly
from tenants.roles import Role

logger = logging.getLogger(__name__)


SYSTEM = "system"


DEFAULT_SLA_MINUTES = 240


TRANSITIONS: dict[str, set[str]] = {
    Status.PENDING: {Status.APPROVED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED},
    # executing → cancelled only when the executor found a gate closed before any effect
    # executing → approved: deferred by a limit before any effect, to run again at not_before
    # approved | executing → expired: the approval's validity ran out before the effect
    Status.APPROVED: {Status.EXECUTING, Status.CANCELLED, Status.EXPIRED},
    Status.EXECUTING: {
        Status.EXECUTED,
        Status.FAILED,
        Status.CANCELLED,
        Status.APPROVED,
        Status.EXPIRED,
        Status.UNKNOWN,
    },
    # an operator's re-queue (→ approved) or resolution (→ executed | failed), with a reason
    Status.FAILED: {Status.APPROVED},
    Status.UNKNOWN: {Status.APPROVED, Status.EXECUTED, Status.FAILED},
}


def _event(
    request: ActionRequest,
    verb: str,
    *,
    actor: User | None = None,
    actor_label: str = "",
    from_status: str = "",
    to_status: str = "",
    comment: str = "",
    data: dict[str, Any] | None = None,
) -> Event:
    return Event.objects.create(
        request=request,
        verb=verb,
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else SYSTEM),
        from_status=from_status,
        to_status=to_status,
        comment=comment,
        data=data or {},
    )


def _transition(
    request: ActionRequest,
    to_status: str,
    *,
    actor: User | None = None,
    actor_label: str = "",
    comment: str = "",
    data: dict[str, Any] | None = None,
    fields: tuple[str, ...] = (),
) -> ActionRequest:
    """Move a locked request to ``to_status`` or raise IllegalTransition (nothing changed)."""
    from_status = request.status
    if to_status not in TRANSITIONS.get(from_status, set()):
        raise IllegalTransition(
            f"Request #{request.pk} is {request.get_status_display().lower()}; it cannot become {to_status}."
        )
    request.status = to_status
    # The audit entry is written here from what we know (from, to, actor from the audit context)
    # instead of auditlog re-reading and diffing the whole row on every transition.
    with disable_auditlog():
        request.save(update_fields=["status", "updated_at", *fields])
    LogEntry.objects.log_create(
        request, action=LogEntry.Action.UPDATE, changes={"status": [from_status, to_status]}, force_log=True
    )
    _event(
        request,
        to_status,
        actor=actor,
        actor_label=actor_label,
        from_status=from_status,
        to_status=to_status,
        comment=comment,
        data=data,
    )
    return request


# The execution path's own transitions (system actor) in one statement: the status and any
# columns, the event and the audit row. On the hot path this replaces four ORM round trips (and
# auditlog's content-type lookup, re-read after every tenant switch) with one.
_SYSTEM_TRANSITION_SQL = """
WITH u AS (
  UPDATE approvals_actionrequest SET status = %(to)s, updated_at = %(now)s{set_sql}
  WHERE id = %(id)s AND status = %(from)s
  RETURNING id, kind, target
), e AS (
  INSERT INTO approvals_event (request_id, actor_id, actor_label, verb, from_status, to_status, comment, data,
                               created_at)
  SELECT id, NULL, %(label)s, %(to)s, %(from)s, %(to)s, %(comment)s, %(data)s::jsonb, %(now)s FROM u
)
INSERT INTO auditlog_logentry (object_pk, object_id, object_repr, action, changes, changes_text, timestamp,
                               content_type_id, cid)
SELECT id::text, id, '#' || id || ' ' || kind || ' → ' || COALESCE(NULLIF(target, ''), '—'), 1,
       jsonb_build_object('status', jsonb_build_array(%(from)s, %(to)s)), '', %(now)s,
       (SELECT id FROM django_content_type WHERE app_label = 'approvals' AND model = 'actionrequest'), %(cid)s
FROM u RETURNING object_id
"""


def _system_transition(
    request_id: int,
    from_status: str,
    to_status: str,
    *,
    set_sql: str = "",
    params: dict[str, Any] | None = None,
    comment: str = "",
    data: dict[str, Any] | None = None,
) -> bool:
    """``from_status`` → ``to_status`` by the system, in one statement (the UPDATE takes the row
    lock); False, and nothing written, when the request is no longer ``from_status``."""
    import json

    from auditlog.cid import get_cid

    if to_status not in TRANSITIONS.get(from_status, set()):
        raise IllegalTransition(f"Request #{request_id} cannot go from {from_status} to {to_status}.")
    row = fetchone(
        _SYSTEM_TRANSITION_SQL.replace("{set_sql}", set_sql),
        {
            "id": request_id,
            "from": from_status,
            "to": to_status,
            "now": timezone.now(),
            "label": SYSTEM,
            "comment": comment,
            "data": json.dumps(data or {}, default=str),
            "cid": get_cid(),
            **(params or {}),
        },
    )
    return row is not None


# A deferral further away than this is left to the sweep instead of a broker ETA: an ETA beyond
# the broker's visibility timeout would be delivered twice (pitfall 8).
MAX_ETA = timedelta(minutes=30)


def _schedule_execution(request: ActionRequest, eta: datetime | None = None) -> None:
    from approvals.tasks import execute_action

    # The schema is captured now, not at commit (pitfall 2).
    schema_name, request_id = connection.schema_name, request.pk
    if eta is not None and eta - timezone.now() > MAX_ETA:
        return  # requests_release_deferred() enqueues it when it is due
    options = {"eta": eta} if eta is not None else {}

    def enqueue() -> None:
        # The decision is committed; with the broker down requests_redispatch_stale() enqueues
        # it again from the sweep, so the approver's request neither fails nor waits for Redis.
        enqueue_quietly(
            execute_action,
            (schema_name, request_id),
            what=f"execution of #{request_id} in {schema_name}",
            **options,
        )

    transaction.on_commit(enqueue, robust=True)


def _check_can_decide(user: User, request: ActionRequest) -> None:
    kind = registry.get_kind(request.kind)
    if not can_decide(user, request):
        raise NotAllowed(f"Your role cannot decide on '{kind.label}' actions (needs {kind.permission}).")


def _route(kind: str, impact: str) -> tuple[ApproverRule | None, int]:
    for rule in ApproverRule.objects.select_related("primary_approver", "backup_approver"):
        if rule.kind in ("", kind) and rule.impact_level in ("", impact):
            return rule, rule.sla_minutes
    return None, DEFAULT_SLA_MINUTES


def _assignee(rule: ApproverRule | None) -> tuple[User | None, str]:
    if rule is None:
        return None, Role.AE
    for user in (rule.primary_approver, rule.backup_approver):
        if user is not None and user.is_active:
            return user, rule.primary_role
    return None, rule.primary_role


def _agreement(request: ActionRequest, human: str) -> dict[str, Any]:
    if request.ai_decision in ("approve", "reject"):
        return {"ai_decision": request.ai_decision, "human_decision": human}
    return {}


def _revoke_object_perms(user: User, request: ActionRequest) -> None:
    spec = registry.get_kind(request.kind)
    remove_perm(spec.permission, user, request)
    remove_perm("approvals.view_actionrequest", user, request)
