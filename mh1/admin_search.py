"""Admin lists that stay fast at volume: exact searches on canonical values, a capped count,
filters with fixed choices.

Django's ``search_fields = ["=email"]`` compiles to ``UPPER(email) = UPPER(%s)`` and a plain
``"email"`` to ``UPPER(email) LIKE UPPER('%…%')``: no btree index serves either, so every search is
a sequential scan of the table (pitfall 16). Here a search term is made canonical by the same
normaliser that made the stored value canonical (``mh1.addresses``), then compared with ``=``,
which the column's index serves. A term a field cannot hold (not an address, not a number) is not
looked up in that field at all; a term no field can hold reads nothing.

A ``list_filter`` on a free-text column builds its choices with ``SELECT DISTINCT`` over the whole
table on every page: ``fixed_choices_filter`` offers a list written in code instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet

from mh1.addresses import email_normalize
from mh1.paginators import CappedCountPaginator

MAX_TEXT_TERM = 255  # longer than any exact-searched column: such a term cannot match
_BIGINT_MAX = 2**63 - 1


def text_exact(term: str) -> str:
    """An identifier as typed (keys, ids from a vendor): surrounding spaces dropped."""
    value = term.strip()
    if not value or len(value) > MAX_TEXT_TERM or "\x00" in value:
        raise ValueError("not an identifier")
    return value


def int_exact(term: str) -> int:
    """A primary key: ``#42`` or ``42``, within a bigint."""
    value = int(term.strip().removeprefix("#"))
    if not 0 < value <= _BIGINT_MAX:
        raise ValueError("out of range")
    return value


def uuid_exact(term: str) -> uuid.UUID:
    return uuid.UUID(term.strip())


def email_or_text_exact(term: str) -> str:
    """A target that is an address when it parses as one (stored canonical), else an identifier."""
    try:
        return email_normalize(term)
    except ValueError:
        return text_exact(term)


def domain_of_email(term: str) -> str:
    """The domain of an address: a domain entry covers every address in it."""
    return email_normalize(term).rsplit("@", 1)[1]


@dataclass(frozen=True)
class Exact:
    """One exact search: ``lookup = normalise(term)``, and'ed with ``also`` (fixed values that let
    a composite index lead with its first column, e.g. ``system IN (…)`` before ``event_id``)."""

    lookup: str
    normalise: Callable[[str], Any] = text_exact
    also: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    def q(self, term: str) -> Q | None:
        try:
            value = self.normalise(term)
        except (ValueError, TypeError, OverflowError):
            return None
        return Q(**{self.lookup: value}, **self.also)


class ExactSearchMixin:
    """``exact_search_fields`` instead of ``search_fields``: every search is an indexed ``=``."""

    exact_search_fields: tuple[Exact, ...] = ()

    def get_search_fields(self, request) -> tuple[str, ...]:
        # only shows the search box; get_search_results below never reads these
        return tuple(f.label or f.lookup.split("__")[0] for f in self.exact_search_fields)

    @property
    def search_help_text(self) -> str | None:
        names = dict.fromkeys(f.label or f.lookup.split("__")[0] for f in self.exact_search_fields)
        return f"Exact match on {', '.join(names)}." if names else None

    def get_search_results(self, request, queryset: QuerySet, search_term: str):
        term = (search_term or "").strip()
        if not term or not self.exact_search_fields:
            return queryset, False
        matches = [q for q in (f.q(term) for f in self.exact_search_fields) if q is not None]
        if not matches:
            return queryset.none(), False
        condition = matches[0]
        for q in matches[1:]:
            condition |= q
        return queryset.filter(condition), False


class VolumeAdminMixin(ExactSearchMixin):
    """A list over a table that grows without bound: capped count, no full count, no facets."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


def fixed_choices_filter(
    field_name: str, choices: Iterable[tuple[str, str]] | Iterable[str], *, title: str | None = None
) -> type[admin.SimpleListFilter]:
    """A list filter on ``field_name`` whose choices are written in code, not read from the table.

    A value outside the choices filters nothing (it is ignored, never sent to the database).
    """
    pairs = [(c, c) if isinstance(c, str) else (c[0], str(c[1])) for c in choices]
    allowed = {value for value, _ in pairs}

    class FixedChoicesFilter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request, model_admin):
            return pairs

        def queryset(self, request, queryset):
            value = self.value()
            if value in allowed:
                return queryset.filter(**{field_name: value})
            return queryset

    FixedChoicesFilter.title = title or field_name.replace("_", " ")
    FixedChoicesFilter.__name__ = f"{field_name.title().replace('_', '')}FixedChoicesFilter"
    return FixedChoicesFilter


def lookup_choices_filter(
    field_name: str, choices: Callable[[], Iterable[tuple[str, str]]], *, title: str | None = None
) -> type[admin.SimpleListFilter]:
    """Like ``fixed_choices_filter``, the choices read from a small table (e.g. the tenant's
    lifecycle stages) instead of ``SELECT DISTINCT`` over the big one."""

    class LookupChoicesFilter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request, model_admin):
            return [(str(value), str(label)) for value, label in choices()]

        def queryset(self, request, queryset):
            value = self.value()
            if value and value in {v for v, _ in self.lookup_choices}:
                return queryset.filter(**{field_name: value})
            return queryset

    LookupChoicesFilter.title = title or field_name.replace("_", " ")
    LookupChoicesFilter.__name__ = f"{field_name.title().replace('_', '')}LookupChoicesFilter"
    return LookupChoicesFilter
