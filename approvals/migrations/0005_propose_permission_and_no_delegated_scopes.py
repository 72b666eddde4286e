from django.db import migrations


def drop_delegated_scopes(apps, schema_editor):
    """Delegations used to grant the kind's scope on the one request (guardian); now only a role
    decides, so those object permissions go."""
    for name in ("UserObjectPermission", "GroupObjectPermission"):
        apps.get_model("guardian", name).objects.filter(
            content_type__app_label="approvals",
            content_type__model="actionrequest",
            permission__codename__startswith="approve_",
        ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0004_unknown_outcome_and_resolve"),
        ("guardian", "0002_generic_permissions_index"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="actionrequest",
            options={
                "ordering": ("deadline", "id"),
                "permissions": (
                    ("approve_crm_write", "Can approve CRM writes"),
                    ("approve_email_send", "Can approve email sends"),
                    ("approve_enrichment", "Can approve enrichment calls"),
                    ("approve_campaign_change", "Can approve campaign changes"),
                    ("resolve_execution", "Can re-queue or resolve a failed or unknown-outcome request"),
                    ("propose_action", "Can propose an action (it still waits for an approver)"),
                ),
            },
        ),
        migrations.RunPython(drop_delegated_scopes, migrations.RunPython.noop),
    ]
