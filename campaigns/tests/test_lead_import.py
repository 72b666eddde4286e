"""The lead admin's CSV import: map the columns, preview good and bad rows by file line, import the
good rows and skip the bad ones (or cancel), one transaction, scored, audited, one tenant's."""

from __future__ import annotations

import uuid

import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from campaigns import lead_import
from campaigns.lead_import import IGNORE, csv_table_read, mapping_default
from campaigns.models import Lead
from campaigns.services import lead_upsert
from campaigns.tests.test_import_boundaries import _leftovers
from tenants.policy.models import IcpDefinition
from tenants.roles import Role

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/campaigns/lead/import/"
PROCESS_URL = "/admin/campaigns/lead/process_import/"
CANCEL_URL = "/admin/campaigns/lead/cancel_import/"

# Lines 2 and 3 are one row (a quoted cell spans them) and line 5 is blank: the bad rows are
# reported by the line they are on in the file, not by their row number.
MIXED = (
    "Email,First Name,Company Size,Industry\n"  # 1
    'ada@acme.example,"Ada\n'  # 2
    'Augusta",40,SaaS\n'  # 3
    "grace@acme.example,Grace,120,Fintech\n"  # 4
    "\n"  # 5
    "alan@acme.example,Alan,200,SaaS\n"  # 6
    "carl@acme.example,Carl,abc,SaaS\n"  # 7
    "dora@acme.example,Dora,12.5,SaaS\n"  # 8
    "bob@,Bob,10,SaaS\n"  # 9
    "ADA@acme.example,Again,10,SaaS\n"  # 10
)
GOOD = {"ada@acme.example", "grace@acme.example", "alan@acme.example"}


def _file(text: str | bytes, name: str = "leads.csv") -> SimpleUploadedFile:
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.fixture
def marker() -> str:
    """A value only this test's upload contains, to find its copies wherever they were kept."""
    return f"m{uuid.uuid4().hex[:12]}"


@pytest.fixture
def revops(alpha, make_user, client_for):
    return client_for(alpha, make_user(alpha, Role.REVOPS))


def _upload(client, text: str | bytes, name: str = "leads.csv"):
    return client.post(IMPORT_URL, {"import_file": _file(text, name)})


def _emails(tenant) -> set[str]:
    with tenant_context(tenant):
        return set(Lead.objects.values_list("email", flat=True))


# --- mapping -------------------------------------------------------------------------------------


def test_default_mapping_goes_by_header_name_whatever_the_case_and_spacing():
    header = [" E-Mail ", "FIRST NAME", "company_size", "Job Title", "Company name", "notes", "email", ""]

    assert mapping_default(header) == [
        "email",
        "first_name",
        "company_size",
        "title",
        "company",
        IGNORE,  # no lead field is called that
        IGNORE,  # email is taken by the first column
        IGNORE,
    ]


def test_upload_shows_each_column_with_its_default_field_and_first_values(revops):
    response = _upload(revops, MIXED)

    assert response.status_code == 200
    form = response.context["form"]
    assert [form.initial[f"map_{i}"] for i in range(4)] == ["email", "first_name", "company_size", "industry"]
    assert [field.label for field in form.column_fields()] == [
        "“Email”",
        "“First Name”",
        "“Company Size”",
        "“Industry”",
    ]
    assert form["map_2"].help_text == "40, 120, 200"
    assert "ignore this column" in response.content.decode()


def test_a_renamed_column_is_mapped_by_hand_then_imported(alpha, revops):
    # given a file whose address column no default recognises
    response = _upload(revops, "Contact,Given\nkim@acme.example,Kim\nlee@acme.example,Lee\n")
    assert response.status_code == 200
    assert "Map one column to email" in response.content.decode()
    assert response.context["check"] is None, "no preview without an email column"
    name = response.context["form"].initial["import_file_name"]

    # when the person maps them and previews again
    remapped = revops.post(IMPORT_URL, {"import_file_name": name, "map_0": "email", "map_1": "first_name"})

    # then the rows are ready, and importing them writes them with the mapped fields
    assert remapped.status_code == 200
    assert [row.line for row in remapped.context["check"].good] == [2, 3]
    done = revops.post(PROCESS_URL, remapped.context["confirm_form"].initial)
    assert done.status_code == 302
    with tenant_context(alpha):
        assert dict(Lead.objects.values_list("email", "first_name")) == {
            "kim@acme.example": "Kim",
            "lee@acme.example": "Lee",
        }


def test_two_columns_on_one_field_is_a_mapping_error_not_a_guess(revops):
    response = _upload(revops, "email,work email\na@acme.example,b@acme.example\n")
    name = response.context["form"].initial["import_file_name"]

    again = revops.post(IMPORT_URL, {"import_file_name": name, "map_0": "email", "map_1": "email"})

    assert again.status_code == 200
    assert "“email” and “work email” are both mapped to email" in again.content.decode()
    assert "confirm_form" not in again.context


# --- preview -------------------------------------------------------------------------------------


def test_bad_rows_are_listed_by_file_line_with_what_is_wrong_and_nothing_is_written(alpha, revops):
    response = _upload(revops, MIXED)

    assert response.status_code == 200
    check = response.context["check"]
    assert [row.line for row in check.good] == [2, 4, 6]
    assert check.bad_shown() == [
        "line 7 — company_size: 'abc' is not a number",
        "line 8 — company_size: '12.5' is not a whole number",
        "line 9 — email: 'bob@' is not an email address.",
        "line 10 — email: ada@acme.example is already on line 2",
    ]
    page = response.content.decode()
    assert "line 7 — company_size: &#x27;abc&#x27; is not a number" in page
    assert "Import 3 good rows, skip 4 with problems" in page
    assert _emails(alpha) == set(), "a preview writes nothing"


def test_a_cell_the_admin_form_refuses_is_refused_with_the_same_message(alpha, revops):
    # the import validates through the model, as the lead's admin form does
    form = revops.post(
        "/admin/campaigns/lead/add/",
        {
            "email": "x@acme.example",
            "company_domain": "https://acme.example/",
            "lifecycle_stage": "lead",
            "source_system": "manual",
        },
    )
    preview = _upload(revops, "email,company_domain\nx@acme.example,https://acme.example/\n")

    assert form.status_code == 200
    form_errors = form.context["adminform"].form.errors["company_domain"]
    assert preview.context["check"].bad_shown() == [f"line 2 — company_domain: {form_errors[0]}"]
    assert form_errors == ["'https://acme.example/' is not a domain."]


# --- import --------------------------------------------------------------------------------------


def test_importing_the_good_rows_writes_exactly_them_scored_and_audited(alpha, revops, marker):
    # given an ICP that likes SaaS, and a preview of a file with good and bad rows
    with tenant_context(alpha):
        icp = IcpDefinition.get_solo()
        icp.industries, icp.company_size_min, icp.company_size_max = ["SaaS"], 10, 1000
        icp.save()
    preview = _upload(revops, MIXED.replace("Grace", marker), name="event list.csv")

    # when the person imports the good rows
    response = revops.post(PROCESS_URL, preview.context["confirm_form"].initial, follow=True)

    # then exactly the good rows are leads, scored, each with its audit entry, and the upload is gone
    assert response.status_code == 200
    page = response.content.decode()
    assert "Imported 3 lead(s) from event list.csv (3 new, 0 updated)" in page
    assert "Skipped 4 row(s): line 7 — company_size: &#x27;abc&#x27; is not a number; line 8" in page
    assert _emails(alpha) == GOOD
    with tenant_context(alpha):
        ada = Lead.objects.get(email="ada@acme.example")
        entries = list(
            LogEntry.objects.filter(content_type__model="lead").values_list(
                "object_repr", "actor__username", "additional_data"
            )
        )
    assert ada.first_name == "Ada\nAugusta"
    assert (ada.source_system, ada.data_source) == ("csv", "csv: event list.csv")
    assert ada.collected_at is not None
    assert ada.icp_tier and ada.icp_score == 100
    assert "industry SaaS matches" in ada.icp_reasons
    assert sorted(e[0] for e in entries) == sorted(GOOD)
    assert {e[1] for e in entries} == {"revops@alpha.test"}
    assert [e[2] for e in entries] == [{"import": {"file": "event list.csv", "rows": 7}}] * 3
    assert _leftovers(marker) == []


def test_an_import_updates_existing_leads_and_leaves_empty_cells_alone(alpha, revops):
    with tenant_context(alpha):
        lead_upsert(
            data={"email": "grace@acme.example", "first_name": "Grace", "title": "CTO", "company_size": 5},
            source_system="hubspot",
        )

    preview = _upload(revops, "email,title,company_size\nGRACE@acme.example,,300\n")
    assert preview.context["check"].updated == 1
    assert revops.post(PROCESS_URL, preview.context["confirm_form"].initial).status_code == 302

    with tenant_context(alpha):
        grace = Lead.objects.get(email="grace@acme.example")
    assert (grace.first_name, grace.title, grace.company_size, grace.source_system) == (
        "Grace",
        "CTO",
        300,
        "hubspot",
    )


def test_cancel_writes_nothing_and_deletes_the_upload(alpha, revops, marker):
    preview = _upload(revops, MIXED.replace("Grace", marker))
    confirm = preview.context["confirm_form"].initial

    response = revops.post(CANCEL_URL, confirm)

    assert response.status_code == 302
    assert _emails(alpha) == set()
    assert _leftovers(marker) == []
    assert revops.post(PROCESS_URL, confirm).status_code == 400


def test_a_failing_import_writes_nothing_and_keeps_the_upload_to_retry(alpha, revops, monkeypatch):
    from django.db import IntegrityError

    preview = _upload(revops, MIXED)
    confirm = preview.context["confirm_form"].initial
    saves = []
    real_save = Lead.save

    def save_then_fail(self, *args, **kwargs):
        saves.append(self.email)
        if len(saves) == 3:  # the last good row: two are written already
            raise IntegrityError("duplicate key value violates unique constraint")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Lead, "save", save_then_fail)
    response = revops.post(PROCESS_URL, confirm)
    monkeypatch.undo()

    assert response.status_code == 200
    assert "nothing was imported" in response.content.decode()
    assert len(saves) == 3
    assert _emails(alpha) == set(), "no partial write"
    assert revops.post(PROCESS_URL, confirm).status_code == 302, "the upload is kept to try again"
    assert _emails(alpha) == GOOD


def test_a_mapping_changed_after_the_preview_is_previewed_again_not_imported(alpha, revops):
    preview = _upload(revops, MIXED)
    changed = {**preview.context["confirm_form"].initial, "map_3": IGNORE}

    response = revops.post(PROCESS_URL, changed)

    assert response.status_code == 200
    assert "The mapping changed since the preview" in response.content.decode()
    assert _emails(alpha) == set()
    assert revops.post(PROCESS_URL, changed).status_code == 302
    with tenant_context(alpha):
        assert set(Lead.objects.values_list("industry", flat=True)) == {""}


def test_a_second_confirmation_of_one_upload_is_refused(alpha, revops):
    confirm = _upload(revops, MIXED).context["confirm_form"].initial

    assert revops.post(PROCESS_URL, confirm).status_code == 302
    assert revops.post(PROCESS_URL, confirm).status_code == 400


# --- isolation and permissions -------------------------------------------------------------------


def test_another_tenant_or_another_person_cannot_use_the_upload(alpha, bravo, revops, make_user, client_for):
    confirm = _upload(revops, MIXED).context["confirm_form"].initial
    bravo_revops = client_for(bravo, make_user(bravo, Role.REVOPS))
    colleague = client_for(alpha, make_user(alpha, Role.TENANT_ADMIN, email="colleague@alpha.test"))

    for other in (bravo_revops, colleague):
        assert other.post(IMPORT_URL, confirm).status_code == 400
        assert other.post(PROCESS_URL, confirm).status_code == 400
        assert other.post(CANCEL_URL, confirm).status_code == 400

    assert _emails(bravo) == set()
    assert _emails(alpha) == set()
    assert revops.post(PROCESS_URL, confirm).status_code == 302, "the owner's upload is untouched"
    assert _emails(alpha) == GOOD


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AE], ids=str)
def test_roles_without_import_permission_cannot_preview_confirm_or_cancel(
    role, alpha, revops, make_user, client_for
):
    confirm = _upload(revops, MIXED).context["confirm_form"].initial
    client = client_for(alpha, make_user(alpha, role))

    assert client.post(IMPORT_URL, confirm).status_code == 403
    assert client.post(PROCESS_URL, confirm).status_code == 403
    assert client.post(CANCEL_URL, confirm).status_code == 403
    assert _emails(alpha) == set()


# --- files that are not a CSV of leads -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
        ("email,company\nzoë@acme.example,Zoë\n".encode("latin-1"), "not UTF-8 text"),
        (b"", "The submitted file is empty."),
        (b"   \n\n", "The file is empty."),
        (b"email,first_name\n", "a header but no rows"),
        (("a," * 150 + "\nx\n").encode(), "an import takes at most 100"),
        (b"email,notes\nx@acme.example," + b"y" * 200_000 + b"\n", "Line 2 cannot be read as CSV"),
    ],
    ids=["binary", "latin-1", "no bytes", "blank", "header only", "too many columns", "huge cell"],
)
def test_a_garbage_file_is_a_400_form_error(alpha, revops, content, message):
    response = _upload(revops, content)

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["import_file"])
    assert _emails(alpha) == set()


def test_a_huge_file_is_a_400_form_error_before_it_is_read(alpha, revops, monkeypatch):
    monkeypatch.setattr(lead_import, "MAX_UPLOAD_BYTES", 1024)
    huge = "email\n" + "".join(f"lead{i}@acme.example\n" for i in range(200))

    response = _upload(revops, huge)

    assert response.status_code == 400
    assert "an import takes at most" in " ".join(response.context["form"].errors["import_file"])


def test_a_file_with_too_many_rows_is_a_400_form_error(alpha, revops, monkeypatch):
    monkeypatch.setattr(lead_import, "MAX_ROWS", 5)

    response = _upload(revops, "email\n" + "".join(f"lead{i}@acme.example\n" for i in range(6)))

    assert response.status_code == 400
    assert "more than 5 rows" in " ".join(response.context["form"].errors["import_file"])
    assert _emails(alpha) == set()


def test_semicolon_separated_excel_files_with_a_bom_are_read():
    table = csv_table_read("\ufeffEmail;Company\r\nada@acme.example;Acme, Inc\r\n".encode())

    assert table.header == ("Email", "Company")
    assert table.rows[0].cells == ("ada@acme.example", "Acme, Inc")
    assert table.rows[0].line == 2
