"""How a time is shown: in the tenant's zone (activated per request by the tenant middleware),
with the UTC instant on hover and in the element's ``datetime`` attribute."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString


def time_html(value: datetime | None, fmt: str = "Y-m-d H:i") -> SafeString | str:
    """``<time>`` with the local time and zone shown, UTC in its title; "—" for no time."""
    if value is None:
        return "—"
    if timezone.is_naive(value):  # never stored so; shown as what it would be in UTC
        value = timezone.make_aware(value, UTC)
    local = timezone.localtime(value)
    utc = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{} {}</time>',
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        date_format(local, fmt),
        local.tzname() or timezone.get_current_timezone_name(),
    )


def zone_name() -> str:
    """The zone pages are shown in now, e.g. 'Europe/Berlin' (a form's label says it)."""
    return timezone.get_current_timezone_name()
