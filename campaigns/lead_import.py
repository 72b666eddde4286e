"""CSV import of leads: reading the upload, mapping its columns to lead fields, and checking every
row as every other write path checks a lead, without writing anything.

The flow (``campaigns.admin.LeadAdmin``): the upload is read (``csv_table_read``) and kept in the
tenant's upload storage; its columns get a default mapping by header name (``mapping_default``),
which the person may change; the preview (``leads_import_check``) lists the good rows and the bad
ones by their line in the file, with what is wrong; confirming runs
``campaigns.services.leads_import``, which checks the rows again, writes the good ones in one
transaction and skips the bad ones.

A cell is converted by the lead's own form field (what the admin form does with a typed value)
and the row is validated by ``campaigns.services.lead_candidate`` (``Lead.full_clean``: the model's
field checks and ``Lead.clean``, with the email and domain normalisers of ``mh1.addresses``), the
same code the admin form, ``lead_upsert`` and the CRM pulls run. An empty cell leaves the lead's
value as it is (a new lead gets the field's default).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.errors import ImportFileInvalid, ImportMappingInvalid
from campaigns.models import Lead, LifecycleStage, SourceSystem
from campaigns.resources import IMPORT_FIELDS

# An upload above this is refused before it is read (2 000 rows of even wide sheets fit in it).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Rows one import takes. Measured on the shared 2-core machine (5 000 rows of ten columns):
# checking a row costs about 0.75 ms (its cells, Lead.full_clean with the stage lookup) and
# writing it about 2.7 ms more (the insert and its audit entry), so 2 000 rows preview in about
# 1.5 s and import in about 7 s: as much as one request should do. Bigger lists: several files.
MAX_ROWS = 2_000
MAX_COLUMNS = 100
# Rows of each kind the preview page lists (all of them are counted).
PREVIEW_GOOD_SHOWN = 50
PREVIEW_BAD_SHOWN = 200
# Leads looked up (and, on import, locked) per query.
LOOKUP_CHUNK = 1000

IGNORE = ""
# Computed by the ICP scoring when the leads are imported: never taken from a file.
SCORED_FIELDS = ("icp_score", "icp_tier")
IMPORT_TARGETS: tuple[str, ...] = tuple(name for name in IMPORT_FIELDS if name not in SCORED_FIELDS)

# Header names (compared by ``header_key``) that mean a lead field, besides the field's own name
# and label; the Clay column names (README, Connectors) among them.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("e-mail", "email address", "e-mail address", "work email", "business email", "mail"),
    "first_name": ("firstname", "first", "given name", "forename"),
    "last_name": ("lastname", "last", "surname", "family name"),
    "company": ("company name", "organisation", "organization", "account", "account name", "employer"),
    "company_domain": ("domain", "company website domain", "website domain"),
    "title": ("job title", "jobtitle", "position", "role"),
    "seniority": ("seniority level", "level"),
    "industry": ("company industry", "sector", "vertical"),
    "company_size": ("employees", "employee count", "number of employees", "headcount", "size"),
    "country": ("country code", "nation"),
    "lifecycle_stage": ("lifecyclestage", "lifecycle", "stage"),
    "source_system": ("system",),
    "source_id": ("external id", "record id"),
    "data_source": ("source", "lead source"),
    "collected_at": ("collected", "collected on", "date collected"),
    "legal_basis": ("lawful basis", "gdpr basis"),
}


def header_key(text: str) -> str:
    """A header as defaults compare it: case, surrounding spaces, ``_``, ``-`` and dots ignored."""
    return " ".join(part for part in re.split(r"[\s_.\-]+", str(text).strip().lower()) if part)


def _field_keys() -> dict[str, str]:
    keys: dict[str, str] = {}
    for name in IMPORT_TARGETS:
        model_field = Lead._meta.get_field(name)
        for alias in (name, str(model_field.verbose_name), *HEADER_ALIASES.get(name, ())):
            keys.setdefault(header_key(alias), name)
    return keys


_FIELD_BY_HEADER = _field_keys()


def target_choices() -> list[tuple[str, str]]:
    """(field, label) of every field a column may be mapped to, "ignore" first."""
    return [(IGNORE, "— ignore this column —")] + [
        (name, f"{Lead._meta.get_field(name).verbose_name} ({name})") for name in IMPORT_TARGETS
    ]


# --- the file ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvRow:
    line: int  # the file line the row starts on (the header is line 1)
    cells: tuple[str, ...]


@dataclass(frozen=True)
class CsvTable:
    header: tuple[str, ...]
    rows: tuple[CsvRow, ...]

    def samples(self, index: int, count: int = 3) -> list[str]:
        """The first ``count`` non-empty values of column ``index``, to recognise it by."""
        found = []
        for row in self.rows:
            if index < len(row.cells) and row.cells[index].strip():
                found.append(row.cells[index].strip()[:40])
                if len(found) == count:
                    break
        return found


def _text(data: bytes) -> str:
    if not data.strip():
        raise ImportFileInvalid("The file is empty.")
    if b"\x00" in data:
        raise ImportFileInvalid(
            "This is not a CSV text file (it holds binary data): export the sheet as CSV and upload that."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileInvalid(
            "The file is not UTF-8 text: save it as “CSV UTF-8” (Excel: File → Save as) and upload it again."
        ) from None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    first_line = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def upload_size_check(size: int) -> None:
    """ImportFileInvalid for an upload above ``MAX_UPLOAD_BYTES`` (checked before it is read)."""
    if size > MAX_UPLOAD_BYTES:
        raise ImportFileInvalid(
            f"The file is {size / 1024 / 1024:.1f} MB; an import takes at most "
            f"{MAX_UPLOAD_BYTES // 1024 // 1024} MB and {MAX_ROWS:,} rows: split it into several files."
        )


def csv_table_read(data: bytes) -> CsvTable:
    """The header and rows of an uploaded CSV (comma, semicolon or tab separated, UTF-8).

    Raises ImportFileInvalid, with a message that says what to do, for a file that is too big,
    binary, not UTF-8, malformed, without a header or rows, or with more than ``MAX_ROWS`` rows.
    Blank lines are skipped; a cell spanning lines keeps the line its row starts on.
    """
    upload_size_check(len(data))
    text = _text(data)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    header: tuple[str, ...] | None = None
    rows: list[CsvRow] = []
    next_line = 1
    try:
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = tuple(cell.strip() for cell in cells)
                if len(header) > MAX_COLUMNS:
                    raise ImportFileInvalid(
                        f"The header has {len(header)} columns; an import takes at most {MAX_COLUMNS}."
                    )
                continue
            if len(rows) == MAX_ROWS:
                raise ImportFileInvalid(
                    f"The file has more than {MAX_ROWS:,} rows: split it into several files."
                )
            rows.append(CsvRow(line=line, cells=tuple(cells)))
    except csv.Error as exc:
        raise ImportFileInvalid(f"Line {reader.line_num} cannot be read as CSV ({exc}).") from None
    if header is None:
        raise ImportFileInvalid("The file is empty.")
    if not rows:
        raise ImportFileInvalid("The file has a header but no rows.")
    return CsvTable(header=header, rows=tuple(rows))


# --- the mapping ---------------------------------------------------------------------------------


def mapping_default(header: tuple[str, ...] | list[str]) -> list[str]:
    """A field for each column whose header names one (case and spacing ignored), else "ignore";
    a field named by two columns goes to the first."""
    taken: set[str] = set()
    mapping = []
    for title in header:
        name = _FIELD_BY_HEADER.get(header_key(title), IGNORE)
        if name in taken:
            name = IGNORE
        taken.add(name)
        mapping.append(name)
    return mapping


def column_label(header: tuple[str, ...] | list[str], index: int) -> str:
    return f"“{header[index]}”" if header[index] else f"column {index + 1}"


def mapping_check(header: tuple[str, ...] | list[str], mapping: list[str]) -> list[str]:
    """``mapping`` if the import can use it; else ImportMappingInvalid saying what to change."""
    if len(mapping) != len(header):
        raise ImportMappingInvalid("The mapping does not match the file's columns: upload the file again.")
    unknown = [name for name in mapping if name != IGNORE and name not in IMPORT_TARGETS]
    if unknown:
        raise ImportMappingInvalid(f"Not a field the import can fill: {', '.join(unknown)}.")
    problems = []
    for name in dict.fromkeys(m for m in mapping if m != IGNORE):
        columns = [column_label(header, i) for i, m in enumerate(mapping) if m == name]
        if len(columns) > 1:
            problems.append(f"{' and '.join(columns)} are both mapped to {name}: keep one, ignore the other.")
    if "email" not in mapping:
        problems.append("Map one column to email: leads are matched by their email address.")
    if problems:
        raise ImportMappingInvalid(" ".join(problems))
    return mapping


# --- the rows ------------------------------------------------------------------------------------


@dataclass
class GoodRow:
    line: int
    lead: Lead  # validated, not saved
    created: bool


@dataclass
class BadRow:
    line: int
    problems: list[str]

    @property
    def message(self) -> str:
        return f"line {self.line} — {'; '.join(self.problems)}"


@dataclass
class ImportCheck:
    """What an import of a file with a mapping would do: the rows it writes and the ones it skips."""

    fields: list[str]  # the mapped fields, in column order
    good: list[GoodRow] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(row.created for row in self.good)

    @property
    def updated(self) -> int:
        return len(self.good) - self.created

    def good_shown(self) -> list[tuple[int, bool, list[Any]]]:
        """(line, new?, values of the mapped fields) of the first good rows, for the preview."""
        return [
            (row.line, row.created, [getattr(row.lead, name) for name in self.fields])
            for row in self.good[:PREVIEW_GOOD_SHOWN]
        ]

    def bad_shown(self) -> list[str]:
        return [row.message for row in self.bad[:PREVIEW_BAD_SHOWN]]


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def _problem(name: str, raw: str, exc: ValidationError) -> str:
    """``field: 'value' <what is wrong>``, in words a person fixing a spreadsheet can use."""
    error = exc.error_list[0]
    params = error.params or {}
    shown = _shown(raw)
    model_field = Lead._meta.get_field(name)
    internal = model_field.get_internal_type()
    if error.code == "invalid" and internal in ("PositiveIntegerField", "IntegerField", "DecimalField"):
        whole = internal != "DecimalField" and re.fullmatch(r"\s*-?\d+[.,]\d*\s*", raw)
        return f"{name}: {shown} is not {'a whole number' if whole else 'a number'}"
    if error.code == "invalid" and internal == "DateTimeField":
        return f"{name}: {shown} is not a date (write 2024-05-31 or 2024-05-31 14:30)"
    if error.code == "min_value":
        return f"{name}: {shown} is below {params.get('limit_value')}"
    if error.code == "max_value":
        return f"{name}: {shown} is above {params.get('limit_value')}"
    if error.code == "max_length":
        return f"{name}: {shown} is longer than {params.get('limit_value')} characters"
    if error.code == "invalid_choice":
        return f"{name}: {shown} is not one of {', '.join(str(v) for v, _ in model_field.choices)}"
    return f"{name}: {shown} — {' '.join(exc.messages)}"


class _Cells:
    """Converts one cell of a field the way the admin form's field does, after matching choices
    (a value or its label, any case) and lifecycle stages (key, label or CRM value, any case)."""

    def __init__(self, fields: list[str]):
        self.form_fields = {
            name: Lead._meta.get_field(name).formfield() for name in fields if name != "email"
        }
        self.choices = {
            name: {
                **{str(label).strip().lower(): value for value, label in Lead._meta.get_field(name).choices},
                **{str(value).lower(): value for value, _ in Lead._meta.get_field(name).choices},
            }
            for name in fields
            if Lead._meta.get_field(name).choices
        }
        self.stages: dict[str, str] = {}
        if "lifecycle_stage" in fields:
            for stage in LifecycleStage.objects.all():
                for spelling in (stage.label, stage.remote_value, stage.key):
                    self.stages[spelling.strip().lower()] = stage.key

    def convert(self, name: str, raw: str) -> Any:
        from campaigns.services import normalize_email

        if name == "email":
            return normalize_email(raw)
        if name in self.choices:
            raw = self.choices[name].get(raw.lower(), raw)
        elif name == "lifecycle_stage":
            raw = self.stages.get(raw.lower(), raw)
        return self.form_fields[name].clean(raw)


def leads_import_check(
    table: CsvTable, mapping: list[str], *, file_name: str = "", lock: bool = False
) -> ImportCheck:
    """Check every row of ``table`` under ``mapping`` (``mapping_check``ed) without writing.

    A good row holds its lead, validated (an existing lead, matched by its canonical email, with
    the row's values on it; or a new one): ``services.leads_import`` saves those. A bad row says,
    by field, what is wrong. A new lead's provenance defaults to the file and the time of the
    check; an existing lead keeps its source system unless the file has a column for it.
    ``lock``: lock the existing leads (``select_for_update``) for the caller's transaction.
    """
    from campaigns.services import lead_candidate

    mapping_check(table.header, mapping)
    fields = [name for name in mapping if name != IGNORE]
    check = ImportCheck(fields=fields)
    cells = _Cells(fields)
    now = timezone.now()
    width = len(table.header)

    parsed: list[tuple[CsvRow, dict[str, Any], list[str]]] = []
    first_line_of: dict[str, int] = {}
    for row in table.rows:
        values: dict[str, Any] = {}
        problems: list[str] = []
        extra = [cell for cell in row.cells[width:] if cell.strip()]
        if extra:
            problems.append(f"the row has {len(row.cells)} cells, the header {width}")
        for index, name in enumerate(mapping):
            raw = row.cells[index].strip() if index < len(row.cells) else ""
            if name == IGNORE or not raw:
                continue
            try:
                values[name] = cells.convert(name, raw)
            except ValidationError as exc:
                problems.append(_problem(name, raw, exc) if name != "email" else f"email: {exc.messages[0]}")
        email = values.get("email")
        if email is None and not any(p.startswith("email:") for p in problems):
            problems.append("email: empty (every lead needs an email address)")
        if email is not None:
            if email in first_line_of:
                problems.append(f"email: {email} is already on line {first_line_of[email]}")
            else:
                first_line_of[email] = row.line
        parsed.append((row, values, problems))

    existing = _existing_leads(list(first_line_of), lock=lock)
    for row, values, problems in parsed:
        if problems:
            check.bad.append(BadRow(line=row.line, problems=problems))
            continue
        lead = existing.get(values["email"])
        source_system = values.pop("source_system", None) or (
            lead.source_system if lead is not None else SourceSystem.CSV
        )
        if lead is None:
            values.setdefault("data_source", f"csv: {file_name}"[:100] if file_name else "csv import")
            values.setdefault("collected_at", now)
        try:
            # The table's check constraints (lower-case email, score and tier ranges) hold for
            # every row here: the email is canonical and scores are never imported.
            candidate = lead_candidate(
                data=values, source_system=source_system, lead=lead, validate_constraints=False
            )
        except ValidationError as exc:
            check.bad.append(
                BadRow(
                    line=row.line,
                    problems=[f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items()],
                )
            )
            continue
        check.good.append(GoodRow(line=row.line, lead=candidate, created=lead is None))
    return check


def _existing_leads(emails: list[str], *, lock: bool) -> dict[str, Lead]:
    found: dict[str, Lead] = {}
    for start in range(0, len(emails), LOOKUP_CHUNK):
        leads = Lead.objects.filter(email__in=emails[start : start + LOOKUP_CHUNK]).order_by("id")
        if lock:
            leads = leads.select_for_update()
        found.update((lead.email, lead) for lead in leads)
    return found
