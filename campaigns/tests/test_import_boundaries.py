"""CSV import and export boundaries: uploads belong to one tenant, names are checked, nothing personal is
left behind, unknown formats are refused, and exported cells cannot run as spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import os
import tempfile
import uuid

import pytest
import redis
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from campaigns.models import Lead
from campaigns.services import lead_upsert
from tenants.roles import Role

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/campaigns/lead/import/"
PROCESS_URL = "/admin/campaigns/lead/process_import/"
CANCEL_URL = "/admin/campaigns/lead/cancel_import/"
EXPORT_URL = "/admin/campaigns/lead/export/"
CSV_HEADER = "email,first_name,last_name,company,lifecycle_stage\n"


@pytest.fixture
def marker() -> str:
    """A value only this test's upload contains, to find its copies wherever they were kept."""
    return f"m{uuid.uuid4().hex[:12]}"


def _csv(body: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("leads.csv", (CSV_HEADER + body).encode(), content_type="text/csv")


def _leftovers(marker: str) -> list[str]:
    """Every copy of an upload still kept: files in the temp folder and values in the tests' Redis."""
    found = []
    folder = tempfile.gettempdir()
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            if os.path.isfile(path) and os.path.getsize(path) < 1_000_000:
                with open(path, "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(path)
        except OSError:
            continue
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(count=1000):
        if client.type(key) == b"string" and marker.encode() in (client.get(key) or b""):
            found.append(key.decode())
    return found


@pytest.fixture
def revops_alpha(alpha, make_user, client_for):
    return client_for(alpha, make_user(alpha, Role.REVOPS))


@pytest.fixture
def revops_bravo(bravo, make_user, client_for):
    return client_for(bravo, make_user(bravo, Role.REVOPS))


def _preview(client, marker: str) -> dict:
    response = client.post(
        IMPORT_URL, {"import_file": _csv(f"{marker}@acme.example,Ada,{marker},Acme,lead\n"), "format": "0"}
    )
    assert response.status_code == 200
    return response.context["confirm_form"].initial


def _confirm(client, confirm: dict, **changes):
    # what the preview's form posts: the upload's name, the format and the previewed mapping
    return client.post(PROCESS_URL, {**confirm, **changes})


def test_another_tenant_cannot_import_or_delete_an_upload_by_its_name(
    alpha, bravo, revops_alpha, revops_bravo, marker
):
    # given alpha's upload, previewed and waiting for confirmation
    confirm = _preview(revops_alpha, marker)

    # when bravo's RevOps posts its name
    response = _confirm(revops_bravo, confirm)

    # then bravo is refused, nothing lands in bravo, and alpha's upload is still there to confirm
    assert response.status_code == 400
    assert "no longer available" in response.content.decode()
    with tenant_context(bravo):
        assert not Lead.objects.filter(email=f"{marker}@acme.example").exists()
    assert _confirm(revops_alpha, confirm).status_code == 302
    with tenant_context(alpha):
        assert Lead.objects.filter(email=f"{marker}@acme.example").exists()


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "passwd", "..", "a" * 32 + "/x", "tmp" + "0" * 29]
)
def test_an_upload_name_that_is_not_ours_is_refused(alpha, revops_alpha, marker, name):
    confirm = _preview(revops_alpha, marker)

    response = _confirm(revops_alpha, confirm, import_file_name=name)

    assert response.status_code == 400
    with tenant_context(alpha):
        assert not Lead.objects.filter(email=f"{marker}@acme.example").exists()


def test_a_file_in_the_temp_folder_cannot_be_imported_or_deleted_by_name(alpha, revops_alpha, marker):
    confirm = _preview(revops_alpha, marker)
    handle = tempfile.NamedTemporaryFile("w", delete=False, suffix="")  # noqa: SIM115
    handle.write(CSV_HEADER + "stranger@other.example,S,T,Other,lead\n")
    handle.close()
    try:
        response = _confirm(revops_alpha, confirm, import_file_name=os.path.basename(handle.name))

        assert response.status_code == 400
        assert os.path.exists(handle.name), "a refused name deletes nothing"
        with tenant_context(alpha):
            assert not Lead.objects.filter(email="stranger@other.example").exists()
    finally:
        os.unlink(handle.name)


def test_a_dry_run_with_errors_keeps_no_copy(revops_alpha, marker):
    response = revops_alpha.post(
        IMPORT_URL, {"import_file": _csv(f"not-an-email,{marker},X,Acme,lead\n"), "format": "0"}
    )

    assert response.status_code == 200
    assert response.context["check"].bad and not response.context["check"].good
    assert "confirm_form" not in response.context
    assert _leftovers(marker) == []


def test_a_confirmed_import_keeps_no_copy(alpha, revops_alpha, marker):
    confirm = _preview(revops_alpha, marker)
    assert _leftovers(marker), "the preview keeps the upload until it is confirmed or cancelled"

    assert _confirm(revops_alpha, confirm).status_code == 302

    assert _leftovers(marker) == []
    with tenant_context(alpha):
        assert Lead.objects.filter(email=f"{marker}@acme.example").exists()


def test_a_cancelled_import_keeps_no_copy_and_imports_nothing(alpha, revops_alpha, marker):
    confirm = _preview(revops_alpha, marker)

    response = revops_alpha.post(CANCEL_URL, {"import_file_name": confirm["import_file_name"]})

    assert response.status_code == 302
    assert _leftovers(marker) == []
    assert _confirm(revops_alpha, confirm).status_code == 400, "a cancelled upload cannot be confirmed"
    with tenant_context(alpha):
        assert not Lead.objects.filter(email=f"{marker}@acme.example").exists()


def test_an_upload_expires(revops_alpha, marker):
    from campaigns.import_storage import MAX_AGE_SECONDS

    _preview(revops_alpha, marker)

    client = redis.Redis.from_url(settings.REDIS_URL)
    (key,) = [k for k in _leftovers(marker) if not k.startswith("/")]
    assert 0 < client.ttl(key) <= MAX_AGE_SECONDS
    client.delete(key)


@pytest.mark.parametrize("fmt", ["99", "-1", "abc", "1"])
def test_an_unknown_format_on_import_is_a_4xx_with_a_message(alpha, revops_alpha, marker, fmt):
    body = f"{marker}@acme.example,Ada,L,Acme,lead\n"

    preview = revops_alpha.post(IMPORT_URL, {"import_file": _csv(body), "format": fmt})
    confirm = _confirm(revops_alpha, _preview(revops_alpha, marker), format=fmt)

    assert preview.status_code == 400
    assert confirm.status_code == 400
    assert "Unknown format" in preview.content.decode()
    assert "Unknown format" in confirm.content.decode()
    with tenant_context(alpha):
        assert not Lead.objects.filter(email=f"{marker}@acme.example").exists()


@pytest.mark.parametrize("fmt", ["99", "abc"])
def test_an_unknown_format_on_export_is_a_4xx_with_a_message(revops_alpha, fmt):
    response = revops_alpha.post(EXPORT_URL, {"format": fmt})

    assert response.status_code == 400
    assert "Unknown format" in response.content.decode()


def test_lead_csv_export_escapes_cells_that_a_spreadsheet_would_run(alpha, revops_alpha):
    hostile = {
        "first_name": '=HYPERLINK("https://evil.example","x")',
        "last_name": "+1+1",
        "company": "-2+3",
        "title": "@SUM(A1)",
        "industry": "\tTab",
        "country": "\rCR",
    }
    with tenant_context(alpha):
        lead_upsert(data={"email": "hostile@acme.example", **hostile}, source_system="manual")
        lead_upsert(data={"email": "plain@acme.example", "company": "Acme - East"}, source_system="manual")

    from campaigns.resources import IMPORT_FIELDS

    selected = {f"leadresource_{field}": "on" for field in IMPORT_FIELDS}
    response = revops_alpha.post(EXPORT_URL, {"format": "0", "resource": "0", **selected})

    assert response.status_code == 200
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert {field: rows["hostile@acme.example"][field] for field in hostile} == {
        field: f"'{value}" for field, value in hostile.items()
    }
    assert rows["plain@acme.example"]["company"] == "Acme - East"
