"""Demo data: tenants acme and globex with policies and a user for every role. Idempotent."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Tenant
from tenants.policy import services as policy_services
from tenants.policy.models import IcpDefinition, QuotaPolicy, RolloutPhase, RolloutSettings, SendingPolicy
from tenants.roles import Role
from tenants.services import access_grant, tenant_create

# Development passwords only: printed below, never used outside `make demo`.
DEMO_PASSWORD = "mh1-demo-pass"  # noqa: S105
OPERATOR = ("operator@mh1.local", "Platform Operator")
SANDBOX_URL = "http://127.0.0.1:8025"

TENANTS = {
    "acme": {
        "name": "Acme Corp",
        "time_zone": "America/New_York",
        "phase": RolloutPhase.ASSISTED,
        "icp": {
            "company_size_min": 50,
            "company_size_max": 2000,
            "industries": ["SaaS", "Fintech"],
            "titles": ["Head of Growth", "VP Marketing", "RevOps Manager"],
            "seniorities": ["VP", "Director", "Head"],
            "geographies": ["US", "UK", "DE"],
            "competitor_domains": ["roadrunner.example"],
            "customer_domains": ["wile-e.example"],
        },
    },
    "globex": {
        "name": "Globex Corporation",
        "time_zone": "Europe/Berlin",
        "phase": RolloutPhase.SHADOW,
        "icp": {
            "company_size_min": 200,
            "company_size_max": 10000,
            "industries": ["Manufacturing", "Logistics"],
            "titles": ["COO", "Head of Operations"],
            "seniorities": ["C-level", "VP"],
            "geographies": ["US", "CA"],
            "competitor_domains": ["initech.example"],
            "customer_domains": [],
        },
    },
}
ROLE_USERS = [
    (Role.TENANT_ADMIN, "admin", "Tenant Admin"),
    (Role.REVOPS, "revops", "Rita RevOps"),
    (Role.AE, "ae", "Alex Executive"),
    (Role.VIEWER, "viewer", "Vic Viewer"),
]
# (address local part, first name, company, title, seniority, industry, size, country)
DEMO_LEADS = [
    ("dana", "Dana", "Northwind", "VP Marketing", "VP", "SaaS", 400, "US"),
    ("lee", "Lee", "Contoso", "Head of Growth", "Head", "Fintech", 900, "UK"),
    ("kim", "Kim", "Fabrikam", "RevOps Manager", "Director", "SaaS", 120, "DE"),
    ("ola", "Ola", "Tailspin", "COO", "C-level", "Logistics", 3000, "US"),
    ("raj", "Raj", "Litware", "Analyst", "", "Retail", 20, "IN"),
]
# An agency AE who serves both clients: one person, access to several tenants at once.
SHARED_AE = ("sam@agency.example", "Sam Shared")
# Acme's last 29 days as a tenant in use has them (decided and executed requests, for the home
# page's chart and the agreement figures), and a bad last day: a send that failed and one whose
# outcome is unknown, and a request past its SLA, so the operator's home shows Acme in trouble.
HISTORY_DAYS = 29
HISTORY_PEOPLE = [
    ("mia@blueyonder.example", "Mia", "Blue Yonder"),
    ("tom@adatum.example", "Tom", "Adatum"),
    ("eva@proseware.example", "Eva", "Proseware"),
    ("ben@woodgrove.example", "Ben", "Woodgrove"),
    ("zoe@lucerne.example", "Zoe", "Lucerne"),
]


class Command(BaseCommand):
    help = "Seed demo tenants (acme, globex), their policies and one user per role."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")

    def handle(self, *args, **options):
        port = options["port"]
        connection.set_schema_to_public()
        self._operator()
        self._demo_prices()
        rows = [("public", f"http://localhost:{port}/admin/", OPERATOR[0], "platform operator")]
        for slug, spec in TENANTS.items():
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                provisioned = tenant_create(
                    acting_user=None,
                    name=spec["name"],
                    slug=slug,
                    admin_email=f"admin@{slug}.example",
                    admin_full_name="Tenant Admin",
                    admin_password=DEMO_PASSWORD,
                    time_zone=spec["time_zone"],
                )
                tenant = provisioned.tenant
                self.stdout.write(f"Created tenant {slug} in {provisioned.seconds:.2f} s")
            url = f"http://{slug}.localhost:{port}/admin/"
            for role, local, full_name in ROLE_USERS:
                email = f"{local}@{slug}.example"
                access_grant(
                    acting_user=None,
                    email=email,
                    full_name=full_name,
                    tenants=[tenant],
                    role=role,
                    password=DEMO_PASSWORD,
                )
                rows.append((slug, url, email, role.label))
            self._policies(tenant, spec)
            if slug == "acme":  # before today's requests: they are proposed after a month of sends
                self._history(tenant)
            self._approvals(tenant)
            self._skills(tenant)
            if slug == "acme":
                # one sandbox is one vendor workspace: wiring two tenants to it would show each
                # the other's events. Globex stays in shadow phase without connectors.
                self._connectors(tenant, port)
        both = list(Tenant.objects.filter(slug__in=TENANTS))
        access_grant(
            acting_user=None,
            email=SHARED_AE[0],
            full_name=SHARED_AE[1],
            tenants=both,
            role=Role.AE,
            password=DEMO_PASSWORD,
        )
        rows.append(("acme+globex", "either tenant host", SHARED_AE[0], Role.AE.label))
        self.stdout.write(
            self.style.SUCCESS(f"\nDemo logins (development password for all: {DEMO_PASSWORD})")
        )
        for tenant, url, email, role in rows:
            self.stdout.write(f"  {tenant:<12} {role:<18} {email:<26} {url}")

    def _demo_prices(self) -> None:
        """In the demo the offline provider is priced as a small hosted model (claude-haiku-4-5's
        list price) from 2026-01-01, so each run and the Spend pages show what its tokens would
        cost. A dated row of the platform's price table, as an operator would add it; outside the
        demo the offline provider stays at its seeded price of zero."""
        from datetime import UTC, datetime
        from decimal import Decimal

        from skills.providers import OFFLINE_MODEL
        from tenants.models import ModelPrice

        ModelPrice.objects.get_or_create(
            model=OFFLINE_MODEL,
            effective_from=datetime(2026, 1, 1, tzinfo=UTC),
            defaults={
                "input_usd_per_mtok": Decimal("1.00"),
                "output_usd_per_mtok": Decimal("5.00"),
                "cached_input_usd_per_mtok": Decimal("0.10"),
                "note": "Demo: the offline provider priced as claude-haiku-4-5, so runs show a cost",
            },
        )

    def _operator(self) -> None:
        email, full_name = OPERATOR
        user = User.objects.filter(username=email).first() or User(username=email)
        user.email = email
        user.first_name, _, user.last_name = full_name.partition(" ")
        user.is_staff = True
        user.is_active = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        user.groups.add(Group.objects.get(name=Role.PLATFORM_OPERATOR.group_name))

    def _connectors(self, tenant: Tenant, port: str) -> None:
        """Point the tenant's connectors at the loopback sandbox (started by `make demo`), and
        queue two emails to an address the sandbox reports as unsubscribing."""
        from approvals.services import action_propose
        from connectors.models import Credential, WebhookEndpoint

        with tenant_context(tenant):
            for system in ("hubspot", "gohighlevel", "instantly"):
                Credential.objects.get_or_create(
                    system=system,
                    defaults={
                        "base_url": SANDBOX_URL,
                        "secret": {
                            "token": "sandbox-demo-token",
                            "extra": {"location_id": f"loc-{tenant.slug}"},
                        },
                        "timeout_seconds": 10,
                    },
                )
            WebhookEndpoint.objects.get_or_create(system="instantly")
            self._clay(tenant, port)
            for index, subject in enumerate(("Quick question about Northwind", "Following up")):
                action_propose(
                    kind="email.send",
                    payload={
                        "to": "unsubscribe-demo@northwind.example",
                        "to_name": "Una Subscriber",
                        "subject": subject,
                        "body": "Hi Una,\n\nWorth a short call next week?\n\nBest,\nAlex",
                    },
                    idempotency_key=f"demo-{tenant.slug}-unsub-{index}",
                    skill_run="demo-campaign-copy",
                    release_decision="human_review",
                )

    def _clay(self, tenant: Tenant, port: str) -> None:
        """Clay in the sandbox: a webhook source for the tenant's table, its HTTP API column posting
        results back to our endpoint (written to .local/sandbox.json, which the sandbox reads at
        start, and sent to a running sandbox), and one lookup waiting for approval."""
        from approvals.services import action_propose
        from connectors.models import Credential, WebhookEndpoint

        source = f"{tenant.slug}-enrich"
        Credential.objects.get_or_create(
            system="clay",
            defaults={
                "base_url": SANDBOX_URL,
                "secret": {
                    "webhook_url": f"{SANDBOX_URL}/clay/webhook/{source}",
                    "token": "sandbox-clay-token",
                },
                "timeout_seconds": 10,
            },
        )
        endpoint, _ = WebhookEndpoint.objects.get_or_create(system="clay")
        columns = {
            source: {
                "url": f"http://{tenant.slug}.localhost:{port}/api/v1/webhooks/clay/",
                "headers": {"X-MH1-Webhook-Secret": str(endpoint.secret)},
            }
        }
        config_path = Path(settings.BASE_DIR) / ".local" / "sandbox.json"
        config_path.parent.mkdir(exist_ok=True)
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        config.setdefault("clay_columns", {}).update(columns)
        config_path.write_text(json.dumps(config, indent=2))
        config_path.chmod(0o600)  # it holds the tenant's webhook secret
        # a sandbox already running (re-seeding during `make demo`) learns it at once
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{SANDBOX_URL}/_sandbox/config", json={"clay_columns": columns}, timeout=2)
        action_propose(
            kind="enrichment.lookup",
            payload={"provider": "clay", "email": "dana@northwind.example", "company": "Northwind"},
            idempotency_key=f"demo-{tenant.slug}-enrich-dana",
            skill_run="demo-lead-icp-scoring",
            release_decision="human_review",
        )

    def _approvals(self, tenant: Tenant) -> None:
        """Pending action requests for the AEs to decide (shadowed in a shadow-phase tenant)."""
        from approvals.models import ActionRequest, ApproverRule, EscalationPolicy, Event, Status
        from approvals.services import action_propose

        slug = tenant.slug
        with tenant_context(tenant):
            if not ApproverRule.objects.exists():
                ApproverRule.objects.create(
                    kind="email.send", primary_role=Role.AE, sla_minutes=60, priority=10
                )
                ApproverRule.objects.create(
                    impact_level="critical", primary_role=Role.TENANT_ADMIN, sla_minutes=30
                )
                ApproverRule.objects.create(primary_role=Role.AE, sla_minutes=240, priority=100)
            if not EscalationPolicy.get_solo().l2_contact:
                # through the policy service, as an edit in the admin: validated and audited
                policy_services.policy_update(
                    acting_user=None,
                    policy=EscalationPolicy,
                    l2_contact=f"lead@{slug}.example",
                    l3_contact=f"manager@{slug}.example",
                    l4_contact=f"exec@{slug}.example",
                )
            people = [
                ("dana@northwind.example", "Dana Reyes", "Head of Growth", "Northwind"),
                ("li@contoso.example", "Li Wei", "VP Marketing", "Contoso"),
                ("sam@fabrikam.example", "Sam Okafor", "CEO", "Fabrikam"),
                ("ana@tailspin.example", "Ana Lima", "RevOps Manager", "Tailspin"),
            ]
            for index, (email, name, title, company) in enumerate(people):
                first = name.split()[0]
                action_propose(
                    kind="email.send",
                    payload={
                        "to": email,
                        "to_name": name,
                        "to_title": title,
                        "subject": f"{company} and faster pipeline reviews",
                        "body": (
                            f"Hi {first},\n\nTeams like {company} use us to cut pipeline review time "
                            "in half. Worth a 15-minute look next week?\n\nBest,\nAlex"
                        ),
                    },
                    idempotency_key=f"demo-{slug}-email-{index}",
                    skill_run=f"demo-campaign-copy-{index}",
                    evaluation_score=round(0.72 + index * 0.05, 2),
                    release_decision="human_review",
                )
            action_propose(
                kind="crm.upsert_contact",
                payload={
                    "system": "hubspot",
                    "email": "dana@northwind.example",
                    "properties": {"lifecyclestage": "salesqualifiedlead", "jobtitle": "Head of Growth"},
                    "before": {"lifecyclestage": "marketingqualifiedlead", "jobtitle": "Growth Lead"},
                },
                idempotency_key=f"demo-{slug}-crm-0",
                skill_run="demo-lifecycle-audit",
            )
            action_propose(
                kind="enrichment.lookup",
                payload={"provider": "clay", "email": "li@contoso.example", "fields": ["company_size"]},
                idempotency_key=f"demo-{slug}-enrich-0",
                skill_run="demo-icp-scoring",
            )
            if slug == "acme":  # one of today's emails has waited past its SLA (today's trouble)
                Event.objects.filter(
                    request__idempotency_key=f"demo-{slug}-email-3",
                    request__status=Status.PENDING,
                    request__escalation_level=1,
                    verb="proposed",
                ).update(created_at=timezone.now() - timedelta(hours=3))
                ActionRequest.objects.filter(
                    idempotency_key=f"demo-{slug}-email-3", status=Status.PENDING, escalation_level=1
                ).update(
                    created_at=timezone.now() - timedelta(hours=3),
                    sla_due_at=timezone.now() - timedelta(hours=2),
                )

    def _history(self, tenant: Tenant) -> None:
        """A month of decided requests with their timelines, written as history (no gate, no
        vendor: these already happened), and today's trouble. Skipped when already there."""
        from approvals.models import ActionRequest, Event, Status

        with tenant_context(tenant):
            if ActionRequest.objects.filter(idempotency_key__startswith="demo-history-").exists():
                return
            ae = User.objects.get(username=f"ae@{tenant.slug}.example")
            now = timezone.now()
            made = []
            # (days ago, hours ago within the day, outcome); a steady mix, mostly sent
            plan = [
                (
                    day,
                    9 + slot * 3,
                    ("executed", "executed", "rejected", "executed", "failed")[(day + slot) % 5],
                )
                for day in range(1, HISTORY_DAYS + 1)
                for slot in range(1 + day % 3)
            ]
            plan += [(0, -2, "executed"), (0, -5, "failed"), (0, -3, "unknown")]
            for index, (days_ago, hour, outcome) in enumerate(plan):
                email, first, company = HISTORY_PEOPLE[index % len(HISTORY_PEOPLE)]
                proposed = (now - timedelta(days=days_ago)).replace(minute=12, second=0, microsecond=0)
                proposed = proposed.replace(hour=hour % 24) if days_ago else now + timedelta(hours=hour)
                decided = proposed + timedelta(minutes=25)
                status = {"executed": Status.EXECUTED, "rejected": Status.REJECTED}.get(outcome, outcome)
                request = ActionRequest.objects.create(
                    kind="email.send",
                    payload={
                        "to": email,
                        "to_name": first,
                        "subject": f"{company} and faster pipeline reviews",
                        "body": f"Hi {first},\n\nWorth a 15-minute look next week?\n\nBest,\nAlex",
                    },
                    target=email,
                    summary=f"Email {email}: {company} and faster pipeline reviews",
                    idempotency_key=f"demo-history-{index}",
                    requested_by_skill_run="demo-campaign-copy",
                    release_decision="human_review",
                    status=status,
                    created_at=proposed,
                    deadline=proposed + timedelta(days=3),
                    sla_due_at=proposed + timedelta(hours=1),
                    decided_at=decided,
                    executed_at=decided + timedelta(minutes=1) if outcome == "executed" else None,
                    attempts=0 if outcome == "rejected" else 1,
                    error={
                        "failed": "SMTP 550 5.1.1 mailbox unavailable (the address bounced)",
                        "unknown": "Connection lost after DATA: the server may have accepted it",
                    }.get(outcome, ""),
                    rejection_reason="Too generic for this account." if outcome == "rejected" else "",
                )
                events = [
                    Event(request=request, actor_label="demo-campaign-copy", verb="proposed",
                          to_status="pending", created_at=proposed),
                ]  # fmt: skip
                if outcome == "rejected":
                    events.append(Event(request=request, actor=ae, verb="rejected", from_status="pending",
                                        to_status="rejected", comment=request.rejection_reason,
                                        created_at=decided))  # fmt: skip
                else:
                    events += [
                        Event(request=request, actor=ae, verb="approved", from_status="pending",
                              to_status="approved", created_at=decided),
                        Event(request=request, actor_label="system", verb="executing",
                              from_status="approved", to_status="executing",
                              created_at=decided + timedelta(seconds=20)),
                        Event(request=request, actor_label="system", verb=outcome,
                              from_status="executing", to_status=outcome, comment=request.error,
                              created_at=decided + timedelta(minutes=1)),
                    ]  # fmt: skip
                Event.objects.bulk_create(events)
                made.append(request)
            self.stdout.write(f"  {tenant.slug}: {len(made)} requests of history over {HISTORY_DAYS} days")

    def _policies(self, tenant: Tenant, spec: dict) -> None:
        # through the policy services, as a person's edit would be: validated, audited ("system")
        with tenant_context(tenant):
            rollout = RolloutSettings.get_solo()
            if rollout.phase == RolloutPhase.SHADOW and spec["phase"] != RolloutPhase.SHADOW:
                policy_services.rollout_update(
                    acting_user=None,
                    phase=spec["phase"],
                    agreement_override_reason="Demo tenant: seeded in its phase, no parallel phase ran.",
                )
            if not IcpDefinition.get_solo().industries:
                policy_services.policy_update(acting_user=None, policy=IcpDefinition, **spec["icp"])
            sending = SendingPolicy.get_solo()
            changes: dict = {}
            if sending.monthly_limit == 6000 and tenant.slug == "acme":
                changes.update(monthly_limit=10000, daily_limit=400)
            if not sending.sending_mailboxes:
                # the only From addresses this tenant's emails may carry (the first is the default)
                changes["sending_mailboxes"] = [f"alex@{tenant.slug}.example", f"team@{tenant.slug}.example"]
            if changes:
                policy_services.policy_update(acting_user=None, policy=SendingPolicy, **changes)
            quota = QuotaPolicy.get_solo()
            if quota.daily_usd_limit == Decimal("25.00") and tenant.slug == "acme":
                policy_services.policy_update(
                    acting_user=None, policy=QuotaPolicy, daily_usd_limit=Decimal("40.00")
                )

    def _skills(self, tenant: Tenant) -> None:
        """A messaging pack, a few ICP-scored leads and, for acme, a campaign-crafter run over its
        tier-A leads; globex's token budget is too small for one, so its run is refused with the
        reason. Each through the services a person's click would use."""
        from campaigns.icp_rules import IcpRules, lead_score
        from campaigns.messaging import DEFAULT_PACK, messaging_pack_active, messaging_pack_save
        from campaigns.models import Lead
        from skills.errors import SkillError
        from skills.services.runner import skill_run_start

        with tenant_context(tenant):
            if messaging_pack_active() is None:
                messaging_pack_save(
                    acting_user=None,
                    **{
                        **DEFAULT_PACK,
                        "company_name": tenant.name,
                        "sender_name": "Alex Executive",
                        "postal_address": "500 Market St, San Francisco, CA 94105",
                        "personalisation_rules": {
                            **DEFAULT_PACK["personalisation_rules"],
                            "pain_points": {"SaaS": "CRM hygiene", "Fintech": "pipeline reporting"},
                        },
                    },
                )
            rules = IcpRules.of(IcpDefinition.get_solo())
            for email, first, company, title, seniority, industry, size, country in DEMO_LEADS:
                lead, created = Lead.objects.get_or_create(
                    email=f"{email}@{company.lower()}.example",
                    defaults={
                        "first_name": first,
                        "company": company,
                        "company_domain": f"{company.lower()}.example",
                        "title": title,
                        "seniority": seniority,
                        "industry": industry,
                        "company_size": size,
                        "country": country,
                        "data_source": "demo",
                    },
                )
                if created:
                    # the stored fields (not the keys PostgreSQL derives from them: each would be a query)
                    fields = {
                        f.name: getattr(lead, f.name) for f in Lead._meta.concrete_fields if not f.generated
                    }
                    result = lead_score(fields, rules)
                    Lead.objects.filter(pk=lead.pk).update(
                        icp_score=result.score, icp_tier=result.tier, icp_reasons=list(result.reasons)
                    )
            if tenant.slug == "globex":
                quota = QuotaPolicy.get_solo()
                if quota.monthly_token_budget > 10_000:
                    policy_services.policy_update(
                        acting_user=None, policy=QuotaPolicy, monthly_token_budget=10_000
                    )
            try:
                run = skill_run_start(
                    skill="campaign-crafter",
                    inputs={"tier": "A", "limit": 5, "campaign_id": "demo-q1"},
                    idempotency_key=f"demo:{tenant.slug}:campaign-crafter:tier-a",
                )
            except SkillError as exc:
                self.stdout.write(f"  {tenant.slug}: campaign-crafter not started: {exc}")
                return
            if run.status == "refused":
                self.stdout.write(
                    f"  {tenant.slug}: campaign-crafter run #{run.pk} refused: {run.refusal_reason}"
                )
            else:
                self.stdout.write(
                    f"  {tenant.slug}: campaign-crafter run #{run.pk} {run.status} (tier-A leads)"
                )
