"""Template helpers of the console's own pages."""

from __future__ import annotations

from django import template

from mh1.times import time_html, zone_name

register = template.Library()


@register.filter
def local_time(value, fmt: str = "Y-m-d H:i"):
    """``{{ event.created_at|local_time }}``: the tenant's local time, UTC on hover."""
    return time_html(value, fmt)


@register.simple_tag
def time_zone_name() -> str:
    return zone_name()
