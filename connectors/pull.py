"""Leads in from the CRM: contacts read page by page and converted through the tenant's field map.

Each page commits on its own with the cursor of the next, so a run that stops (a vendor outage, a
worker restart) resumes where it left off. A record that cannot be converted is skipped and named
in the run's result; it never stops the pull. A contact the CRM marks do-not-contact (HubSpot's
``hs_email_optout``, GoHighLevel's ``dnd`` or a ``DNC`` tag: the one mapping in connectors.dnc, which
the webhooks use too) is suppressed here in the same run, even when it cannot become a lead.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from connectors import clients
from connectors.dnc import do_not_contact
from connectors.models import CrmPull, SuppressionReason, System
from mh1.addresses import email_normalize

logger = logging.getLogger(__name__)

CRM_SYSTEMS = (System.HUBSPOT, System.GOHIGHLEVEL)
PAGE_SIZE = 100
MAX_PAGES_PER_RUN = 20
ERRORS_KEPT = 5


class PullBusyError(RuntimeError):
    """Another pull of the same tenant and CRM is running."""


def _records(system: str, reader, cursor: Any, properties: list[str]) -> tuple[list[dict], Any]:
    """One page as (flat records with ``_id``, next cursor or None)."""
    if system == System.HUBSPOT:
        page = reader.list_contacts(PAGE_SIZE, after=cursor, properties=properties)
        records = [
            {**(contact.get("properties") or {}), "_id": str(contact.get("id", ""))}
            for contact in page.get("results") or []
        ]
        return records, ((page.get("paging") or {}).get("next") or {}).get("after")
    page = reader.search_contacts(PAGE_SIZE, search_after=cursor)
    contacts = page.get("contacts") or []
    records = [{**contact, "_id": str(contact.get("id", ""))} for contact in contacts]
    return records, (contacts[-1].get("searchAfter") if len(contacts) == PAGE_SIZE else None)


def _hubspot_properties() -> list[str]:
    from campaigns.models import Direction, FieldMap

    mapped = FieldMap.objects.filter(system=System.HUBSPOT, direction__in=[Direction.BOTH, Direction.IN])
    return sorted({"email", "hs_email_optout", *mapped.values_list("remote_field", flat=True)})


def _new_totals() -> dict[str, Any]:
    return {"pages": 0, "created": 0, "updated": 0, "skipped": 0, "suppressed": 0, "errors": []}


def crm_record_read(system: str, record: dict[str, Any], totals: dict[str, Any] | None = None) -> str:
    """Upsert one CRM record's lead through the field map (and suppress it when the CRM says
    do-not-contact); returns what was done. Used by the pull and by CRM contact webhooks.

    A record that cannot be converted is counted as skipped (with its reason) and changes nothing.
    """
    from campaigns.mapping import MappingError, from_remote
    from campaigns.models import Lead
    from campaigns.services import lead_upsert

    totals = totals if totals is not None else _new_totals()
    record_id = str(record.get("_id") or record.get("id") or "")
    email = ""
    try:
        data = from_remote(system, record)
        raw = data.get("email")
        email = email_normalize(raw) if raw else ""
        if not email:
            raise ValueError("no email")
        data["email"] = email
        existing = Lead.objects.filter(email=email).values("source_system", "source_id").first()
        if existing is None or existing["source_system"] == system:
            data["source_id"] = record_id
            source_system = system
        else:  # the lead came from elsewhere first: keep where it came from
            source_system = existing["source_system"]
        if existing is None:
            data.update(data_source=system, collected_at=timezone.now())
        _, created = lead_upsert(data=data, source_system=source_system)
    except (MappingError, ValidationError, ValueError) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        totals["skipped"] += 1
        if len(totals["errors"]) < ERRORS_KEPT:
            totals["errors"].append(f"{system} contact {record_id}: {message}")
        # A record we cannot turn into a lead may still say do-not-contact: that must hold anyway.
        return f"skipped: {message}" + _suppress_if_dnc(system, record, email or _raw_email(record), totals)
    totals["created" if created else "updated"] += 1
    outcome = f"{'created' if created else 'updated'} lead {email}"
    return outcome + _suppress_if_dnc(system, record, email, totals)


def _raw_email(record: dict[str, Any]) -> str:
    """The record's email without the field map (the map itself may be what failed)."""
    properties = record.get("properties") if isinstance(record.get("properties"), dict) else {}
    raw = record.get("email") or properties.get("email")
    try:
        return email_normalize(raw) if raw else ""
    except ValueError:
        return ""


def _suppress_if_dnc(system: str, record: dict[str, Any], email: str, totals: dict[str, Any]) -> str:
    """Suppress ``email`` when the CRM says do-not-contact (connectors.dnc); what was done, or ""."""
    from connectors.selectors import suppression_for
    from connectors.services import suppression_add

    why = do_not_contact(system, record)
    if not why or not email or suppression_for(email) is not None:
        return ""
    _, cancelled = suppression_add(email=email, reason=SuppressionReason.DNC, source=system, note=why)
    totals["suppressed"] += 1
    return f"; suppressed {email} (do-not-contact: {why}), cancelled {cancelled} open send(s)"


def crm_pull(system: str, *, max_pages: int = MAX_PAGES_PER_RUN) -> dict[str, Any]:
    """Read up to ``max_pages`` pages of the CRM's contacts into leads; returns the run's result.

    Raises PullBusyError when another pull of this tenant and CRM holds the lock, and the client's
    ConnectorError when the CRM cannot be read (pages read before it are kept).
    """
    if system not in CRM_SYSTEMS:
        raise ValueError(f"Leads are pulled from {', '.join(CRM_SYSTEMS)}, not {system}.")
    key = f"mh1:crm-pull:{connection.schema_name}:{system}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key])
        if not cursor.fetchone()[0]:
            raise PullBusyError(f"A lead pull from {system} is already running for this tenant.")
    try:
        return _pull(system, max_pages)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])


def _pull(system: str, max_pages: int) -> dict[str, Any]:
    state, _ = CrmPull.objects.get_or_create(system=system)
    totals = _new_totals()
    properties = _hubspot_properties() if system == System.HUBSPOT else []
    cursor, complete = state.cursor, False
    started = timezone.now()
    failure = ""
    try:
        with clients.read_client(system) as reader:
            while totals["pages"] < max_pages:
                records, next_cursor = _records(system, reader, cursor, properties)
                before = totals["created"] + totals["updated"]
                with transaction.atomic():
                    for record in records:
                        crm_record_read(system, record, totals)
                    read = totals["created"] + totals["updated"] - before
                    CrmPull.objects.filter(pk=state.pk).update(
                        cursor=next_cursor, leads_pulled=F("leads_pulled") + read
                    )
                totals["pages"] += 1
                cursor = next_cursor
                if next_cursor is None:
                    complete = True
                    break
    except Exception as exc:
        failure = f"{exc.__class__.__name__}: {exc}"
        raise
    finally:
        result = {**totals, "complete_sweep": complete, "started_at": started.isoformat()}
        if failure:
            result["error"] = failure[:500]
        updates: dict[str, Any] = {"last_run_at": timezone.now(), "last_result": result}
        if complete:
            updates["last_sweep_completed_at"] = timezone.now()
        CrmPull.objects.filter(pk=state.pk).update(**updates)
    logger.info("lead pull from %s: %s", system, {k: v for k, v in result.items() if k != "errors"})
    return result


def crm_pull_all() -> dict[str, Any]:
    """Pull from every CRM this tenant has credentials for; a failing CRM does not stop the other."""
    from connectors.errors import ConnectorError
    from connectors.models import Credential

    results: dict[str, Any] = {}
    for system in Credential.objects.filter(system__in=CRM_SYSTEMS).values_list("system", flat=True):
        try:
            results[system] = crm_pull(system)
        except (ConnectorError, PullBusyError) as exc:
            # recorded on the pull's row by the run itself; the next scheduled run tries again
            logger.warning("lead pull from %s failed: %s", system, exc)
            results[system] = {"error": str(exc)}
    return results
