"""CSV import and export of leads (django-import-export), matched on the lower-cased email."""

from __future__ import annotations

from import_export import resources

from campaigns.models import Lead, SourceSystem

IMPORT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "company_domain",
    "title",
    "seniority",
    "industry",
    "company_size",
    "country",
    "lifecycle_stage",
    "source_system",
    "source_id",
    "icp_score",
    "icp_tier",
    "data_source",
    "collected_at",
    "legal_basis",
)

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_safe(value):
    """Prefix ``'`` to text a spreadsheet would evaluate, so it is shown as typed."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return f"'{value}"
    return value


class LeadResource(resources.ModelResource):
    """One row per lead; a bad email or an unknown lifecycle stage is a row error in the preview."""

    class Meta:
        model = Lead
        fields = IMPORT_FIELDS
        export_order = IMPORT_FIELDS
        import_id_fields = ("email",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def export_field(self, field, instance, **kwargs):
        return csv_cell_safe(super().export_field(field, instance, **kwargs))

    def before_import_row(self, row, **kwargs):
        # Match existing leads case-insensitively, as lead_upsert does.
        if row.get("email") is not None:
            row["email"] = str(row["email"]).strip().lower()
        if not row.get("source_system"):
            row["source_system"] = SourceSystem.CSV
