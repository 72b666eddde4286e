"""The sending policy: every send reserves its place before it runs, and is counted exactly once.

Two kinds of limit:

- **Windows** (monthly, daily, hourly, per recipient domain per hour): each window's counter
  changes by one conditional UPDATE (``count < limit``), so every worker sees the same count and
  none can overshoot. A send over a limit is deferred to the end of that window.
- **Pacing** (the minimum delay between two sends): one row whose ``last_sent_at`` is the last
  slot handed out. ``UPDATE … SET last_sent_at = greatest(last_sent_at + delay, now) RETURNING``
  gives each send its own slot in one statement, so N concurrent sends get N slots spaced by the
  delay: the first goes now, the k-th is deferred once, to now + k·delay. (Deferring every loser
  to the same moment instead made N sends cost N(N+1)/2 executions.)

The execution service calls ``send_slot_reserve`` under the request's row lock *before*
``approved → executing``: it takes a pacing slot, counts the windows of that slot and records a
reservation (a ``reserved`` row of the recipient at the slot). A send whose window is full gets
that window's end and keeps nothing, not even its pacing slot (the savepoint gives it back to the
next send). When the request runs again at its slot it passes the slot back (``held``) and goes.
The executor's ``reserve_send``, in the transaction that records the call, then takes the
recipient's due reservation instead of counting again (and moves the count if the send went out
in a later window than its slot); without a reservation it counts the send itself, as before.

Recipients are canonical addresses (``mh1.addresses.email_normalize``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from approvals.errors import DeferExecution
from mh1.addresses import domain_of
from tenants.policy.models import SendingPolicy

PACING = "pacing"
RESERVED = "reserved"
_EPOCH = "1970-01-01T00:00:00Z"  # the pacing row has no window
_LABELS = {"month": "monthly", "day": "daily", "hour": "hourly"}


class SendDeferral(NamedTuple):
    """Not now: the moment the send may go, and why (for the request's history)."""

    not_before: datetime
    reason: str


class _WindowFull(Exception):
    def __init__(self, deferral: SendDeferral):
        super().__init__(deferral.reason)
        self.deferral = deferral


def _windows(now: datetime, domain: str, policy: SendingPolicy):
    """(scope, window start, window end, domain, limit) for every limit of the policy."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return [
        ("month", month, next_month, "", policy.monthly_limit),
        ("day", day, day + timedelta(days=1), "", policy.daily_limit),
        ("hour", hour, hour + timedelta(hours=1), "", policy.hourly_limit),
        ("domain_hour", hour, hour + timedelta(hours=1), domain, policy.per_domain_hourly_limit),
    ]


def _reservation_key(recipient: str) -> str:
    # the counter's domain column holds 253 characters; a canonical address may have 254
    if len(recipient) <= 253:
        return recipient
    return "sha256:" + hashlib.sha256(recipient.encode()).hexdigest()


def _count(cursor, moment: datetime, window, label_domain: str) -> None:
    """Count one send at ``moment`` in one window, or raise _WindowFull (the caller's savepoint
    undoes the rest)."""
    scope, start, end, domain, limit = window
    cursor.execute(
        "INSERT INTO connectors_sendcounter (scope, window_start, domain, count) "
        "VALUES (%s, %s, %s, 0) ON CONFLICT DO NOTHING",
        [scope, start, domain],
    )
    cursor.execute(
        "UPDATE connectors_sendcounter SET count = count + 1, last_sent_at = %s "
        "WHERE scope = %s AND window_start = %s AND domain = %s AND count < %s RETURNING count",
        [moment, scope, start, domain, limit],
    )
    if cursor.fetchone() is None:
        label = _LABELS.get(scope) or f"per-domain hourly ({label_domain})"
        raise _WindowFull(SendDeferral(end, f"Sending policy: the {label} limit of {limit} is reached."))


def _uncount(cursor, scope: str, start: datetime, domain: str) -> None:
    cursor.execute(
        "UPDATE connectors_sendcounter SET count = count - 1 "
        "WHERE scope = %s AND window_start = %s AND domain = %s AND count > 0",
        [scope, start, domain],
    )


def _pacing_slot(cursor, now: datetime, delay: timedelta) -> datetime:
    """Hand out the next pacing slot: the later of now and the last slot plus the delay."""
    cursor.execute(
        "INSERT INTO connectors_sendcounter (scope, window_start, domain, count) "
        "VALUES (%s, %s, '', 0) ON CONFLICT DO NOTHING",
        [PACING, _EPOCH],
    )
    cursor.execute(
        "UPDATE connectors_sendcounter SET last_sent_at = greatest(last_sent_at + %s, %s), "
        "count = count + 1 WHERE scope = %s RETURNING last_sent_at",
        [delay, now, PACING],
    )
    return cursor.fetchone()[0]


def _reserve(cursor, recipient: str, now: datetime, policy: SendingPolicy) -> datetime:
    """Take a pacing slot and count the send in the windows of that slot; return the slot.

    Raises _WindowFull when a window of the slot is full; run inside a savepoint, so that the
    rollback gives the pacing slot back (the pacing row stays locked until then: nobody else was
    handed a later slot in between)."""
    slot = now
    if policy.min_delay_seconds:
        slot = _pacing_slot(cursor, now, timedelta(seconds=policy.min_delay_seconds))
    domain = domain_of(recipient)
    for window in _windows(slot, domain, policy):
        _count(cursor, slot, window, domain)
    return slot


def send_slot_reserve(
    recipient: str, now: datetime | None = None, *, held: datetime | None = None
) -> SendDeferral | None:
    """Reserve the send's place under the sending policy; None: it may go now.

    Call under the request's row lock, after the gates and before ``approved → executing``, in
    the transaction that records the outcome: with ``SendDeferral`` the request stays approved
    with ``not_before`` = its moment (the reservation commits with it); with None it becomes
    executing, and the executor's ``reserve_send`` takes the reservation. ``held`` is the slot an
    earlier call gave this request (its ``not_before``): if that reservation is still there, the
    send goes on it instead of queueing again.
    """
    now = now or timezone.now()
    key = _reservation_key(recipient)
    with connection.cursor() as cursor:
        if held is not None:
            cursor.execute(
                "SELECT 1 FROM connectors_sendcounter WHERE scope = %s AND domain = %s AND window_start = %s",
                [RESERVED, key, held],
            )
            if cursor.fetchone() is not None:
                return SendDeferral(held, "Sending policy: its reserved slot.") if held > now else None
        policy = SendingPolicy.get_solo()
        try:
            with transaction.atomic():
                slot = _reserve(cursor, recipient, now, policy)
                cursor.execute(
                    "INSERT INTO connectors_sendcounter (scope, window_start, domain, count) "
                    "VALUES (%s, %s, %s, 1) ON CONFLICT (scope, window_start, domain) "
                    "DO UPDATE SET count = connectors_sendcounter.count + 1",
                    [RESERVED, slot, key],
                )
        except _WindowFull as full:
            return full.deferral
    if slot > now:
        return SendDeferral(slot, f"Sending policy: at least {policy.min_delay_seconds} s between sends.")
    return None


def _take_due_reservation(cursor, key: str, now: datetime) -> datetime | None:
    """Remove one due reservation of the recipient (the earliest); return its slot."""
    cursor.execute(
        "WITH due AS ("
        "  SELECT id, count, window_start FROM connectors_sendcounter"
        "  WHERE scope = %s AND domain = %s AND window_start <= %s"
        "  ORDER BY window_start LIMIT 1 FOR UPDATE"
        "), gone AS ("
        "  DELETE FROM connectors_sendcounter c USING due WHERE c.id = due.id AND due.count <= 1"
        "), fewer AS ("
        "  UPDATE connectors_sendcounter c SET count = c.count - 1 FROM due"
        "  WHERE c.id = due.id AND due.count > 1"
        ") SELECT window_start FROM due",
        [RESERVED, key, now],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def reserve_send(recipient: str, now: datetime | None = None) -> None:
    """Count one send to ``recipient`` that goes now, or raise DeferExecution (nothing counted).

    Called by the executor inside the transaction that records the send. A send reserved by
    ``send_slot_reserve`` is already counted: its reservation is taken (and its count moved if
    it goes out in a later window than its slot). Otherwise the send is counted here and
    deferred if it cannot go now.
    """
    now = now or timezone.now()
    policy = SendingPolicy.get_solo()
    domain = domain_of(recipient)
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                slot = _take_due_reservation(cursor, _reservation_key(recipient), now)
                if slot is not None:
                    # counted in the windows of its slot; a late send counts where it went
                    for counted, current in zip(
                        _windows(slot, domain, policy), _windows(now, domain, policy), strict=True
                    ):
                        scope, counted_start, _, window_domain, _ = counted
                        if counted_start != current[1]:
                            _count(cursor, now, current, domain)
                            _uncount(cursor, scope, counted_start, window_domain)
                    return
                slot = _reserve(cursor, recipient, now, policy)
                if slot > now:
                    raise DeferExecution(
                        f"Sending policy: at least {policy.min_delay_seconds} s between sends.", slot
                    )
        except _WindowFull as full:
            raise DeferExecution(full.deferral.reason, full.deferral.not_before) from None


def send_slot_release(recipient: str, slot: datetime) -> bool:
    """Give back the reservation ``send_slot_reserve`` made for a send that will not go (it was
    cancelled or expired while deferred): its window counts return; its pacing slot does not
    (later slots were already handed out). False if there was nothing to give back."""
    policy = SendingPolicy.get_solo()
    domain = domain_of(recipient)
    with connection.cursor() as cursor, transaction.atomic():
        cursor.execute(
            "WITH held AS ("
            "  SELECT id, count FROM connectors_sendcounter"
            "  WHERE scope = %s AND domain = %s AND window_start = %s FOR UPDATE"
            "), gone AS ("
            "  DELETE FROM connectors_sendcounter c USING held WHERE c.id = held.id AND held.count <= 1"
            "), fewer AS ("
            "  UPDATE connectors_sendcounter c SET count = c.count - 1 FROM held"
            "  WHERE c.id = held.id AND held.count > 1"
            ") SELECT id FROM held",
            [RESERVED, _reservation_key(recipient), slot],
        )
        if cursor.fetchone() is None:
            return False
        for scope, start, _, window_domain, _ in _windows(slot, domain, policy):
            _uncount(cursor, scope, start, window_domain)
    return True


def send_slot_release_unused(recipient: str) -> bool:
    """Give back the earliest reservation of ``recipient`` that no send took (the request failed
    before its executor counted it, e.g. a message that could not be built)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT window_start FROM connectors_sendcounter WHERE scope = %s AND domain = %s "
            "ORDER BY window_start LIMIT 1",
            [RESERVED, _reservation_key(recipient)],
        )
        row = cursor.fetchone()
    return send_slot_release(recipient, row[0]) if row else False
