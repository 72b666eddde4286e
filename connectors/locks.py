"""Advisory locks that serialize a send with a suppression of the same recipient domain.

The executor holds the lock from its suppression check through the send; suppression_add takes it
before recording the entry. So an unsubscribe either lands first (the send is cancelled) or waits
until the message has left (it was sent before the unsubscribe was recorded) — never in between.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection

from mh1.addresses import domain_normalize, domain_of, email_normalize


def _key(recipient_or_domain: str) -> str:
    # canonical domain (mh1.addresses), so "Bob <bob@ACME.example>" and "bob@acme.example" share one lock
    if "@" in recipient_or_domain:
        domain = domain_of(email_normalize(recipient_or_domain))
    else:
        domain = domain_normalize(recipient_or_domain)
    return f"mh1:recipient:{connection.schema_name}:{domain}"


@contextlib.contextmanager
def recipient_lock(recipient_or_domain: str) -> Iterator[None]:
    """Session-level lock, held across transactions (check, send, record); freed on exit or when
    the connection dies with its worker."""
    key = _key(recipient_or_domain)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])


def recipient_lock_in_transaction(recipient_or_domain: str) -> None:
    """Transaction-level lock: released at commit or rollback."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_key(recipient_or_domain)])
