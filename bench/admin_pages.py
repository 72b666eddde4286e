"""Benchmark: the admin pages people live in, at 1 000 and at 1 000 000 rows, beside a stock changelist.

Pages (Django's test client, DEBUG off, each as the role that uses it):

- the queue (``/admin/approvals/actionrequest/``, default view: pending by deadline) and the
  decision screen of a pending email to a lead with history (earlier decisions, vendor events,
  colleagues at the same company, an evaluation), as an account executive;
- the tenant's home (``/admin/`` on ``benchp.localhost``) as that AE, and the operator's home
  (``/admin/`` on ``localhost``) as a platform operator — informational: it reads every tenant;
- the lead, suppression, webhook-event and audit-log lists, as the tenant admin;
- the baseline: the stock changelist of a plain model with 50 rows in the same tenant
  (``/admin/campaigns/fieldmap/``: a ModelAdmin with list_display, two choice filters and a
  search box, nothing of ours).

Rows are seeded with ``INSERT … SELECT generate_series`` in the tenant's schema: first 1 000 of
each (action requests with their events, leads, suppressions, webhook events, audit entries),
measured, then topped up to 1 000 000 of each (``--large``), measured again. Of the action
requests 300 are pending at both sizes (a realistic queue); the rest were decided over the last
year (executed, rejected, a few failed, expired, cancelled, outcome unknown), each with its events
(proposed → approved → executing → executed, or → rejected …); the oldest ~18 % carry the AI's
decision from the parallel phase. ``VACUUM ANALYZE`` after each size.

Per page: 5 warm-up loads, then ``--loads`` timed rounds in which every page is loaded once (so a
busy moment of the shared machine hits all pages alike), median and p95, and the SQL of one more
load (query count, SQL time, the slowest statement). Targets per page: the same query count at
both sizes, median(1M) / median(1k) ≤ 1.3, median ≤ 2 x the baseline's median (at each size).

Run by hand (not part of `make test`), on a database of its own:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/mh1_bench_pages REDIS_URL=redis://127.0.0.1:6379/12
    .venv/bin/python manage.py migrate_console -v0
    .venv/bin/python bench/admin_pages.py              # --large 100000 for a quick run; --keep

The tenant ``benchp`` is dropped (schema and all) and created again at the start, and dropped at
the end unless --keep (with --keep, ``--reuse`` measures the kept rows again without seeding).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time
import uuid
from decimal import Decimal

from _common import ae_user, setup_django

setup_django()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from tenants.models import Tenant, TenantAccessGrant  # noqa: E402
from tenants.roles import Role  # noqa: E402

SLUG = "benchp"
TENANT_HOST = f"{SLUG}.localhost"
PUBLIC_HOST = "localhost"
ADMIN_EMAIL = f"admin@{SLUG}.example"
AE_EMAIL = f"ae@{SLUG}.example"
OPERATOR_EMAIL = f"operator@{SLUG}.example"
KEY_PREFIX = "bench-pages-"
FOCUS_KEY = f"{KEY_PREFIX}focus"
# The decision screen's lead: lead7 at co1.example (leads 5-9 are its colleagues there).
FOCUS_LEAD = 7
PENDING = 300  # pending requests at every size: the queue a team works through
LEADS_PER_COMPANY = 5
WARMUP = 5
TARGET_RATIO, TARGET_BASELINE = 1.3, 2.0


# --- tenant, users ----------------------------------------------------------------------------


def drop_tenant() -> bool:
    connection.set_schema_to_public()
    dropped = False
    for tenant in Tenant.objects.filter(slug=SLUG):
        TenantAccessGrant.objects.filter(tenant=tenant).delete()
        tenant.delete(force_drop=True)
        dropped = True
    # raw: the ORM's cascade walks relations that only tenant schemas have (API tokens)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM auth_user_groups WHERE user_id IN (SELECT id FROM auth_user WHERE username = %s)",
            [OPERATOR_EMAIL],
        )
        cursor.execute(
            "UPDATE auditlog_logentry SET actor_id = NULL WHERE actor_id IN "
            "(SELECT id FROM auth_user WHERE username = %s)",
            [OPERATOR_EMAIL],
        )
        cursor.execute("DELETE FROM auth_user WHERE username = %s", [OPERATOR_EMAIL])
    return dropped


def existing_tenant() -> Tenant | None:
    connection.set_schema_to_public()
    return Tenant.objects.filter(slug=SLUG).first()


def create_tenant() -> Tenant:
    from _common import bench_tenant

    return bench_tenant(SLUG, "Bench pages", assisted=True)


def operator_user() -> User:
    connection.set_schema_to_public()
    user = User.objects.filter(username=OPERATOR_EMAIL).first() or User(username=OPERATOR_EMAIL)
    user.email, user.is_staff, user.is_active = OPERATOR_EMAIL, True, True
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))
    return user


def logged_in(host: str, tenant: Tenant | None, user: User) -> Client:
    client = Client(HTTP_HOST=host)
    if tenant is None:
        connection.set_schema_to_public()
        client.force_login(user, backend="mh1.auth_backends.OneQueryModelBackend")
    else:
        with tenant_context(tenant):
            client.force_login(user, backend="mh1.auth_backends.OneQueryModelBackend")
    connection.set_schema_to_public()
    return client


# --- seeding ----------------------------------------------------------------------------------

# Action requests n in [lo, hi]: n <= PENDING are pending (recent), the rest decided over the last
# year. Request n targets lead n. Random draws are materialised once per row (a CTE), so that the
# status, the times and the events agree.
_REQUESTS_SQL = """
WITH s AS MATERIALIZED (
  SELECT n, random() AS r_status, random() AS r_age, random() AS r_kind, random() AS r_impact,
         random() AS r_flags, random() AS r_decide
    FROM generate_series(%(lo)s, %(hi)s) AS n
), t AS (
  SELECT n, r_kind, r_flags,
    CASE WHEN n <= %(pending)s THEN 'pending'
         WHEN r_status < 0.70 THEN 'executed'
         WHEN r_status < 0.90 THEN 'rejected'
         WHEN r_status < 0.93 THEN 'failed'
         WHEN r_status < 0.96 THEN 'expired'
         WHEN r_status < 0.995 THEN 'cancelled'
         ELSE 'unknown' END AS status,
    CASE WHEN n <= %(pending)s THEN now() - r_age * interval '3 days'
         ELSE now() - interval '1 hour' - r_age * interval '365 days' END AS created_at,
    CASE WHEN r_kind < 0.80 THEN 'email.send' WHEN r_kind < 0.90 THEN 'crm.upsert_contact'
         WHEN r_kind < 0.95 THEN 'crm.add_tag' ELSE 'enrichment.lookup' END AS kind,
    CASE WHEN r_impact < 0.40 THEN 'low' WHEN r_impact < 0.80 THEN 'medium'
         WHEN r_impact < 0.95 THEN 'high' ELSE 'critical' END AS impact,
    r_decide,
    'lead' || n || '@co' || (n / %(per_company)s) || '.example' AS target
  FROM s
), u AS (
  SELECT t.*,
    CASE WHEN status IN ('pending', 'expired', 'cancelled') THEN NULL
         ELSE created_at + interval '10 minutes' + r_decide * interval '8 hours' END AS decided_at
  FROM t
)
INSERT INTO approvals_actionrequest (
  kind, payload, payload_diff, target, execution_mode, requested_by_skill_run, impact_level,
  risk_flags, evaluation_score, release_decision, ai_decision, idempotency_key, correlation_id,
  deadline, status, approvals_required, assigned_role, assigned_to_id, sla_due_at,
  escalation_level, attempts, max_attempts, error, rejection_reason, redo_instructions,
  cancel_reason, created_at, decided_at, executed_at, updated_at, reasoning, summary)
SELECT
  kind,
  CASE kind
    WHEN 'email.send' THEN jsonb_build_object(
      'to', target, 'to_name', 'Lee ' || n, 'subject', 'Quick idea for Company ' || (n / %(per_company)s),
      'body', 'Hi Lee,' || chr(10) || 'A short note about your pipeline and the webinar next week.'
              || chr(10) || 'Best, the team')
    WHEN 'crm.upsert_contact' THEN jsonb_build_object(
      'email', target, 'properties', jsonb_build_object('lifecyclestage', 'marketingqualifiedlead'))
    WHEN 'crm.add_tag' THEN jsonb_build_object('email', target, 'tag', 'tier_1')
    ELSE jsonb_build_object('email', target, 'fields', jsonb_build_array('title', 'company_size'))
  END,
  '{}'::jsonb, target, 'execute', 'bench-skill', impact,
  CASE WHEN r_flags < 0.15 THEN '["c_level_target"]'::jsonb
       WHEN r_flags < 0.20 THEN '["pii_present", "spam_words", "c_level_target"]'::jsonb
       ELSE '[]'::jsonb END,
  CASE WHEN kind = 'email.send' THEN round((0.70 + r_flags * 0.3)::numeric, 2) END,
  CASE WHEN kind = 'email.send' THEN 'human_review' ELSE '' END,
  -- the parallel phase, at the start of the year: the AI's decision beside the person's
  CASE WHEN status <> 'pending' AND created_at < now() - interval '300 days'
       THEN CASE WHEN r_decide < 0.85 THEN CASE WHEN status = 'rejected' THEN 'reject' ELSE 'approve' END
                 ELSE CASE WHEN status = 'rejected' THEN 'approve' ELSE 'reject' END END
       ELSE '' END,
  %(prefix)s || n, md5(n::text),
  CASE WHEN status = 'pending' THEN now() + interval '1 hour' + r_decide * interval '30 days'
       ELSE created_at + interval '72 hours' END,
  status, CASE WHEN impact = 'critical' THEN 2 ELSE 1 END, 'ae',
  CASE WHEN status = 'pending' AND n %% 20 = 0 THEN %(ae)s END,
  created_at + interval '4 hours', 1,
  CASE WHEN status IN ('executed', 'failed', 'unknown') THEN 1 ELSE 0 END, 3,
  CASE status WHEN 'failed' THEN 'SMTP 550: mailbox unavailable'
              WHEN 'unknown' THEN 'Timed out after DATA: the message may have been sent.' ELSE '' END,
  CASE WHEN status = 'rejected' THEN 'Too pushy; mention the webinar instead.' ELSE '' END,
  '',
  CASE WHEN status = 'cancelled' THEN 'The recipient was suppressed after the proposal.' ELSE '' END,
  created_at, decided_at,
  CASE WHEN status IN ('executed', 'failed', 'unknown') THEN decided_at + interval '1 minute' END,
  coalesce(decided_at + interval '1 minute', created_at),
  'ICP tier A lead; opened the last email twice.',
  CASE WHEN kind = 'email.send' THEN '' ELSE 'Keep the CRM in step with the lead' END
FROM u
"""

# Each request's timeline, as the services write it (verb = the status it moved to).
_EVENTS_SQL = """
INSERT INTO approvals_event
  (request_id, actor_id, actor_label, verb, from_status, to_status, comment, data, created_at)
SELECT r.id, e.actor, e.label, e.verb, e.from_status, e.to_status, '', '{}'::jsonb, e.at
FROM approvals_actionrequest r
CROSS JOIN LATERAL (VALUES
  (NULL::int, 'bench-skill', 'proposed', '', 'pending', r.created_at, true),
  (%(ae)s, %(ae_label)s, 'approved', 'pending', 'approved', r.decided_at,
   r.status IN ('executed', 'failed', 'unknown')),
  (NULL, 'system', 'executing', 'approved', 'executing', r.executed_at - interval '2 seconds',
   r.status IN ('executed', 'failed', 'unknown')),
  (NULL, 'system', r.status, 'executing', r.status, r.executed_at,
   r.status IN ('executed', 'failed', 'unknown')),
  (%(ae)s, %(ae_label)s, 'rejected', 'pending', 'rejected', r.decided_at, r.status = 'rejected'),
  (NULL, 'system', r.status, 'pending', r.status, r.deadline, r.status IN ('expired', 'cancelled'))
) AS e(actor, label, verb, from_status, to_status, at, happened)
WHERE r.id > %(after)s AND r.idempotency_key LIKE %(like)s AND e.happened
"""

_LEADS_SQL = """
WITH s AS MATERIALIZED (
  SELECT n, random() AS r1, random() AS r2, random() AS r3 FROM generate_series(%(lo)s, %(hi)s) AS n
)
INSERT INTO campaigns_lead (
  email, first_name, last_name, company, company_domain, title, seniority, industry, company_size,
  country, lifecycle_stage, source_system, source_id, icp_score, icp_tier, icp_reasons, data_source,
  collected_at, legal_basis, created_at, updated_at)
SELECT
  'lead' || n || '@co' || (n / %(per_company)s) || '.example',
  (ARRAY['Lee', 'Kim', 'Pat', 'Sam', 'Alex', 'Noor', 'Ana', 'Jon'])[1 + n %% 8],
  'Lead' || n,
  'Company ' || (n / %(per_company)s),
  'co' || (n / %(per_company)s) || '.example',
  (ARRAY['Head of Growth', 'VP Sales', 'CTO', 'Marketing Manager', 'RevOps Lead', 'CEO'])
    [1 + (r1 * 6)::int %% 6],
  (ARRAY['vp', 'director', 'c-level', 'manager', 'individual'])[1 + (r2 * 5)::int %% 5],
  (ARRAY['SaaS', 'Fintech', 'Healthcare', 'Retail', 'Manufacturing'])[1 + (r3 * 5)::int %% 5],
  10 + (r1 * 2000)::int,
  (ARRAY['United States', 'Germany', 'United Kingdom', 'France', 'Canada'])[1 + n %% 5],
  (ARRAY['subscriber', 'lead', 'lead', 'mql', 'sql', 'opportunity', 'customer'])[1 + (r2 * 7)::int %% 7],
  (ARRAY['hubspot', 'gohighlevel', 'instantly', 'clay', 'csv'])[1 + n %% 5],
  'src-' || n,
  round((r3 * 100)::numeric, 2),
  CASE WHEN r3 >= 0.75 THEN 'A' WHEN r3 >= 0.5 THEN 'B' WHEN r3 >= 0.25 THEN 'C' ELSE 'D' END,
  ARRAY['industry SaaS +30', 'title Head of Growth +25', 'company size ' || (10 + (r1 * 2000)::int)],
  'clay', now() - r1 * interval '700 days', 'legitimate_interest',
  now() - r1 * interval '700 days', now() - r1 * interval '300 days'
FROM s
"""

_SUPPRESSIONS_SQL = """
INSERT INTO connectors_suppression (email, domain, reason, source, note, created_at, pushed_to)
SELECT
  CASE WHEN n %% 33 = 0 THEN '' ELSE 'supp' || n || '@s' || (n / 3) || '.example' END,
  CASE WHEN n %% 33 = 0 THEN 'blocked' || n || '.example' ELSE '' END,
  (ARRAY['unsubscribed', 'bounced', 'bounced', 'complained', 'dnc', 'manual'])[1 + n %% 6],
  (ARRAY['instantly', 'instantly', 'hubspot', 'gohighlevel', 'admin', 'mh1'])[1 + (n / 7) %% 6],
  '', now() - random() * interval '365 days', '{}'::jsonb
FROM generate_series(%(lo)s, %(hi)s) AS n
"""

# Webhook event n is about lead n (so every lead, the decision screen's too, has one).
_WEBHOOKS_SQL = """
WITH s AS MATERIALIZED (SELECT n, random() AS r FROM generate_series(%(lo)s, %(hi)s) AS n)
INSERT INTO connectors_webhookevent
  (system, event_id, event_type, email, payload, received_at, outcome, pending)
SELECT 'instantly', %(prefix)s || n, t.event_type,
  'lead' || n || '@co' || (n / %(per_company)s) || '.example',
  jsonb_build_object('event_type', t.event_type,
                     'lead_email', 'lead' || n || '@co' || (n / %(per_company)s) || '.example',
                     'campaign_id', 'camp-' || (n %% 40), 'timestamp', now()),
  now() - r * interval '365 days', t.outcome, false
FROM s CROSS JOIN LATERAL (SELECT
  CASE WHEN r < 0.40 THEN 'email_sent' WHEN r < 0.70 THEN 'email_opened'
       WHEN r < 0.80 THEN 'link_clicked' WHEN r < 0.88 THEN 'reply_received'
       WHEN r < 0.92 THEN 'auto_reply_received' WHEN r < 0.96 THEN 'email_bounced'
       ELSE 'lead_unsubscribed' END AS event_type,
  CASE WHEN r >= 0.92 THEN 'suppressed' ELSE '' END AS outcome) AS t
"""

_AUDIT_SQL = """
INSERT INTO auditlog_logentry (
  object_pk, object_id, object_repr, action, changes, changes_text, timestamp, actor_id,
  content_type_id, remote_addr, cid, additional_data, actor_email)
SELECT (n %% 100000)::text, n %% 100000,
  'lead' || (n %% 100000) || '@co' || ((n %% 100000) / %(per_company)s) || '.example', n %% 3,
  CASE n %% 3
    WHEN 1 THEN jsonb_build_object('title', jsonb_build_array('', 'VP Sales'),
                                   'lifecycle_stage', jsonb_build_array('lead', 'mql'))
    WHEN 0 THEN jsonb_build_object('email', jsonb_build_array('None', 'lead' || n || '@example.com'))
    ELSE jsonb_build_object('email', jsonb_build_array('lead' || n || '@example.com', 'None'))
  END,
  '', now() - random() * interval '365 days',
  CASE WHEN n %% 3 = 0 THEN %(admin)s END,
  (%(content_types)s)[1 + n %% %(n_types)s],
  ('10.0.' || (n %% 200) || '.' || (n %% 250))::inet,
  md5((n / 4)::text), NULL,
  CASE WHEN n %% 3 = 0 THEN %(admin_email)s END
FROM generate_series(%(lo)s, %(hi)s) AS n
"""

# 13 field maps come with every tenant; the baseline list shows 50.
BASELINE_ROWS = 50
_BASELINE_SQL = """
INSERT INTO campaigns_fieldmap (system, canonical_field, remote_field, direction, transform)
SELECT s.system, f.field, s.system || '.' || f.field, 'both', 'none'
FROM (VALUES ('instantly'), ('clay'), ('csv'), ('synthetic'), ('manual')) AS s(system)
CROSS JOIN (VALUES ('email'), ('first_name'), ('last_name'), ('company'), ('company_domain'),
                   ('title'), ('seniority'), ('industry'), ('country')) AS f(field)
ON CONFLICT DO NOTHING
"""


def seed(tenant: Tenant, ae: User, admin: User, lo: int, hi: int) -> dict[str, float]:
    """Rows lo … hi of every table; seconds per table."""
    took: dict[str, float] = {}
    params = {"lo": lo, "hi": hi, "prefix": KEY_PREFIX, "per_company": LEADS_PER_COMPANY}
    with tenant_context(tenant):
        from django.contrib.contenttypes.models import ContentType

        from approvals.models import ActionRequest
        from campaigns.models import Lead
        from connectors.models import Suppression
        from tenants.policy.models import RolloutSettings

        content_types = [
            ContentType.objects.get_for_model(model).pk
            for model in (Lead, Lead, Lead, ActionRequest, ActionRequest, User, Suppression, RolloutSettings)
        ]
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
            cursor.execute("SELECT setseed(%s)", [(lo % 1000) / 1000])
            cursor.execute(
                "SELECT coalesce(max(id), 0) FROM approvals_actionrequest WHERE idempotency_key LIKE %s",
                [KEY_PREFIX + "%"],
            )
            after = cursor.fetchone()[0]
            for name, sql, extra in (
                ("action requests", _REQUESTS_SQL, {"pending": PENDING, "ae": ae.pk}),
                ("events", _EVENTS_SQL, {"ae": ae.pk, "ae_label": ae.username, "after": after,
                                         "like": KEY_PREFIX + "%"}),
                ("leads", _LEADS_SQL, {}),
                ("suppressions", _SUPPRESSIONS_SQL, {}),
                ("webhook events", _WEBHOOKS_SQL, {}),
                ("audit log", _AUDIT_SQL, {"admin": admin.pk, "admin_email": admin.email,
                                           "content_types": content_types,
                                           "n_types": len(content_types)}),
            ):  # fmt: skip
                started = time.perf_counter()
                cursor.execute(sql, {**params, **extra})
                took[name] = time.perf_counter() - started
    return took


def seed_baseline(tenant: Tenant) -> int:
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(_BASELINE_SQL)
        cursor.execute(
            "DELETE FROM campaigns_fieldmap WHERE id IN (SELECT id FROM campaigns_fieldmap "
            "ORDER BY id OFFSET %s)",
            [BASELINE_ROWS],
        )
        cursor.execute("SELECT count(*) FROM campaigns_fieldmap")
        return cursor.fetchone()[0]


def seed_focus(tenant: Tenant, ae: User) -> int:
    """The decision screen's request: a pending email to lead 7 proposed by a skill run with an
    evaluation, through the real proposal service; earlier requests to the same person (decided),
    vendor events about them. Returns its id."""
    from approvals.services import action_propose
    from evaluation.models import Evaluation
    from skills.models import SkillRun

    target = f"lead{FOCUS_LEAD}@co{FOCUS_LEAD // LEADS_PER_COMPANY}.example"
    with tenant_context(tenant):
        run = SkillRun.objects.create(
            skill="campaign-crafter",
            skill_version="1",
            inputs={"lead": target},
            execution_mode="preview",
            idempotency_key=f"{KEY_PREFIX}run-{uuid.uuid4()}",
            status="succeeded",
        )
        dims = {
            name: {"label": label, "score": score, "low": score - 0.1, "weight": 0.2, "reasons": reasons}
            for name, label, score, reasons in (
                ("brand_voice", "Brand voice", 0.62, ["Uses the avoided word 'synergy'."]),
                ("personalisation", "Personalisation", 0.81, ["Names the company and the role."]),
                ("clarity", "Clarity", 0.77, []),
                ("compliance", "Compliance", 0.95, ["Postal address and unsubscribe present."]),
                ("accuracy", "Accuracy", 0.70, ["One claim is not in the messaging pack."]),
            )
        }
        Evaluation.objects.create(
            run=run,
            content_kind="emails",
            score=Decimal("0.71"),
            score_used=Decimal("0.66"),
            passed=True,
            srac_score=Decimal("4.2"),
            srac_passed=True,
            rubric_version="1",
            rubric_hash="h",
            rubric="r",
            prompt_hash="p",
            decision="human_review",
            decision_reasons=["Score 0.66 (lower bound of the judge's runs) is below 0.70."],
            dimensions=dims,
        )
        request = action_propose(
            kind="email.send",
            payload={
                "to": target,
                "to_name": "Lee Lead7",
                "to_title": "Head of Growth",
                "subject": "Following up on the pipeline review",
                "body": "Hi Lee,\n\nThanks for reading our last note. Would a 20-minute review of "
                "your outbound pipeline help before the quarter closes?\n\nBest,\nthe team",
            },
            idempotency_key=FOCUS_KEY,
            skill_run="campaign-crafter",
            run=run,
            evaluation_score=0.66,
            release_decision="human_review",
            summary="Second touch after two opens",
            reasoning="Tier A lead, opened the last email twice, no reply yet.",
        )
        with connection.cursor() as cursor:
            # three earlier requests to the same person: two sent, one rejected; and their events
            cursor.execute(
                """
                INSERT INTO approvals_actionrequest (
                  kind, payload, payload_diff, target, execution_mode, requested_by_skill_run,
                  impact_level, risk_flags, release_decision, ai_decision, idempotency_key,
                  correlation_id, deadline, status, approvals_required, assigned_role, sla_due_at,
                  escalation_level, attempts, max_attempts, error, rejection_reason,
                  redo_instructions, cancel_reason, created_at, decided_at, executed_at,
                  updated_at, reasoning, summary)
                SELECT 'email.send', jsonb_build_object('to', %(to)s, 'subject', 'Earlier idea #' || k),
                  '{}', %(to)s, 'execute', 'campaign-crafter', 'medium', '[]', 'human_review', '',
                  %(prefix)s || 'focus-history-' || k, '', now() - k * interval '20 days', s, 1, 'ae',
                  now() - k * interval '20 days', 1, 0, 3, '',
                  CASE WHEN s = 'rejected' THEN 'Too early for a second touch.' ELSE '' END, '', '',
                  now() - k * interval '21 days', now() - k * interval '21 days' + interval '1 hour',
                  CASE WHEN s = 'executed' THEN now() - k * interval '21 days' + interval '2 hours' END,
                  now() - k * interval '21 days' + interval '2 hours', '', ''
                FROM (VALUES (1, 'executed'), (2, 'rejected'), (3, 'executed')) AS h(k, s)
                """,
                {"to": target, "prefix": KEY_PREFIX},
            )
            cursor.execute(
                """
                INSERT INTO connectors_webhookevent (system, event_id, event_type, email, payload,
                                                     received_at, outcome, pending)
                SELECT 'instantly', %(prefix)s || 'focus-ev-' || k, t, %(to)s, '{}',
                       now() - k * interval '5 days', '', false
                FROM (VALUES (1, 'email_opened'), (2, 'email_opened'), (3, 'link_clicked'),
                             (4, 'email_sent')) AS e(k, t)
                """,
                {"to": target, "prefix": KEY_PREFIX},
            )
    return request.pk


# The tables seeded to each size (the baseline's field maps are not).
SEEDED_TABLES = (
    "approvals_actionrequest",
    "approvals_event",
    "campaigns_lead",
    "connectors_suppression",
    "connectors_webhookevent",
    "auditlog_logentry",
)


def vacuum_analyze(tenant: Tenant) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in (*SEEDED_TABLES, "campaigns_fieldmap"):
            cursor.execute(f'VACUUM ANALYZE "{tenant.schema_name}".{table}')
    return time.perf_counter() - started


def row_counts(tenant: Tenant) -> dict[str, int]:
    with tenant_context(tenant), connection.cursor() as cursor:
        counts = {}
        for table in SEEDED_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our table names
            counts[table] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM approvals_actionrequest WHERE status = 'pending'")
        counts["pending"] = cursor.fetchone()[0]
    return counts


# --- measuring --------------------------------------------------------------------------------

BASELINE = "baseline"


def pages(focus_id: int) -> list[tuple[str, str, str, str, bool]]:
    """(key, label, client, path, informational)."""
    return [
        ("queue", "queue (pending by deadline)", "ae", "/admin/approvals/actionrequest/", False),
        ("decision", "decision screen", "ae", f"/admin/approvals/actionrequest/{focus_id}/change/", False),
        ("tenant_home", "tenant home (AE)", "ae", "/admin/", False),
        ("operator_home", "operator home (info)", "operator", "/admin/", True),
        ("leads", "leads", "admin", "/admin/campaigns/lead/", False),
        ("suppressions", "suppressions", "admin", "/admin/connectors/suppression/", False),
        ("webhooks", "webhook events", "admin", "/admin/connectors/webhookevent/", False),
        ("audit", "audit log", "admin", "/admin/auditlog/logentry/", False),
        (BASELINE, "baseline: field maps (50)", "admin", "/admin/campaigns/fieldmap/", True),
    ]


def load(client: Client, path: str):
    response = client.get(path, secure=True)  # DEBUG off: plain http is redirected to https
    if response.status_code != 200:
        raise SystemExit(f"GET {path} answered {response.status_code}")
    return response


def measure(clients: dict[str, Client], page_list, loads: int) -> dict[str, dict]:
    for _key, _, who, path, _ in page_list:
        for _ in range(WARMUP):
            load(clients[who], path)
    timings: dict[str, list[float]] = {key: [] for key, *_ in page_list}
    for _ in range(loads):
        for key, _, who, path, _ in page_list:
            started = time.perf_counter()
            load(clients[who], path)
            timings[key].append((time.perf_counter() - started) * 1000)
    results = {}
    for key, _, who, path, _ in page_list:
        sql: list[tuple[float, str]] = []

        def timed(execute, statement, params, many, context, sql=sql):
            started = time.perf_counter()
            try:
                return execute(statement, params, many, context)
            finally:
                sql.append(((time.perf_counter() - started) * 1000, _shown(statement, params)))

        # the connection as a server's is after a request of this page (not as the previous
        # page's bookkeeping below left it: a SET search_path more)
        load(clients[who], path)
        with connection.execute_wrapper(timed):
            response = load(clients[who], path)
        connection.set_schema_to_public()
        values = sorted(timings[key])
        results[key] = {
            "median": statistics.median(values),
            "p95": values[max(0, round(0.95 * len(values)) - 1)],
            "queries": len(sql),
            "sql_ms": sum(ms for ms, _ in sql),
            "slowest": max(sql, key=lambda q: q[0]) if sql else (0.0, ""),
            "sql": sql,
            "bytes": len(response.content),
        }
    return results


def _shown(statement: str, params) -> str:
    """The statement with its parameters in place, for reading only (not for running)."""
    if not params:
        return statement
    if isinstance(params, dict):
        quoted: dict | tuple = {k: repr(v) for k, v in params.items()}
    else:
        quoted = tuple(repr(v) for v in params)
    try:
        return statement % quoted
    except (TypeError, ValueError, KeyError):
        return statement


def profile(client: Client, path: str, loads: int = 10, top: int = 40, sort: str = "tottime") -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(loads):
        load(client, path)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
    return out.getvalue()


# --- report -----------------------------------------------------------------------------------


def report(page_list, small: int, large: int, results: dict[int, dict[str, dict]]) -> bool:
    s, lg = results[small], results[large]
    label_of = {key: label for key, label, *_ in page_list}
    head = (
        f"{'page':<30} {'q@1k':>5} {'q@1M':>5} {'med@1k':>8} {'med@1M':>8} {'p95@1M':>8} "
        f"{'ratio':>6} {'/base':>6}  queries ratio  base"
    )
    print(f"\nsmall = {small:,} rows, large = {large:,} rows; times in ms (server time, test client)")
    print(head)
    print("-" * len(head))
    all_ok = True
    for key, _, _, _, informational in page_list:
        a, b = s[key], lg[key]
        ratio = b["median"] / a["median"]
        versus = max(a["median"] / s[BASELINE]["median"], b["median"] / lg[BASELINE]["median"])
        checks = (a["queries"] == b["queries"], ratio <= TARGET_RATIO, versus <= TARGET_BASELINE)
        if key == BASELINE:
            verdicts = ("  -  ",) * 3
        else:
            verdicts = tuple(("PASS " if ok else "MISS ") + ("*" if informational else " ") for ok in checks)
            if not informational:
                all_ok &= all(checks)
        print(
            f"{label_of[key]:<30} {a['queries']:>5} {b['queries']:>5} "
            f"{a['median']:>8.1f} {b['median']:>8.1f} "
            f"{b['p95']:>8.1f} {ratio:>6.2f} {versus:>6.2f}  {verdicts[0]:<7} {verdicts[1]:<6} {verdicts[2]}"
        )
    print("(/base: the page's median over the baseline's median at the same size, the worse of the two;")
    print(" * informational, not counted)")
    print(f"\n{'page':<30} {'SQL ms @1k':>10} {'SQL ms @1M':>10}  slowest statement at {large:,}")
    for key, *_ in page_list:
        ms, sql = lg[key]["slowest"]
        print(
            f"{label_of[key]:<30} {s[key]['sql_ms']:>10.1f} {lg[key]['sql_ms']:>10.1f}  "
            f"{ms:6.1f} ms {' '.join(sql.split())[:110]}"
        )
    return all_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--loads", type=int, default=30, help="timed loads per page and size")
    parser.add_argument("--keep", action="store_true", help="leave the tenant benchp and its rows")
    parser.add_argument("--reuse", action="store_true", help="measure the kept tenant at its size")
    parser.add_argument("--profile", action="append", default=[], help="cProfile this page (a key)")
    parser.add_argument("--show-sql", action="append", default=[], help="list this page's SQL (a key)")
    args = parser.parse_args()

    call_command("migrate_console", verbosity=0)
    settings.DEBUG = False  # no query log, no debug pages: production-like timings
    t0 = time.perf_counter()

    if args.reuse and existing_tenant() is not None:
        tenant = existing_tenant()
        sizes: tuple[int, ...] = ()
    else:
        if drop_tenant():
            print(f"dropped the tenant {SLUG} left by an earlier run")
        tenant = create_tenant()
        sizes = (args.small, args.large)
    ae = ae_user(tenant, AE_EMAIL)
    with tenant_context(tenant):
        admin = User.objects.get(username=ADMIN_EMAIL)
        from approvals.models import ActionRequest

        focus = ActionRequest.objects.filter(idempotency_key=FOCUS_KEY)
        focus_id = focus.values_list("pk", flat=True).first()
    connection.set_schema_to_public()
    operator = operator_user()
    clients = {
        "ae": logged_in(TENANT_HOST, tenant, ae),
        "admin": logged_in(TENANT_HOST, tenant, admin),
        "operator": logged_in(PUBLIC_HOST, None, operator),
    }
    results: dict[int, dict[str, dict]] = {}
    seeded = 0
    try:
        if not sizes:
            counts = row_counts(tenant)
            print("measuring the kept rows:", counts)
            results[counts["approvals_actionrequest"]] = measure(clients, pages(focus_id), args.loads)
            for key in args.profile:
                page = {k: (who, path) for k, _, who, path, _ in pages(focus_id)}[key]
                print(f"\n--- cProfile of 10 loads of {key}\n" + profile(clients[page[0]], page[1]))
        for size in sizes:
            started = time.perf_counter()
            took = seed(tenant, ae, admin, seeded + 1, size)
            if seeded == 0:
                focus_id = seed_focus(tenant, ae)
                seed_baseline(tenant)
            seeded = size
            vacuum = vacuum_analyze(tenant)
            counts = row_counts(tenant)
            print(
                f"seeded {size:,} rows each in {time.perf_counter() - started:.1f} s ("
                + ", ".join(f"{name} {sec:.1f} s" for name, sec in took.items())
                + f", VACUUM ANALYZE {vacuum:.1f} s): "
                + ", ".join(f"{table} {n:,}" for table, n in counts.items())
            )
            started = time.perf_counter()
            results[size] = measure(clients, pages(focus_id), args.loads)
            print(f"measured {size:,} in {time.perf_counter() - started:.1f} s")
            for key in args.profile:
                page = {k: (who, path) for k, _, who, path, _ in pages(focus_id)}[key]
                print(f"\n--- cProfile of 10 loads of {key} at {size:,}")
                print(profile(clients[page[0]], page[1]))
    finally:
        connection.set_schema_to_public()
        if not args.keep:
            drop_tenant()
            print(f"dropped the tenant {SLUG}")

    if len(results) == 2:
        ok = report(pages(focus_id), args.small, args.large, results)
        print("\nRESULT:", "PASS" if ok else "MISS")
    else:
        for key, r in next(iter(results.values())).items():
            print(f"{key:<16} {r['queries']:>3} queries  median {r['median']:7.1f}  p95 {r['p95']:7.1f}  "
                  f"SQL {r['sql_ms']:6.1f} ms")  # fmt: skip
    for key in args.show_sql:
        for size, by_page in results.items():
            print(f"\nSQL of {key} at {size:,}")
            for ms, sql in by_page[key]["sql"]:
                print(f"  {ms:7.1f} ms  {' '.join(sql.split())[:400]}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
