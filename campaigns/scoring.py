"""ICP scores on the lead rows: applying an icp-scoring run's scores, and re-scoring every lead
after the ICP changes, as one batched job per tenant.

The rules themselves (weights, tiers, exclusions, reasons) are ``campaigns.icp_rules``: the
skill scores in Python with them, the re-scoring here in SQL with the same rules, and a test keeps
the two equal. Score writes are the console's own data, not a vendor effect: they do not go
through the approval queue, and they are set-based SQL that bypasses the audit log (the run's
output and the ``IcpRescore`` row say what was scored and when). A lead's ``updated_at`` is not
touched: a new score is not an edit of the lead.

Re-scoring: ``icp_rescore_on_commit()`` (called where the ICP is saved) enqueues
``campaigns.icp_rescore`` after the commit; ``leads_rescore`` splits the leads' id range into
``RESCORE_CHAINS`` chains, and each chain is a ``campaigns.icp_rescore_batch`` task that scores
``RESCORE_BATCH_SIZE`` leads in one statement and enqueues the next batch after its commit, until
its range is done. Each batch moves its chain's frontier under the chain's row lock in the same
transaction as the leads it wrote, so a batch delivered twice writes once; a newer ICP edit
supersedes a running re-scoring, whose chains stop at their next batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns.icp_rules import IcpRules, score_params, score_select_sql
from campaigns.models import IcpRescore, IcpRescoreChain, IcpTier

logger = logging.getLogger(__name__)

# Leads per batch (one UPDATE, one transaction). Measured by bench/icp_rescore.py on the shared
# 2-core machine: 20 000 leads whose scores all change take about 1.2 s (≈ 60 µs a lead: scoring
# ≈ 15 µs, the rest writing the new row versions and their index entries), short enough that a
# batch never holds its rows or the ICP's share lock long, big enough that the task round trip
# (≈ 10 ms) is under 1 % of it.
RESCORE_BATCH_SIZE = 20_000
# Chains a re-scoring runs along at once: one per worker process we expect to be free. Two let a
# 1 000 000-lead re-scoring use both cores of a two-core database (one statement uses one).
RESCORE_CHAINS = 2
# A chain whose frontier has not moved for this long lost its next message (broker down at
# commit, a worker killed between commit and enqueue): icp_rescores_resume re-sends it.
RESCORE_STALLED_AFTER = timedelta(minutes=5)
# Scores one lead_scores_apply statement writes at a time.
APPLY_BATCH_SIZE = 1000


def icp_rules_current() -> IcpRules:
    """The current tenant's ICP as scoring rules."""
    from tenants.policy.models import IcpDefinition

    return IcpRules.of(IcpDefinition.get_solo())


def _icp_rules_locked() -> tuple[IcpRules, Any]:
    """The ICP's rules under a share lock held to the end of the transaction, so the ICP cannot
    change while a batch writes scores from it: an edit waits for the batch (and a batch started
    during an edit waits for its commit), and every batch that committed before the edit is
    rewritten by the re-scoring the edit enqueues."""
    from tenants.policy.models import IcpDefinition

    pk = IcpDefinition.get_solo().pk  # creates the row with its defaults when there is none yet
    with connection.cursor() as cursor:
        # FOR SHARE, not FOR UPDATE: two batches must not wait for each other, only for an edit
        cursor.execute("SELECT 1 FROM policy_icpdefinition WHERE id = %s FOR SHARE", [pk])
    icp = IcpDefinition.objects.get(pk=pk)  # read after the lock: the committed row
    return IcpRules.of(icp), icp.updated_at


# --- applying a run's scores ---------------------------------------------------------------------


def _valid_score(entry: Mapping[str, Any]) -> tuple[int, Decimal, str, list[str]]:
    try:
        lead_id = int(entry["lead_id"])
        score = Decimal(str(entry["score"])).quantize(Decimal("0.01"))
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise ValueError(f"Not a lead score: {entry!r}.") from None
    tier = str(entry.get("tier", ""))
    reasons = entry.get("reasons") or []
    if not Decimal(0) <= score <= Decimal(100) or tier not in IcpTier.values:
        raise ValueError(f"Lead {lead_id}: score {score} / tier {tier!r} out of range.")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise ValueError(f"Lead {lead_id}: reasons must be a list of texts.")
    return lead_id, score, tier, reasons


def lead_scores_apply(
    *, run_id: int | None, scores: Iterable[Mapping[str, Any]], icp_updated_at: str | None = None
) -> int:
    """Write an icp-scoring run's scores (``output["scores"]``: lead_id, score, tier, reasons) to
    the lead rows; returns how many leads changed. Leads that no longer exist are skipped.

    ``icp_updated_at`` (the run's ``output["icp_updated_at"]``): when the ICP has been saved
    since the run scored, nothing is written (0), because the re-scoring that save enqueued has
    scored those leads against the newer ICP and the run's scores would undo it. Raises
    ValueError for a malformed entry, before writing anything.
    """
    rows = [_valid_score(entry) for entry in scores]
    if not rows:
        return 0
    changed = 0
    with transaction.atomic():
        _, current = _icp_rules_locked()
        if icp_updated_at is not None and current.isoformat() != icp_updated_at:
            logger.info("run %s: the ICP changed since it scored; not applied", run_id)
            return 0
        with connection.cursor() as cursor:
            for start in range(0, len(rows), APPLY_BATCH_SIZE):
                chunk = rows[start : start + APPLY_BATCH_SIZE]
                row_sql = "(%s::bigint, %s::numeric(5,2), %s::varchar(1), %s::text[])"
                values = ", ".join([row_sql] * len(chunk))
                params: list[Any] = [value for row in chunk for value in row]
                cursor.execute(
                    f"""
                    UPDATE campaigns_lead AS t
                    SET icp_score = v.score, icp_tier = v.tier, icp_reasons = v.reasons
                    FROM (VALUES {values}) AS v(id, score, tier, reasons)
                    WHERE t.id = v.id
                      AND (t.icp_score, t.icp_tier, t.icp_reasons)
                          IS DISTINCT FROM (v.score, v.tier, v.reasons)
                    """,  # noqa: S608 - only placeholders are formatted in
                    params,
                )
                changed += cursor.rowcount
    logger.info("run %s: %s lead score(s) written, %s changed", run_id, len(rows), changed)
    return changed


# --- re-scoring every lead -----------------------------------------------------------------------


def icp_rescore_on_commit() -> None:
    """Call inside the transaction that saves the ICP: once it commits, every lead of this tenant
    is re-scored (``leads_rescore`` in a worker). The schema is captured now (pitfall 2) and the
    enqueue never fails the save (pitfall 15: ``icp_rescores_resume`` catches a lost one)."""
    transaction.on_commit(partial(_enqueue_rescore, connection.schema_name), robust=True)


def _enqueue_rescore(schema_name: str) -> None:
    from campaigns.tasks import icp_rescore
    from mh1.tenancy import enqueue_quietly

    enqueue_quietly(icp_rescore, (schema_name,), what=f"ICP re-scoring of {schema_name}")


def _enqueue_batch(schema_name: str, chain_id: int, after_id: int) -> None:
    from campaigns.tasks import icp_rescore_batch

    icp_rescore_batch.apply_async(args=(schema_name, chain_id, after_id))


@transaction.atomic
def leads_rescore(*, schema_name: str, chains: int | None = None) -> IcpRescore:
    """Start re-scoring every lead of the tenant (the current schema, named ``schema_name`` for
    its tasks) against the current ICP; returns the ``IcpRescore`` whose chains run as Celery
    tasks from the commit on. A re-scoring still running is superseded (its chains stop)."""
    if connection.schema_name != schema_name:
        raise ValueError(f"leads_rescore for {schema_name!r} called in schema {connection.schema_name!r}.")
    from tenants.policy.models import IcpDefinition

    now = timezone.now()
    IcpRescore.objects.filter(finished_at__isnull=True, superseded_at__isnull=True).update(superseded_at=now)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM campaigns_lead")
        low, high = cursor.fetchone()
    rescore = IcpRescore.objects.create(icp_updated_at=IcpDefinition.get_solo().updated_at)
    if low is None:
        rescore.finished_at = now
        rescore.save(update_fields=["finished_at"])
        return rescore
    span = high - low + 1
    count = max(1, min(chains or RESCORE_CHAINS, -(-span // RESCORE_BATCH_SIZE)))
    step = -(-span // count)
    bounds = [
        (low - 1 + i * step, None if i == count - 1 else low - 1 + (i + 1) * step) for i in range(count)
    ]
    created = IcpRescoreChain.objects.bulk_create(
        [IcpRescoreChain(rescore=rescore, after_id=after, upto_id=upto) for after, upto in bounds]
    )
    rescore.chains_open = len(created)
    rescore.save(update_fields=["chains_open"])
    for chain in created:
        transaction.on_commit(partial(_enqueue_batch, schema_name, chain.pk, chain.after_id), robust=True)
    return rescore


_CHAIN_SQL = """
SELECT c.after_id, c.upto_id, c.finished_at IS NULL AND r.superseded_at IS NULL AND r.finished_at IS NULL
FROM campaigns_icprescorechain AS c JOIN campaigns_icprescore AS r ON r.id = c.rescore_id
WHERE c.id = %s
FOR UPDATE OF c
"""
_BATCH_END_SQL = """
SELECT id FROM campaigns_lead WHERE id > %(after)s AND (%(upto)s::bigint IS NULL OR id <= %(upto)s)
ORDER BY id OFFSET %(offset)s LIMIT 1
"""


def rescore_batch_sql(where: str, rules: IcpRules) -> str:
    """One statement that scores the leads ``where`` picks and writes those whose score, tier or
    reasons changed; it answers (leads scanned, leads changed)."""
    return f"""
    WITH scored AS ({score_select_sql(where, rules)}),
    written AS (
      UPDATE campaigns_lead AS t
      SET icp_score = s.score, icp_tier = s.tier, icp_reasons = s.reasons
      FROM scored AS s
      WHERE t.id = s.id
        AND (t.icp_score, t.icp_tier, t.icp_reasons) IS DISTINCT FROM (s.score, s.tier, s.reasons)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM scored), (SELECT count(*) FROM written)
    """  # noqa: S608 - ``where`` is ours, values are placeholders


def leads_score(*, lead_ids: Iterable[int]) -> int:
    """Score these leads now against the current ICP, in the caller's transaction (its share lock
    on the ICP is held to the caller's commit); returns how many leads changed. For leads just
    written (the CSV import), so they carry their score from the moment they exist: the same
    statement the re-scoring runs, on an id list instead of an id range."""
    ids = sorted({int(i) for i in lead_ids})
    if not ids:
        return 0
    changed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        rules, _ = _icp_rules_locked()
        sql = rescore_batch_sql("l.id = ANY(%(ids)s::bigint[])", rules)
        for start in range(0, len(ids), RESCORE_BATCH_SIZE):
            cursor.execute(sql, {**score_params(rules), "ids": ids[start : start + RESCORE_BATCH_SIZE]})
            changed += cursor.fetchone()[1]
    return changed


def rescore_batch(
    *, schema_name: str, chain_id: int, after_id: int, batch_size: int | None = None
) -> int | None:
    """Score the next ``batch_size`` leads of the chain after ``after_id``; enqueue the chain's
    next batch after the commit. Returns the new frontier, or None when there is nothing to do
    (the chain is done, its re-scoring superseded, or this batch already ran: a repeat delivery)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CHAIN_SQL, [chain_id])
            row = cursor.fetchone()
            if row is None or not row[2] or row[0] != after_id:
                return None
            upto = row[1]
            offset = (batch_size or RESCORE_BATCH_SIZE) - 1
            cursor.execute(_BATCH_END_SQL, {"after": after_id, "upto": upto, "offset": offset})
            end = cursor.fetchone()
            last = end is None
            rules, _ = _icp_rules_locked()
            params = {**score_params(rules), "after": after_id, "end": end[0] if end else upto}
            where = "l.id > %(after)s AND (%(end)s::bigint IS NULL OR l.id <= %(end)s)"
            cursor.execute(rescore_batch_sql(where, rules), params)
            scanned, changed = cursor.fetchone()
            frontier = end[0] if end else (upto if upto is not None else _max_lead_id(cursor, after_id))
            cursor.execute(
                "UPDATE campaigns_icprescorechain SET after_id = %s, updated_at = now(),"
                " finished_at = CASE WHEN %s THEN now() END WHERE id = %s RETURNING rescore_id",
                [frontier, last, chain_id],
            )
            (rescore_id,) = cursor.fetchone()
            cursor.execute(
                """
                UPDATE campaigns_icprescore
                SET batches = batches + 1, leads_scanned = leads_scanned + %(scanned)s,
                  leads_changed = leads_changed + %(changed)s, chains_open = chains_open - %(closed)s,
                  finished_at = CASE WHEN chains_open - %(closed)s = 0 THEN now() END
                WHERE id = %(id)s
                """,
                {"scanned": scanned, "changed": changed, "closed": int(last), "id": rescore_id},
            )
        if not last:
            transaction.on_commit(partial(_enqueue_batch, schema_name, chain_id, frontier), robust=True)
    return frontier


def _max_lead_id(cursor, after_id: int) -> int:
    cursor.execute("SELECT coalesce(max(id), %s) FROM campaigns_lead", [after_id])
    return cursor.fetchone()[0]


def icp_rescores_resume(*, schema_name: str, now=None) -> int:
    """Re-send what a re-scoring lost: the next batch of a chain that has not moved for
    ``RESCORE_STALLED_AFTER`` (a repeat is harmless: the frontier check drops it), and a
    re-scoring for an ICP saved since the last one started (its enqueue was lost). For a
    per-tenant sweep; returns how many messages were sent."""
    from tenants.policy.models import IcpDefinition

    now = now or timezone.now()
    sent = 0
    stalled = IcpRescoreChain.objects.filter(
        finished_at__isnull=True,
        rescore__finished_at__isnull=True,
        rescore__superseded_at__isnull=True,
        updated_at__lt=now - RESCORE_STALLED_AFTER,
    )
    for chain in stalled:
        _enqueue_batch(schema_name, chain.pk, chain.after_id)
        sent += 1
    latest = IcpRescore.objects.order_by("-requested_at").first()
    icp = IcpDefinition.get_solo()
    if latest is not None and latest.icp_updated_at is not None and icp.updated_at > latest.icp_updated_at:
        _enqueue_rescore(schema_name)
        sent += 1
    return sent
