"""Why a request is in front of the AE, read in one round trip whatever the data size: the lead it
targets (ICP score, tier and reasons, lifecycle stage), earlier requests and vendor events with
this person and their company, the evaluation of the output that proposed it (and of an edit),
and who approved it so far.

Every lookup goes through an index (lead e-mail, lead company domain, request target, webhook
event e-mail, evaluation run / request), and each list is capped, so the page's cost does not grow
with the tenant's tables. The person and their colleagues are one array (``= ANY(ARRAY(…))``): written
as ``target = x OR target IN (colleagues)`` the planner cannot use the index for the OR and reads
the whole table (1.1 s at 1 000 000 requests and events, ``bench/admin_pages.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from approvals.models import ActionRequest, Event, Status

# Colleagues are the leads at the same company domain; past that many, the oldest are not searched.
COLLEAGUES_SEARCHED = 500
TOUCHES_SHOWN = 8

# What a person's earlier request ended as, in words.
OUTCOME_WORDS = {
    Status.EXECUTED: "sent / written",
    Status.REJECTED: "rejected",
    Status.FAILED: "failed",
    Status.UNKNOWN: "outcome unknown",
    Status.EXPIRED: "expired undecided",
    Status.CANCELLED: "cancelled",
    Status.SHADOWED: "not sent (shadow phase)",
    Status.BLOCKED: "blocked by the release policy",
    Status.PENDING: "waiting for a decision",
    Status.APPROVED: "approved, not run yet",
    Status.EXECUTING: "running",
}

_CONTEXT_SQL = """
WITH lead AS (
    SELECT l.id, l.email, l.first_name, l.last_name, l.company, l.company_domain, l.title,
           l.seniority, l.industry, l.company_size, l.country, l.lifecycle_stage, l.icp_score,
           l.icp_tier, l.icp_reasons, s.label AS stage_label
    FROM campaigns_lead l
    LEFT JOIN campaigns_lifecyclestage s ON s.key = l.lifecycle_stage
    WHERE l.email = %(target)s
), colleagues AS (
    SELECT c.email FROM campaigns_lead c JOIN lead ON c.company_domain = lead.company_domain
    WHERE lead.company_domain <> '' AND c.email <> lead.email
    ORDER BY c.id DESC LIMIT %(colleagues)s
)
SELECT
    (SELECT row_to_json(lead) FROM lead),
    (SELECT coalesce(json_agg(t), '[]'::json) FROM (
        SELECT r.id, r.kind, r.status, r.target, r.summary, r.payload ->> 'subject' AS subject,
               r.created_at, r.decided_at, r.rejection_reason, r.target = %(target)s AS same_person
        FROM approvals_actionrequest r
        WHERE r.id <> %(id)s AND %(target)s <> ''
          AND r.target = ANY(ARRAY(SELECT %(target)s::text UNION ALL SELECT email FROM colleagues))
        ORDER BY r.created_at DESC, r.id DESC LIMIT %(touches)s) t),
    (SELECT coalesce(json_agg(w), '[]'::json) FROM (
        SELECT e.system, e.event_type, e.email, e.received_at, e.email = %(target)s AS same_person
        FROM connectors_webhookevent e
        WHERE %(target)s <> ''
          AND e.email = ANY(ARRAY(SELECT %(target)s::text UNION ALL SELECT email FROM colleagues))
        ORDER BY e.received_at DESC LIMIT %(touches)s) w),
    (SELECT row_to_json(v) FROM (
        SELECT id, dimensions, score, score_used, passed, decision, decision_reasons
        FROM evaluation_evaluation
        WHERE run_id = %(run)s AND subject_kind = 'output'
        ORDER BY created_at DESC, id DESC LIMIT 1) v),
    (SELECT row_to_json(v) FROM (
        SELECT id, dimensions, score, score_used, passed, decision, decision_reasons
        FROM evaluation_evaluation
        WHERE request_id = %(id)s AND subject_kind = 'edit'
        ORDER BY created_at DESC, id DESC LIMIT 1) v),
    (SELECT coalesce(json_agg(json_build_object('id', u.id, 'username', u.username)
                              ORDER BY a.created_at, a.id), '[]'::json)
     FROM approvals_approval a JOIN auth_user u ON u.id = a.approver_id
     WHERE a.request_id = %(id)s),
    (SELECT coalesce(json_agg(json_build_object(
            'id', e.id, 'actor_id', e.actor_id, 'actor_label', e.actor_label, 'verb', e.verb,
            'from_status', e.from_status, 'to_status', e.to_status, 'comment', e.comment,
            'data', e.data, 'created_at', e.created_at) ORDER BY e.created_at, e.id), '[]'::json)
     FROM approvals_event e WHERE e.request_id = %(id)s),
    (SELECT json_build_array(id, app_label, model) FROM django_content_type
     WHERE app_label = 'approvals' AND model = 'actionrequest')
"""


@dataclass(frozen=True)
class Touch:
    """An earlier request to this person or a colleague."""

    id: int
    kind: str
    status: str
    target: str
    summary: str
    subject: str
    created_at: datetime
    decided_at: datetime | None
    rejection_reason: str
    same_person: bool

    @property
    def outcome(self) -> str:
        return OUTCOME_WORDS.get(self.status, self.status)


@dataclass(frozen=True)
class VendorEvent:
    """A webhook event about this person or a colleague (a reply, a bounce, an unsubscribe)."""

    system: str
    event_type: str
    email: str
    received_at: datetime
    same_person: bool

    @property
    def words(self) -> str:
        return self.event_type.replace("_", " ").replace(".", " ")


@dataclass(frozen=True)
class DecisionContext:
    lead: dict[str, Any] | None
    touches: list[Touch] = field(default_factory=list)
    vendor_events: list[VendorEvent] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    edit_evaluation: dict[str, Any] | None = None
    approvers: list[dict[str, Any]] = field(default_factory=list)  # who approved it so far
    timeline: list[Event] = field(default_factory=list)  # the request's events, oldest first
    # the request model's content type in this schema (id, app label, model): the admin's change
    # form asks for it, and django-tenants empties Django's cache of them on every schema switch
    content_type: tuple[int, str, str] | None = None

    @property
    def earlier_decisions(self) -> list[Touch]:
        """Earlier requests to this very person that someone (or something) decided."""
        return [t for t in self.touches if t.same_person and t.status != Status.PENDING]


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def decision_context(request: ActionRequest) -> DecisionContext:
    with connection.cursor() as cursor:
        cursor.execute(
            _CONTEXT_SQL,
            {
                "target": request.target or "",
                "id": request.pk,
                "run": request.skill_run_id,
                "colleagues": COLLEAGUES_SEARCHED,
                "touches": TOUCHES_SHOWN,
            },
        )
        lead, touches, events, evaluation, edit_evaluation, approvers, timeline, content_type = (
            json.loads(value) if isinstance(value, str) else value for value in cursor.fetchone()
        )
    return DecisionContext(
        lead=lead,
        touches=[
            Touch(**{**row, "created_at": _when(row["created_at"]), "decided_at": _when(row["decided_at"])})
            for row in touches
        ],
        vendor_events=[VendorEvent(**{**row, "received_at": _when(row["received_at"])}) for row in events],
        evaluation=evaluation,
        edit_evaluation=edit_evaluation,
        approvers=approvers,
        timeline=[
            Event(request_id=request.pk, **{**row, "created_at": _when(row["created_at"])})
            for row in timeline
        ],
        content_type=tuple(content_type) if content_type else None,
    )
