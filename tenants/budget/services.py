"""The budget ledger's state changes: reserve a run's worst case, settle what it spent, release
what it no longer needs, charge priced actions, and sweep what dead runs still hold.

Every change runs in the current tenant's schema and inside the caller's transaction when there
is one, so a run that is rolled back reserves nothing. Counters change only by
conditional SQL: the limits are checked and the day and month counters incremented in one
statement (``budget_reserve_admit``, tenants/budget/sql.py), never read-modify-written in Python.

Lock order, the same on every path so that no two of them deadlock: the reservation row, then the
day counter, then the month counter (reserving locks no existing reservation row: it locks the
counters, then inserts the new reservation).

Periods are the tenant's days and months in UTC: a run is counted in the day and month (UTC) in
which it was reserved, and everything it spends later goes to those same periods.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from tenants.budget import alerts
from tenants.budget.errors import BudgetRefused, BudgetUnavailable, Unpriced
from tenants.budget.models import (
    BudgetCharge,
    BudgetCounter,
    BudgetReservation,
    PeriodKind,
    ReservationStatus,
)
from tenants.budget.prices import price_names

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
# Expired reservations released per sweep: each is one short transaction (a few ms), so a sweep of
# a full batch stays well under the beat interval of 60 s; more are left for the next sweep.
SWEEP_BATCH = 500


@dataclass(frozen=True)
class Reservation:
    """What ``budget_reserve`` holds for a run."""

    key: str
    reserved_usd: Decimal
    reserved_tokens: int
    expires_at: datetime


@dataclass(frozen=True)
class Limits:
    """The tenant's limits, read from QuotaPolicy just before the reserving statement."""

    daily_usd: Decimal
    monthly_usd: Decimal
    monthly_tokens: int
    daily_runs: int
    per_run_usd: Decimal
    thresholds: tuple[int, ...]


# The limits in one plain statement (the settling paths read them for the alerts).
_LIMITS_SQL = """
SELECT daily_usd_limit, monthly_usd_limit, monthly_token_budget, daily_run_limit, per_run_usd_limit,
       alert_thresholds
  FROM policy_quotapolicy WHERE id = %s
"""


def limits_read() -> Limits:
    """Limits change rarely (a person edits them in the admin), so reading them just before the
    reserving statement is safe: a reservation made under the old limits is one that was allowed
    when it was asked for. The counters, which change all the time, are checked in the statement."""
    from tenants.policy.models import QuotaPolicy

    for _attempt in range(2):
        with connection.cursor() as cursor:
            cursor.execute(_LIMITS_SQL, [QuotaPolicy.singleton_instance_id])
            row = cursor.fetchone()
        if row is not None:
            return Limits(*row[:5], thresholds=tuple(row[5] or ()))
        QuotaPolicy.get_solo()  # no row yet: created with its defaults, then read again
    raise DatabaseError("the quota policy could not be read")  # pragma: no cover


def periods_of(moment: datetime) -> tuple[date, date]:
    """(day, first day of the month) of ``moment`` in UTC."""
    day = moment.astimezone(UTC).date()
    return day, day.replace(day=1)


def _tables() -> dict[str, str]:
    return {
        "counter": BudgetCounter._meta.db_table,
        "reservation": BudgetReservation._meta.db_table,
        "charge": BudgetCharge._meta.db_table,
    }


_COUNTER_COLUMNS = "usd_spent, usd_reserved, tokens_spent, tokens_reserved, runs"

# The whole reservation is one call of the schema's ``budget_reserve_admit`` (tenants/budget/sql.py,
# installed by migration budget.0003): it locks the day then the month counter, checks every limit
# under the locks and writes only when all pass. One round trip, and the counters stay locked only
# while it runs (plus the rest of the caller's transaction, when there is one).
_RESERVE_CALL = """
SELECT outcome, limit_name, spent, reserved, asked, allowed, usd, day_used, month_used, month_tokens,
       daily_usd, monthly_usd, monthly_tokens, daily_runs, per_run_usd, thresholds
  FROM budget_reserve_admit(%(key)s, %(skill)s, %(model)s, %(names)s, %(input_tokens)s,
                            %(output_tokens)s, %(day)s, %(month)s, %(now)s, %(expires)s, %(policy_id)s)
"""


def budget_reserve(
    *,
    key: str,
    skill: str,
    model: str,
    max_input_tokens: int,
    max_output_tokens: int,
    timeout_seconds: int,
) -> Reservation:
    """Hold the worst case of a run (every token it may use, priced now) against the per-run, daily
    and monthly budgets, or raise: BudgetRefused (which limit, with the figures read under the
    lock), Unpriced (no price for the model: nothing runs), BudgetUnavailable (the ledger could
    not be read: nothing runs). One call of the schema's ``budget_reserve_admit``.

    A repeated key returns the reservation already held (nothing is counted twice).
    """
    from tenants.policy.models import QuotaPolicy

    if min(max_input_tokens, max_output_tokens) < 0:
        raise ValueError("token counts cannot be negative")
    now = timezone.now()
    day, month = periods_of(now)
    expires = now + timedelta(seconds=timeout_seconds)
    tokens = int(max_input_tokens) + int(max_output_tokens)
    params = {
        "key": key,
        "skill": skill[:64],
        "model": model[:100],
        "names": price_names(model),
        "input_tokens": int(max_input_tokens),
        "output_tokens": int(max_output_tokens),
        "day": day,
        "month": month,
        "now": now,
        "expires": expires,
        "policy_id": QuotaPolicy.singleton_instance_id,
    }
    try:
        for _attempt in range(2):
            with connection.cursor() as cursor:
                cursor.execute(_RESERVE_CALL, params)
                row = cursor.fetchone()
            if row[0] != "no_policy":
                break
            QuotaPolicy.get_solo()  # no row yet: created with its defaults, then asked again
        else:  # pragma: no cover - get_solo creates the row
            raise DatabaseError("the quota policy could not be read")
        outcome, limit, spent, reserved, asked, allowed, usd, day_used, month_used, month_tokens = row[:10]
        if outcome == "unpriced":
            raise Unpriced(model, now)
        if outcome == "duplicate":
            existing = BudgetReservation.objects.get(key=key)
            return Reservation(
                key=key,
                reserved_usd=existing.reserved_usd,
                reserved_tokens=existing.reserved_tokens,
                expires_at=existing.expires_at,
            )
        if outcome != "admitted":
            raise BudgetRefused(
                limit=limit,
                spent=_figure(limit, spent),
                reserved=_figure(limit, reserved),
                asked=_figure(limit, asked),
                allowed=_figure(limit, allowed),
            )
        limits = Limits(*row[10:15], thresholds=tuple(row[15] or ()))
        if limits.thresholds:
            alerts.alerts_check(
                limits,
                day=day,
                month=month,
                used={"daily_usd": day_used, "monthly_usd": month_used, "monthly_tokens": month_tokens},
            )
        return Reservation(key=key, reserved_usd=usd, reserved_tokens=tokens, expires_at=expires)
    except DatabaseError as exc:
        logger.warning("budget: reserving %s failed: %s", key, exc)
        raise BudgetUnavailable() from exc


def _figure(limit: str, value: Decimal):
    """Counts (runs, tokens) as integers, dollars as they are."""
    return int(value) if limit in ("daily_runs", "monthly_tokens") else value


# Add to the day then the month counter of a period in one statement (the lock order); the
# reserved columns never go below zero, whatever the sweep reconciled in between.
_COUNTERS_ADD_SQL = """
WITH day AS (
    INSERT INTO {counter} AS c (kind, period_start, usd_spent, usd_reserved, tokens_spent,
                                tokens_reserved, runs)
    VALUES ('day', %(day)s::date, %(usd)s::numeric, 0, %(tokens)s::bigint, 0, 0)
    ON CONFLICT (kind, period_start) DO UPDATE
       SET usd_spent = c.usd_spent + %(usd)s::numeric,
           usd_reserved = GREATEST(c.usd_reserved - %(usd_freed)s::numeric, 0),
           tokens_spent = c.tokens_spent + %(tokens)s::bigint,
           tokens_reserved = GREATEST(c.tokens_reserved - %(tokens_freed)s::bigint, 0)
    RETURNING c.usd_spent + c.usd_reserved
), month AS (
    INSERT INTO {counter} AS c (kind, period_start, usd_spent, usd_reserved, tokens_spent,
                                tokens_reserved, runs)
    SELECT 'month', %(month)s::date, %(usd)s::numeric, 0, %(tokens)s::bigint, 0, 0 FROM day
    ON CONFLICT (kind, period_start) DO UPDATE
       SET usd_spent = c.usd_spent + %(usd)s::numeric,
           usd_reserved = GREATEST(c.usd_reserved - %(usd_freed)s::numeric, 0),
           tokens_spent = c.tokens_spent + %(tokens)s::bigint,
           tokens_reserved = GREATEST(c.tokens_reserved - %(tokens_freed)s::bigint, 0)
    RETURNING c.usd_spent + c.usd_reserved, c.tokens_spent + c.tokens_reserved
)
SELECT day.*, month.* FROM day, month
"""


def _counters_add(
    *, day: date, month: date, usd: Decimal, tokens: int, usd_freed: Decimal, tokens_freed: int
) -> dict[str, Decimal]:
    """Spend added and reservations freed in a period; returns what is now used of each limit."""
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNTERS_ADD_SQL.format(**_tables()),
            {
                "day": day,
                "month": month,
                "usd": usd,
                "tokens": tokens,
                "usd_freed": usd_freed,
                "tokens_freed": tokens_freed,
            },
        )
        day_used, month_used, month_tokens = cursor.fetchone()
    return {"daily_usd": day_used, "monthly_usd": month_used, "monthly_tokens": Decimal(month_tokens)}


def _outstanding(reservation: BudgetReservation) -> tuple[Decimal, int]:
    if reservation.status != ReservationStatus.OPEN:
        return ZERO, 0
    return (
        max(reservation.reserved_usd - reservation.spent_usd, ZERO),
        max(reservation.reserved_tokens - reservation.spent_tokens, 0),
    )


def _apply(reservation: BudgetReservation, *, usd: Decimal, tokens: int, end_as: str = "") -> None:
    """Under the reservation's row lock: add spend, optionally end it, move the counters by the
    difference in what it holds."""
    usd_before, tokens_before = _outstanding(reservation)
    reservation.spent_usd += usd
    reservation.spent_tokens += tokens
    fields = ["spent_usd", "spent_tokens"]
    if end_as:
        reservation.status = end_as
        reservation.ended_at = timezone.now()
        fields += ["status", "ended_at"]
    usd_after, tokens_after = _outstanding(reservation)
    reservation.save(update_fields=fields)
    day, month = periods_of(reservation.created_at)
    used = _counters_add(
        day=day,
        month=month,
        usd=usd,
        tokens=tokens,
        usd_freed=usd_before - usd_after,
        tokens_freed=tokens_before - tokens_after,
    )
    if usd or tokens:
        alerts.alerts_check(limits_read(), day=day, month=month, used=used)


def budget_settle(*, key: str, usd: Decimal, tokens: int, final: bool = False) -> None:
    """Add the real cost of one model call to the run's reservation and the counters; ``final``
    ends the reservation (what was spent stays, the rest is released).

    Spend beyond the reservation is recorded too (the call was made). On a reservation already
    ended, ``final`` does nothing; spend reported after the end (a call that returned after the
    sweep expired its run) is still recorded.
    """
    usd = Decimal(usd)
    if usd < 0 or tokens < 0:
        raise ValueError("spend cannot be negative")
    with transaction.atomic():
        reservation = BudgetReservation.objects.select_for_update().filter(key=key).first()
        if reservation is None:
            if usd or tokens:
                logger.error("budget: %s spent $%s with no reservation: charged as is", key, usd)
                _charge(
                    key=f"unreserved:{key}:{timezone.now().isoformat()}",
                    usd=usd,
                    tokens=tokens,
                    source="unreserved",
                )
            return
        ended = reservation.status != ReservationStatus.OPEN
        if ended and not (usd or tokens):
            return
        _apply(
            reservation,
            usd=usd,
            tokens=tokens,
            end_as=ReservationStatus.SETTLED if final and not ended else "",
        )


def budget_release(*, key: str) -> bool:
    """End a reservation without further spend (the run will not use it); False when it was
    not open."""
    with transaction.atomic():
        reservation = BudgetReservation.objects.select_for_update().filter(key=key).first()
        if reservation is None or reservation.status != ReservationStatus.OPEN:
            return False
        _apply(reservation, usd=ZERO, tokens=0, end_as=ReservationStatus.RELEASED)
        return True


def budget_charge(*, usd: Decimal, tokens: int = 0, skill: str = "", source: str = "", key: str) -> bool:
    """Charge a priced action when it executes (call inside the transaction that records it, so a
    rolled-back action costs nothing). The cost is already incurred, so it is recorded even past
    the budget, and the alerts say so. Once per key: False when the key was charged before."""
    usd = Decimal(usd)
    if usd < 0 or tokens < 0:
        raise ValueError("a charge cannot be negative")
    with transaction.atomic():
        return _charge(key=key, usd=usd, tokens=tokens, skill=skill, source=source)


def _charge(*, key: str, usd: Decimal, tokens: int, skill: str = "", source: str = "") -> bool:
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_tables()["charge"]} (key, usd, tokens, skill, source, at)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (key) DO NOTHING
            RETURNING id
            """,  # noqa: S608 - the table name is the model's own
            [key[:200], usd, tokens, skill[:64], source[:64], now],
        )
        if cursor.fetchone() is None:
            return False
    day, month = periods_of(now)
    used = _counters_add(day=day, month=month, usd=usd, tokens=tokens, usd_freed=ZERO, tokens_freed=0)
    alerts.alerts_check(limits_read(), day=day, month=month, used=used)
    return True


def budget_reservations_sweep(*, now: datetime | None = None) -> int:
    """Reservations still open past their expiry (the run died) are ended as expired, what they
    held released; then the counters of today, this month and every period touched are
    reconciled from the reservations and charges. Returns how many were expired."""
    now = now or timezone.now()
    keys = list(
        BudgetReservation.objects.filter(status=ReservationStatus.OPEN, expires_at__lt=now)
        .order_by("expires_at")
        .values_list("key", flat=True)[:SWEEP_BATCH]
    )
    expired = 0
    periods = {periods_of(now)}
    for key in keys:
        with transaction.atomic():
            reservation = (
                BudgetReservation.objects.select_for_update(skip_locked=True)
                .filter(key=key, status=ReservationStatus.OPEN, expires_at__lt=now)
                .first()
            )
            if reservation is None:
                continue  # settled meanwhile, or being settled right now
            _apply(reservation, usd=ZERO, tokens=0, end_as=ReservationStatus.EXPIRED)
            periods.add(periods_of(reservation.created_at))
            expired += 1
    for day in sorted({d for d, _ in periods}):
        counters_reconcile(kind=PeriodKind.DAY, period_start=day)
    for month in sorted({m for _, m in periods}):
        counters_reconcile(kind=PeriodKind.MONTH, period_start=month)
    if expired:
        logger.info(
            "budget sweep in %s: %d reservation(s) of dead runs released", connection.schema_name, expired
        )
    return expired


def _period_bounds(kind: str, start: date) -> tuple[datetime, datetime]:
    begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    if kind == PeriodKind.DAY:
        return begin, begin + timedelta(days=1)
    nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return begin, datetime(nxt.year, nxt.month, 1, tzinfo=UTC)


_RECONCILE_SQL = """
UPDATE {counter} AS c SET
    usd_spent = r.usd_spent + ch.usd,
    usd_reserved = r.usd_reserved,
    tokens_spent = r.tokens_spent + ch.tokens,
    tokens_reserved = r.tokens_reserved,
    runs = r.runs
FROM (
    SELECT COALESCE(SUM(spent_usd), 0) AS usd_spent,
           COALESCE(SUM(GREATEST(reserved_usd - spent_usd, 0)) FILTER (WHERE status = 'open'), 0)
               AS usd_reserved,
           COALESCE(SUM(spent_tokens), 0) AS tokens_spent,
           COALESCE(SUM(GREATEST(reserved_tokens - spent_tokens, 0)) FILTER (WHERE status = 'open'), 0)
               AS tokens_reserved,
           COUNT(*) AS runs
      FROM {reservation}
     WHERE created_at >= %(begin)s AND created_at < %(end)s
) AS r, (
    SELECT COALESCE(SUM(usd), 0) AS usd, COALESCE(SUM(tokens), 0) AS tokens
      FROM {charge}
     WHERE at >= %(begin)s AND at < %(end)s
) AS ch
WHERE c.kind = %(kind)s AND c.period_start = %(start)s
RETURNING c.usd_spent, c.usd_reserved, c.tokens_spent, c.tokens_reserved, c.runs
"""


def counters_reconcile(*, kind: str, period_start: date) -> bool:
    """Set a period's counter to what its reservations and charges add up to; True when it had
    drifted. The counter row is locked first, and the sums read by the next statement: every
    change to the period takes that lock, so the sums see all of them (READ COMMITTED)."""
    begin, end = _period_bounds(kind, period_start)
    with transaction.atomic():
        before = (
            BudgetCounter.objects.select_for_update()
            .filter(kind=kind, period_start=period_start)
            .values_list(*_COUNTER_COLUMNS.split(", "))
            .first()
        )
        if before is None:
            return False  # nothing was ever reserved or charged in it
        with connection.cursor() as cursor:
            cursor.execute(
                _RECONCILE_SQL.format(**_tables()),
                {"begin": begin, "end": end, "kind": kind, "start": period_start},
            )
            after = cursor.fetchone()
    drifted = tuple(before) != tuple(after)
    if drifted:
        logger.warning(
            "budget: %s counter %s of %s reconciled from %s to %s",
            kind,
            period_start,
            connection.schema_name,
            before,
            after,
        )
    return drifted


__all__ = [
    "BudgetRefused",
    "BudgetUnavailable",
    "Reservation",
    "Unpriced",
    "budget_charge",
    "budget_release",
    "budget_reservations_sweep",
    "budget_reserve",
    "budget_settle",
    "counters_reconcile",
]
