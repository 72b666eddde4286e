"""Domain errors of the campaigns app: a code and a message a person can act on."""

from __future__ import annotations

from mh1.errors import DomainError


class ImportFileInvalid(DomainError, ValueError):
    """An upload that cannot be read as a CSV of leads: too big, not text, no header, too many rows."""

    code = "import_file_invalid"


class ImportMappingInvalid(DomainError, ValueError):
    """A column mapping the import cannot use: no email column, one field taken by two columns."""

    code = "import_mapping_invalid"


class ImportConflict(DomainError):
    """The import could not be written as previewed (a lead was created or changed meanwhile);
    nothing was written."""

    code = "import_conflict"
    status_code = 409
