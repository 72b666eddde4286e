"""ICP scores on the lead rows: the SQL re-scoring scores exactly as the skill's Python does, an ICP
edit re-scores every lead through batched tasks (a real worker included), a re-run changes
nothing, a repeated batch writes once, a newer edit supersedes a running re-scoring, one tenant's
re-scoring never touches another's leads, and a run's scores are applied only while they are
current."""

from __future__ import annotations

import random
import time
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from campaigns import scoring
from campaigns.icp_rules import WEIGHTS, IcpRules, lead_score, score_params, score_select_sql, tier_of
from campaigns.models import IcpRescore, IcpRescoreChain, Lead
from tenants.policy.models import IcpDefinition, QuotaPolicy
from tenants.policy.services import policy_update

pytestmark = pytest.mark.django_db

ICP = {
    "company_size_min": 50,
    "company_size_max": 500,
    "industries": ["SaaS", "Fintech"],
    "titles": ["VP Sales", "Head of Growth"],
    "seniorities": ["VP", "Head"],
    "geographies": ["US", "UK"],
    "competitor_domains": ["rival.example"],
    "customer_domains": ["bigcustomer.example"],
}
FIELDS = ("email", "company_domain", "company_size", "industry", "title", "seniority", "country")


@pytest.fixture(autouse=True)
def _no_other_leads(alpha, bravo):
    """Counts below are of this test's leads only (the deletion is rolled back with the test)."""
    for tenant in (alpha, bravo):
        with tenant_context(tenant):
            Lead.objects.all().delete()
            IcpRescore.objects.all().delete()


def _icp(**values) -> IcpDefinition:
    icp = IcpDefinition.get_solo()
    for name, value in {**ICP, **values}.items():
        setattr(icp, name, value)
    icp.save()
    return icp


def _lead(email: str, **fields) -> Lead:
    return Lead.objects.create(email=email, **fields)


def _row(lead: Lead) -> tuple:
    lead.refresh_from_db()
    return (lead.icp_score, lead.icp_tier, tuple(lead.icp_reasons))


def _sql_scores(rules: IcpRules, ids: list[int]) -> dict[int, tuple]:
    with connection.cursor() as cursor:
        cursor.execute(score_select_sql("l.id = ANY(%(ids)s)", rules), {**score_params(rules), "ids": ids})
        return {pk: (score, tier, reasons) for pk, score, tier, reasons in cursor.fetchall()}


# --- the rules ------------------------------------------------------------------------------------


def test_weights_add_up_to_100_and_tiers_cut_at_80_60_40():
    assert sum(WEIGHTS.values()) == 100
    assert [tier_of(c) for c in (10000, 8000, 7999, 6000, 5999, 4000, 3999, 0)] == list("AABBCCDD")


# A wide spread of values: spacing, case, punctuation, regex and LIKE characters, non-ASCII
# letters whose case PostgreSQL and Python fold differently, domains with www. and trailing dots,
# sizes on and around the range's ends, and empty fields.
_INDUSTRIES = [
    "SaaS",
    " saas ",
    "SAAS",
    "Fin-Tech",
    "fintech",
    "E-Commerce",
    "e commerce",
    "Énergie",
    "énergie",
    "Straße",
    "İnşaat",
    "日本",
    "",
    "  ",
    "-",
    "Saa%S",
    "Saa_S",
    "C++ (tools)",
]
_TITLES = [
    "VP Sales",
    "Regional VP Sales, EMEA",
    "vp  sales",
    "VP of Sales",
    "Director",
    "CTO",
    "Head of Growth Marketing",
    "head-of-growth",
    "HeadofGrowth",
    "",
    "C++ Lead (Dev)",
    "Directeur Général",
    "VP.Sales",
    "VP Salesforce Admin",
    "%VP Sales%",
]
_SENIORITIES = ["VP", "vp", "V.P.", "Head", "C-level", "Director", "", "Ärztin", "head "]
_COUNTRIES = ["US", "us", "U.S.", "UK", "uk ", "DE", "Österreich", "österreich", "", "日本"]
_SIZES = [None, 0, 1, 49, 50, 51, 499, 500, 501, 1000, 5000, 100000]
_DOMAINS = [
    "",
    "acme.example",
    "www.acme.example",
    "ACME.example.",
    "rival.example",
    "eu.rival.example",
    "notrival.example",
    "www.bigcustomer.example",
    " BigCustomer.Example ",
    "shop.bigcustomer.example.",
]
_EMAIL_DOMAINS = ["acme.example", "rival.example", "x.rival.example", "bigcustomer.example",
                  "prival.example", "gmail.example"]  # fmt: skip
_ICPS = [
    ICP,
    {**ICP, "industries": [], "titles": [], "seniorities": [], "geographies": []},
    {**ICP, "competitor_domains": [], "customer_domains": []},
    {
        "company_size_min": 1,
        "company_size_max": 1,
        "industries": [" saas", "SaaS", "Énergie", "Saa%S", "C++ (tools)", "-", "日本"],
        "titles": ["C++ Lead", "vp sales", "Head of Growth", "%VP", "Directeur Général", "sales"],
        "seniorities": ["V.P.", "head", "ärztin"],
        "geographies": ["us", "Österreich", "日本"],
        "competitor_domains": ["acme.example", "rival.example"],
        "customer_domains": ["bigcustomer.example"],
    },
    # long domain lists of mixed label counts (the SQL compares one group per label count)
    {
        **ICP,
        "competitor_domains": [f"decoy{i}.example" for i in range(40)]
        + ["eu.rival.example", "x.rival.example"],
        "customer_domains": ["shop.bigcustomer.example", "gmail.example"]
        + [f"c{i}.d.example" for i in range(30)],
    },
]


@pytest.mark.parametrize("icp_index", range(len(_ICPS)))
def test_sql_scores_every_lead_exactly_as_python(alpha, icp_index):
    """The batched re-scoring (SQL) and the skill (Python) must give the same score, tier and
    reasons for every lead, or a lead's score would depend on which path scored it last."""
    rng = random.Random(icp_index)
    with tenant_context(alpha):
        rules = IcpRules.of(_icp(**_ICPS[icp_index]))
        leads = [
            _lead(
                f"p{index}@{rng.choice(_EMAIL_DOMAINS)}",
                company_domain=rng.choice(_DOMAINS),
                company_size=rng.choice(_SIZES),
                industry=rng.choice(_INDUSTRIES),
                title=rng.choice(_TITLES),
                seniority=rng.choice(_SENIORITIES),
                country=rng.choice(_COUNTRIES),
            )
            for index in range(400)
        ]
        sql = _sql_scores(rules, [lead.pk for lead in leads])

    python = {}
    for lead in leads:
        result = lead_score({name: getattr(lead, name) for name in FIELDS}, rules)
        python[lead.pk] = (result.score, result.tier, list(result.reasons))
    assert sql == python
    # the spread reached the tiers this ICP allows, and exclusions where it has domains
    tiers = {tier for _, tier, _ in python.values()}
    assert tiers == ({"A", "D"} if icp_index == 1 else {"A", "B", "C", "D"}), tiers
    excluded = sum(1 for _, _, reasons in python.values() if reasons[0].startswith("excluded: "))
    assert (excluded > 0) == bool(_ICPS[icp_index]["competitor_domains"])


def test_a_lead_edit_updates_the_keys_the_sql_compares(alpha):
    """The keys are stored on the lead when it is written: an edit through the ORM (or a queryset
    update) is scored by its new values, never by the ones it had."""
    with tenant_context(alpha):
        rules = IcpRules.of(_icp())
        lead = _lead("dana@acme.example", industry="Retail", title="Engineer", company_domain="acme.example")
        assert _sql_scores(rules, [lead.pk])[lead.pk][2][1] == "industry Retail not in ICP"
        lead.industry, lead.title = " SAAS ", "Regional VP Sales"
        lead.save()
        Lead.objects.filter(pk=lead.pk).update(company_domain="WWW.Rival.Example.")
        lead.refresh_from_db()
        assert (lead.industry_key, lead.title_key, lead.company_domain_key) == (
            "saas",
            "regional vp sales",
            "rival.example",
        )
        assert _sql_scores(rules, [lead.pk])[lead.pk][2] == [
            "excluded: rival.example is a competitor's domain"
        ]
        Lead.objects.filter(pk=lead.pk).update(company_domain="acme.example")
        reasons = _sql_scores(rules, [lead.pk])[lead.pk][2]
        assert reasons[1:3] == ["industry SAAS matches", "title Regional VP Sales matches VP Sales"]


# --- re-scoring after an ICP edit -----------------------------------------------------------------


@pytest.fixture
def queue(monkeypatch):
    """The re-scoring's messages, kept here instead of the broker; ``drain`` runs them like a
    worker would (each task in its tenant, its on-commit enqueues collected)."""
    from campaigns import tasks

    sent: list[tuple] = []
    monkeypatch.setattr(
        scoring, "_enqueue_rescore", lambda schema: sent.append((tasks.icp_rescore, (schema,)))
    )
    monkeypatch.setattr(
        scoring, "_enqueue_batch", lambda *args: sent.append((tasks.icp_rescore_batch, tuple(args)))
    )
    return sent


@pytest.fixture
def drain(queue, django_capture_on_commit_callbacks):
    def run(limit: int = 500) -> int:
        done = 0
        while queue and done < limit:
            task, args = queue.pop(0)
            with django_capture_on_commit_callbacks(execute=True):
                task.apply(args=args).get()
            done += 1
        connection.set_schema_to_public()
        return done

    return run


@pytest.fixture
def start(queue, django_capture_on_commit_callbacks):
    """``leads_rescore`` in the current tenant, its first messages collected on its commit."""

    def run() -> IcpRescore:
        with django_capture_on_commit_callbacks(execute=True):
            return scoring.leads_rescore(schema_name=connection.schema_name)

    return run


def _icp_edit(tenant, capture, **values) -> None:
    with tenant_context(tenant), capture(execute=True):
        policy_update(acting_user=None, policy=IcpDefinition, **{**ICP, **values})


def _leads(count: int, prefix: str) -> list[Lead]:
    return [
        _lead(
            f"{prefix}{index}@co{index}.example",
            company_size=[40, 120, 800, None][index % 4],
            industry=["SaaS", "Retail", "fintech"][index % 3],
            title=["VP Sales", "Engineer"][index % 2],
            seniority="VP",
            country=["US", "FR"][index % 2],
        )
        for index in range(count)
    ]


def test_an_icp_edit_rescores_every_lead_in_batches(
    alpha, queue, drain, monkeypatch, django_capture_on_commit_callbacks
):
    # given 25 leads scored against an old ICP, and batches of 4 leads
    monkeypatch.setattr(scoring, "RESCORE_BATCH_SIZE", 4)
    with tenant_context(alpha):
        _icp(company_size_min=10, company_size_max=1000)
        leads = _leads(25, "edit")
    queue.clear()

    # when RevOps narrows the company size and the re-scoring's tasks run
    _icp_edit(alpha, django_capture_on_commit_callbacks, company_size_min=100, company_size_max=500)
    assert [task.name for task, _ in queue] == ["campaigns.icp_rescore"]
    tasks_run = drain()

    # then every lead has its score against the new ICP, as the skill's Python scores it
    with tenant_context(alpha):
        rules = IcpRules.of(IcpDefinition.get_solo())
        for lead in leads:
            expected = lead_score({name: getattr(lead, name) for name in FIELDS}, rules)
            assert _row(lead) == (expected.score, expected.tier, tuple(expected.reasons))
        rescore = IcpRescore.objects.get()
        chains = list(IcpRescoreChain.objects.filter(rescore=rescore))
    assert leads[1].icp_reasons[0] == "company size 120 within 100 to 500"
    assert rescore.finished_at is not None and rescore.chains_open == 0
    assert (rescore.leads_scanned, rescore.leads_changed) == (25, 25)
    assert len(chains) == 2 and all(c.finished_at for c in chains)
    # 25 leads in 2 chains of 4-lead batches: 4 batches each (the last finds the end), plus the start
    assert rescore.batches == tasks_run - 1 == 8


def test_a_rerun_changes_nothing_and_a_repeated_batch_writes_once(alpha, queue, drain, start, monkeypatch):
    monkeypatch.setattr(scoring, "RESCORE_BATCH_SIZE", 5)
    with tenant_context(alpha):
        _icp()
        leads = _leads(12, "rerun")
        start()
    drain()
    with tenant_context(alpha):
        before = [_row(lead) for lead in leads]

        # when the same ICP is re-scored again
        again = start()
        first_batch = queue[0][1]
    drain()
    with tenant_context(alpha):
        again.refresh_from_db()
        after = [_row(lead) for lead in leads]
        # and a batch already done is delivered a second time
        repeated = scoring.rescore_batch(
            schema_name=alpha.schema_name, chain_id=first_batch[1], after_id=first_batch[2]
        )
        again_after_repeat = IcpRescore.objects.get(pk=again.pk)

    assert after == before
    assert (again.leads_scanned, again.leads_changed, again.finished_at is not None) == (12, 0, True)
    assert repeated is None
    assert again_after_repeat.batches == again.batches and queue == []


def test_a_newer_edit_supersedes_a_running_rescore(alpha, queue, drain, start):
    with tenant_context(alpha):
        _icp()
        leads = _leads(6, "super")
        old = start()
        new = start()
    drain()
    with tenant_context(alpha):
        old.refresh_from_db()
        new.refresh_from_db()
        rules = IcpRules.of(IcpDefinition.get_solo())
        expected = lead_score({name: getattr(leads[0], name) for name in FIELDS}, rules)
        assert _row(leads[0]) == (expected.score, expected.tier, tuple(expected.reasons))
    assert old.superseded_at is not None and old.batches == 0 and old.finished_at is None
    assert new.finished_at is not None and new.leads_scanned == 6


def test_one_tenants_rescore_does_not_touch_another_tenants_leads(
    alpha, bravo, queue, drain, django_capture_on_commit_callbacks
):
    # given the same leads in both tenants, bravo's scored by hand
    with tenant_context(bravo):
        theirs = _leads(5, "iso")
        Lead.objects.update(icp_score=Decimal("12.34"), icp_tier="D", icp_reasons=["by hand"])
    with tenant_context(alpha):
        ours = _leads(5, "iso")

    # when alpha's ICP is edited and its re-scoring runs
    _icp_edit(alpha, django_capture_on_commit_callbacks)
    assert [args for _, args in queue] == [(alpha.schema_name,)]
    drain()

    # then alpha's leads are scored, bravo's are as they were and bravo ran no re-scoring
    with tenant_context(alpha):
        assert all(_row(lead)[2] for lead in ours)
        assert all(_row(lead)[2] != ("by hand",) for lead in ours)
    with tenant_context(bravo):
        assert {_row(lead) for lead in theirs} == {(Decimal("12.34"), "D", ("by hand",))}
        assert not IcpRescore.objects.exists()


def test_saving_another_policy_starts_no_rescore(alpha, queue, django_capture_on_commit_callbacks):
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        policy_update(acting_user=None, policy=QuotaPolicy, daily_run_limit=40)
    assert queue == []


def test_a_tenant_without_leads_finishes_at_once(alpha, queue, start):
    with tenant_context(alpha):
        Lead.objects.all().delete()
        rescore = start()
    assert rescore.finished_at is not None and queue == []


def test_a_lost_message_is_sent_again(alpha, queue, drain, start, monkeypatch):
    """A chain whose next message was lost (broker down at commit) is resumed by the sweep; a
    repeat of one that was not lost does nothing (the frontier check)."""
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setattr(scoring, "RESCORE_BATCH_SIZE", 3)
    with tenant_context(alpha):
        _icp()
        _leads(7, "lost")
        rescore = start()
        queue.clear()  # every first message lost
        later = timezone.now() + scoring.RESCORE_STALLED_AFTER + timedelta(seconds=1)
        assert scoring.icp_rescores_resume(schema_name=alpha.schema_name, now=later) == 2
    drain()
    with tenant_context(alpha):
        rescore.refresh_from_db()
    assert rescore.finished_at is not None and rescore.leads_scanned == 7


# --- applying a run's scores ----------------------------------------------------------------------


def test_a_runs_scores_are_written_once_and_only_while_current(alpha):
    with tenant_context(alpha):
        icp = _icp()
        lead = _lead("apply@co.example", company_size=100, industry="SaaS")
        entry = {"lead_id": lead.pk, "score": 55.0, "tier": "C", "reasons": ["industry SaaS matches"]}
        version = icp.updated_at.isoformat()

        written = scoring.lead_scores_apply(run_id=1, scores=[entry], icp_updated_at=version)
        again = scoring.lead_scores_apply(run_id=1, scores=[entry], icp_updated_at=version)
        row = _row(lead)
        icp.save()  # the ICP changed after the run scored
        stale = scoring.lead_scores_apply(
            run_id=2, scores=[{**entry, "score": 99, "tier": "A"}], icp_updated_at=version
        )
        gone = scoring.lead_scores_apply(run_id=3, scores=[{**entry, "lead_id": 10**9}])

        with pytest.raises(ValueError, match="out of range"):
            scoring.lead_scores_apply(run_id=4, scores=[{**entry, "tier": "E"}])

    assert (written, again, stale, gone) == (1, 0, 0, 0)
    assert row == (Decimal("55.00"), "C", ("industry SaaS matches",))
    with tenant_context(alpha):
        assert _row(lead) == row


# --- a real worker --------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.usefixtures("transactional_db")
def test_the_rescore_runs_to_the_end_on_a_real_worker(celery_worker, monkeypatch):
    """The chains re-enqueue themselves through the broker until every lead is scored."""
    from tenants.models import Tenant

    monkeypatch.setattr(scoring, "RESCORE_BATCH_SIZE", 7)
    tenant = Tenant.objects.get(slug="worker")
    with tenant_context(tenant):
        policy_update(acting_user=None, policy=IcpDefinition, company_size_min=10, company_size_max=1000)
        leads = _leads(40, "real")
        policy_update(acting_user=None, policy=IcpDefinition, **ICP)  # enqueued on this commit

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            latest = IcpRescore.objects.order_by("-requested_at").first()
            if latest is not None and latest.finished_at is not None and latest.leads_scanned == 40:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the re-scoring did not finish: {latest and vars(latest)}")
        rules = IcpRules.of(IcpDefinition.get_solo())
        for lead in leads:
            expected = lead_score({name: getattr(lead, name) for name in FIELDS}, rules)
            assert _row(lead) == (expected.score, expected.tier, tuple(expected.reasons))
        assert latest.batches >= 40 // 7
