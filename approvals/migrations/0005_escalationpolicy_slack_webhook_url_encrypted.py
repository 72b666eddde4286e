"""The Slack webhook URL becomes a secret: encrypted at rest, and masked in audit entries already written."""

from django.db import migrations, models

import connectors.crypto

MASK = "(set)"


def encrypt_and_mask(apps, schema_editor):
    from connectors.crypto import encrypt

    EscalationPolicy = apps.get_model("approvals", "EscalationPolicy")
    for policy in EscalationPolicy.objects.all():
        # The column still holds plain text here (a TextField in this state).
        EscalationPolicy.objects.filter(pk=policy.pk).update(
            slack_webhook_url=encrypt(policy.slack_webhook_url)
        )
    ContentType = apps.get_model("contenttypes", "ContentType")
    LogEntry = apps.get_model("auditlog", "LogEntry")
    content_type = ContentType.objects.filter(app_label="approvals", model="escalationpolicy").first()
    if content_type is None:
        return
    for entry in LogEntry.objects.filter(content_type=content_type):
        changes = entry.changes
        if isinstance(changes, dict) and "slack_webhook_url" in changes:
            changes["slack_webhook_url"] = [
                MASK if value else "(not set)" for value in changes["slack_webhook_url"]
            ]
            text = "" if "slack_webhook_url" in (entry.changes_text or "") else entry.changes_text
            LogEntry.objects.filter(pk=entry.pk).update(changes=changes, changes_text=text)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0004_unknown_outcome_and_resolve"),
        ("auditlog", "0017_add_actor_email"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterField(
            model_name="escalationpolicy",
            name="slack_webhook_url",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(encrypt_and_mask, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="escalationpolicy",
            name="slack_webhook_url",
            field=connectors.crypto.EncryptedJSONField(
                blank=True, default="", help_text="Slack incoming webhook."
            ),
        ),
    ]
